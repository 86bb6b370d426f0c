package shmnet_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"path/filepath"
	"strings"
	"testing"

	"mproc/shmnet"
)

// TestHTTP serves net/http over shmnet, unchanged: a handler that echoes
// the request body, and a client whose transport dials shmnet; several
// requests reuse the keep-alive connections.
func TestHTTP(t *testing.T) {
	ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body) // HTTP/1 handlers read the body before replying
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return shmnet.Dial(ctx, ln.Addr().String(), nil)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := range 20 {
		body := strings.Repeat("shared memory ", 1+i*1000)
		resp, err := client.Post("http://shm/echo", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != body {
			t.Fatalf("request %d: %d bytes back, %v; want %d bytes", i, len(got), err, len(body))
		}
	}
	tr.CloseIdleConnections()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != http.ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
}

// Arith is a net/rpc service.
type Arith struct{}

// Args are Arith.Mul's arguments.
type Args struct{ A, B int }

// Mul multiplies.
func (Arith) Mul(a Args, reply *int) error { *reply = a.A * a.B; return nil }

// TestRPC runs net/rpc over shmnet, unchanged.
func TestRPC(t *testing.T) {
	srv := rpc.NewServer()
	if err := srv.Register(Arith{}); err != nil {
		t.Fatal(err)
	}
	ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "rpc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // srv.Accept, without its log line when ln closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(c)
		}
	}()
	c, err := shmnet.Dial(context.Background(), ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	client := rpc.NewClient(c)
	defer client.Close()
	for i := range 100 {
		var got int
		if err := client.Call("Arith.Mul", Args{i, 7}, &got); err != nil || got != 7*i {
			t.Fatalf("Mul(%d, 7) = %d, %v", i, got, err)
		}
	}
}
