package manager_test

import (
	"testing"

	"mproc/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
