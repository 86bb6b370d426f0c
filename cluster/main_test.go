package cluster_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"mproc/cluster"
	"mproc/internal/testenv"
)

func TestMain(m *testing.M) {
	// Under -race every process that exits normally sleeps a second first
	// (atexit_sleep_ms); worker children inherit this.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	testenv.Main(m)
}

// ctxT returns a context bounded well inside the test's own deadline: a
// hang fails the test with a message instead of killing the binary.
func ctxT(t *testing.T) context.Context {
	t.Helper()
	d := 90 * time.Second
	if dl, ok := t.Deadline(); ok {
		d = min(d, time.Until(dl)/2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// embedded starts an embedded server for the test, with opts.
func embedded(t *testing.T, opts cluster.Options) *cluster.Conn {
	t.Helper()
	start := time.Now()
	c, err := cluster.Connect(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded server ready and connected in %v", time.Since(start))
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFile waits for path to hold something and returns it.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
	return ""
}

// writeFile writes path atomically, so waitFile never sees it half done.
func writeFile(path, s string) error {
	if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
