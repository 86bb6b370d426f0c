package cluster_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mproc/cluster"
	"mproc/internal/testenv"
)

// TestEmbeddedStartTime logs how long an embedded server takes to start
// and accept a connection, both ways (the figure BENCHMARKS.md quotes;
// no assertion: the machine may be busy).
func TestEmbeddedStartTime(t *testing.T) {
	for _, listen := range []string{"", "127.0.0.1:0"} {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			c, err := cluster.Connect(ctxT(t), cluster.Options{Listen: listen})
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			c.Close()
		}
		slices.Sort(ds)
		t.Logf("embedded server (Listen %q): start+connect median %v, min %v, max %v", listen, ds[2], ds[0], ds[4])
	}
}

// TestEmbeddedStore: a temporary store goes with Close; a named one stays,
// and a queue's messages with it.
func TestEmbeddedStore(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := ctxT(t)
	c, err := cluster.Connect(ctx, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Dir(c.Server().StoreDir())
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary store %s after Close: %v", tmp, err)
	}
	if err := c.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}

	dir := t.TempDir()
	c, err = cluster.Connect(ctx, cluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q, err := cluster.CreateQueue[string](ctx, c, "kept", 0, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q.Put(ctx, "survivor")
	q.Close()
	c.Close()
	c, err = cluster.Connect(ctx, cluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q, err = cluster.OpenQueue[string](ctx, c, "kept", cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if v, err := q.Get(ctx); err != nil || v != "survivor" {
		t.Fatalf("after a restart: %q, %v", v, err)
	}
}

// TestEmbeddedListen: other processes reach a listening embedded server
// with the URL it gives, which holds a generated token; without it they
// are refused.
func TestEmbeddedListen(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{Listen: "127.0.0.1:0"})
	u, err := url.Parse(c.URL())
	if err != nil || u.User == nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("URL %q: %v", c.URL(), err)
	}
	c2, err := cluster.Connect(ctx, cluster.Options{URLs: []string{c.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	u.User = nil
	if _, err := cluster.Connect(ctx, cluster.Options{URLs: []string{u.String()}}); err == nil || errors.Is(err, cluster.ErrUnreachable) {
		t.Fatalf("Connect without the token: %v", err)
	} else {
		t.Logf("without the token: %v", err)
	}
	if embedded(t, cluster.Options{}).URL() != "" {
		t.Fatal("an embedded server without a listener has a URL")
	}
}

// TestUnreachable: a port that refuses and a server that never speaks
// both give ErrUnreachable by the context's deadline.
func TestUnreachable(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // accepted, never answered
		}
	}()

	for _, addr := range []string{refusedAddr, silent.Addr().String()} {
		const limit = 2 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		start := time.Now()
		_, err := cluster.Connect(ctx, cluster.Options{URLs: []string{"nats://" + addr}})
		took := time.Since(start)
		cancel()
		if !errors.Is(err, cluster.ErrUnreachable) {
			t.Errorf("%s: %v; want ErrUnreachable", addr, err)
		}
		if took > limit+5*time.Second {
			t.Errorf("%s: took %v with a %v deadline", addr, took, limit)
		}
		t.Logf("%s: %v after %v", addr, err, took.Round(time.Millisecond))
	}
}
