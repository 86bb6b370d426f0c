package pool_test

import (
	"os"
	"strings"
	"testing"

	"mproc/internal/testenv"
)

func TestMain(m *testing.M) {
	// Under -race, every process that exits normally sleeps a second first
	// (the race runtime's atexit_sleep_ms), and pools exit workers often:
	// the children inherit this.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	testenv.Main(m)
}
