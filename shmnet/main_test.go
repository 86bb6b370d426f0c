package shmnet_test

import (
	"testing"

	"mproc/internal/testenv"
)

// TestMain dispatches the children the tests start (the test binary
// re-executed, see testenv.Main) and fails the run on a leaked child.
func TestMain(m *testing.M) { testenv.Main(m) }
