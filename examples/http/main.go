// HTTP between processes: a net/http server in a child process serves one
// handler on a Unix socket and on shared memory (shmnet); the parent GETs
// it over both with the standard http.Client, and curl reaches the Unix
// socket too (curl --unix-socket PATH http://x/hello).
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"mproc"
	"mproc/shmnet"
)

// Handler answers every request with the serving process and transport.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from pid %d over %s\n", os.Getpid(), r.Context().Value(http.LocalAddrContextKey).(net.Addr).Network())
	})
	return mux
}

type serverArg struct {
	Dir   string
	Ready *mproc.Event
}

var serve = mproc.Register("http-server", func(ctx context.Context, a serverArg) error {
	unixLn, err := net.Listen("unix", filepath.Join(a.Dir, "http.sock"))
	if err != nil {
		return err
	}
	shmLn, err := shmnet.Listen(filepath.Join(a.Dir, "http.shm"), nil)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: Handler()}
	go func() { <-ctx.Done(); srv.Close() }()
	go srv.Serve(shmLn)
	a.Ready.Set()
	if err := srv.Serve(unixLn); err != http.ErrServerClosed {
		return err
	}
	return nil
})

// Client is an http.Client whose connections are made by dial, whatever
// the URL's host says.
func Client(dial func(ctx context.Context) (net.Conn, error)) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}
}

func get(c *http.Client) (string, error) {
	resp, err := c.Get("http://mproc/hello")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func main() {
	mproc.Main()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mproc-http-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ready, err := mproc.NewEvent()
	if err != nil {
		log.Fatal(err)
	}
	p, err := serve.Start(ctx, serverArg{dir, ready}, mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { p.Terminate(); p.Wait(ctx) }()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ready.Wait(wctx); err != nil {
		log.Fatal("server not ready: ", err)
	}
	sock, shm := filepath.Join(dir, "http.sock"), filepath.Join(dir, "http.shm")
	clients := []struct {
		name string
		c    *http.Client
	}{
		{"Unix socket", Client(func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		})},
		{"shmnet", Client(func(ctx context.Context) (net.Conn, error) { return shmnet.Dial(ctx, shm, nil) })},
	}
	for _, c := range clients {
		body, err := get(c.c)
		if err != nil {
			log.Fatalf("GET over %s: %v", c.name, err)
		}
		fmt.Printf("GET over %s: %s", c.name, body)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-s", "--unix-socket", sock, "http://x/hello").Output()
		if err != nil {
			log.Fatalf("curl: %v", err)
		}
		fmt.Printf("curl --unix-socket: %s", out)
	} else {
		fmt.Println("curl is not installed: skipped curl --unix-socket")
	}
}
