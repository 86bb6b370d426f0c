// Command rpcbench takes the samples of the bench's rpc workload: gRPC
// unary and streaming and HTTP/1.1 GET between two processes over shmnet,
// a Unix socket and loopback TCP. It lives in this module, not in bench/,
// so that the benchmark binary — whose every child re-executes it — does
// not carry gRPC and protobuf: they cost each of its children 2 ms of
// start-up and megabytes of mapped binary. It prints one JSON object,
// {"samples": {"unary shmnet": [ns, ...], ...}}, for bench/rpc.go.
//
//	go run ./examples/grpc/rpcbench -n 200 -network shmnet
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"mproc"
	"mproc/examples/grpc/echopb"
)

func main() {
	mproc.Main()
	n := flag.Int("n", 200, "samples of each kind")
	network := flag.String("network", "shmnet", "shmnet, unix or tcp")
	flag.Parse()
	unary, stream, get, err := rpcSamples(context.Background(), *network, *n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
	ns := func(ds []time.Duration) []int64 {
		out := make([]int64, len(ds))
		for i, d := range ds {
			out[i] = d.Nanoseconds()
		}
		return out
	}
	json.NewEncoder(os.Stdout).Encode(map[string]map[string][]int64{"samples": {
		"unary " + *network: ns(unary), "stream " + *network: ns(stream), "get " + *network: ns(get),
	}})
}

func perOp(d time.Duration, n int) time.Duration { return d / time.Duration(n) }

const (
	rpcBatch      = 100     // unary calls or GETs per sample
	rpcStreamMsgs = 256     // messages per stream sample
	rpcStreamSize = 4 << 10 // bytes per stream message
)

type rpcArgs struct {
	Network, Dir string
	Ready        *mproc.Queue[[2]string] // the gRPC and HTTP addresses
}

// rpcServer serves the Echo service over gRPC and a GET handler over
// HTTP/1.1, each on a listener of its own, until its context ends.
var rpcServer = mproc.Register("rpcbench.server", func(ctx context.Context, a rpcArgs) error {
	addr := func(name string) string {
		if a.Network == "tcp" {
			return "127.0.0.1:0"
		}
		return filepath.Join(a.Dir, name)
	}
	gln, err := echopb.Listen(a.Network, addr("grpc"))
	if err != nil {
		return err
	}
	hln, err := echopb.Listen(a.Network, addr("http"))
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	echopb.RegisterEchoServer(gs, echopb.Service{})
	body := make([]byte, 64)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}
	go func() { <-ctx.Done(); gs.Stop(); hs.Close() }()
	go gs.Serve(gln)
	go hs.Serve(hln)
	if err := a.Ready.Put(ctx, [2]string{gln.Addr().String(), hln.Addr().String()}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
})

// rpcSession starts a server on network and runs f with clients of it.
func rpcSession(ctx context.Context, network string, f func(echo echopb.EchoClient, web *http.Client) error) error {
	dir, err := os.MkdirTemp("", "mproc-bench-rpc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ready, err := mproc.NewQueue[[2]string](1)
	if err != nil {
		return err
	}
	defer ready.Close()
	p, err := rpcServer.Start(ctx, rpcArgs{network, dir, ready}, mproc.ProcOptions{})
	if err != nil {
		return err
	}
	defer func() { p.Terminate(); p.Wait(context.Background()) }()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addrs, err := ready.Get(wctx)
	if err != nil {
		return fmt.Errorf("server not ready: %w", err)
	}
	cc, err := echopb.NewClient(network, addrs[0])
	if err != nil {
		return err
	}
	defer cc.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return echopb.Dial(ctx, network, addrs[1]) }}
	defer tr.CloseIdleConnections()
	return f(echopb.NewEchoClient(cc), &http.Client{Transport: tr})
}

// rpcSamples takes n samples of each kind over one connection, after one
// uncounted sample each.
func rpcSamples(ctx context.Context, network string, n int) (unary, stream, get []time.Duration, err error) {
	err = rpcSession(ctx, network, func(echo echopb.EchoClient, web *http.Client) error {
		msg := &echopb.Msg{Body: make([]byte, 64)}
		for i := range n + 1 {
			t0 := time.Now()
			for range rpcBatch {
				m, err := echo.Echo(ctx, msg)
				if err != nil || len(m.Body) != 64 {
					return fmt.Errorf("Echo: %v", err)
				}
			}
			if i > 0 {
				unary = append(unary, perOp(time.Since(t0), rpcBatch))
			}
		}
		body := make([]byte, rpcStreamSize)
		for i := range n + 1 {
			s, err := echo.Stream(ctx)
			if err != nil {
				return err
			}
			t0 := time.Now()
			errc := make(chan error, 1)
			go func() {
				for range rpcStreamMsgs {
					if err := s.Send(&echopb.Msg{Body: body}); err != nil {
						errc <- err
						return
					}
				}
				errc <- s.CloseSend()
			}()
			for range rpcStreamMsgs {
				m, err := s.Recv()
				if err != nil || len(m.Body) != rpcStreamSize {
					return fmt.Errorf("Stream: %v", err)
				}
			}
			if _, err := s.Recv(); err != io.EOF {
				return fmt.Errorf("Stream end: %v", err)
			}
			if err := <-errc; err != nil {
				return err
			}
			if i > 0 {
				stream = append(stream, time.Since(t0))
			}
		}
		for i := range n + 1 {
			t0 := time.Now()
			for range rpcBatch {
				resp, err := web.Get("http://mproc/")
				if err != nil {
					return err
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || len(b) != 64 {
					return fmt.Errorf("GET: %d bytes, %v", len(b), err)
				}
			}
			if i > 0 {
				get = append(get, perOp(time.Since(t0), rpcBatch))
			}
		}
		return nil
	})
	return unary, stream, get, err
}
