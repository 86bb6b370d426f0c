package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
)

func TestMain(m *testing.M) {
	mproc.Main()
	os.Exit(m.Run())
}

// An unmodified Python http.client peer GETs the Go server over its Unix
// socket, on every Python here.
func TestPythonClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ready, err := mproc.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	p, err := serve.Start(ctx, serverArg{dir, ready}, mproc.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Terminate(); p.Wait(context.Background()) }()
	if err := ready.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	const script = `
import http.client, socket, sys
class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
c = UnixConnection(sys.argv[1])
for _ in range(3):  # one kept-alive connection, three requests
    c.request("GET", "/hello")
    r = c.getresponse()
    print(r.status, r.read().decode().strip())
`
	for ver, py := range testenv.Pythons(t) {
		out, err := exec.CommandContext(ctx, py, "-c", script, filepath.Join(dir, "http.sock")).CombinedOutput()
		want := "200 hello from pid"
		if err != nil || strings.Count(string(out), want) != 3 || !strings.Contains(string(out), "over unix") {
			t.Errorf("Python %s http.client: %v\n%s", ver, err, out)
		}
	}
}
