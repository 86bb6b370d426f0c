package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"mproc"
	"mproc/examples/grpc/echopb"
	"mproc/shmnet"
)

// The rpc workload (issue #14): the RPC stacks Go programs already use —
// gRPC and net/http — between two processes over shmnet, a Unix socket and
// loopback TCP, with the same handlers and clients; only the net.Conn
// changes.

func init() {
	addWorkload(workload{name: "rpc", about: "gRPC unary round trip and stream, HTTP/1.1 GET round trip: shmnet vs Unix socket vs TCP", run: rpcWorkload})
}

const (
	rpcBatch      = 100     // unary calls or GETs per sample
	rpcStreamMsgs = 256     // messages per stream sample
	rpcStreamSize = 4 << 10 // bytes per stream message
)

var rpcNetworks = []string{"shmnet", "unix", "tcp"}

func rpcListen(network, addr string) (net.Listener, error) {
	if network == "shmnet" {
		return shmnet.Listen(addr, nil)
	}
	return net.Listen(network, addr)
}

func rpcDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if network == "shmnet" {
		return shmnet.Dial(ctx, addr, nil)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

type rpcArgs struct {
	Network, Dir string
	Ready        *mproc.Queue[[2]string] // the gRPC and HTTP addresses
}

// rpcServer serves the Echo service over gRPC and a GET handler over
// HTTP/1.1, each on a listener of its own, until its context ends.
var rpcServer = mproc.Register("bench.rpcServer", func(ctx context.Context, a rpcArgs) error {
	addr := func(name string) string {
		if a.Network == "tcp" {
			return "127.0.0.1:0"
		}
		return filepath.Join(a.Dir, name)
	}
	gln, err := rpcListen(a.Network, addr("grpc"))
	if err != nil {
		return err
	}
	hln, err := rpcListen(a.Network, addr("http"))
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
	cc, err := grpc.NewClient("passthrough:///"+network,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return rpcDial(ctx, network, addrs[0]) }))
	if err != nil {
		return err
	}
	defer cc.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return rpcDial(ctx, network, addrs[1]) }}
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

func rpcWorkload(ctx context.Context, c *config) (*report, error) {
	samples := map[string][]time.Duration{}
	rounds := split(c.n, c.rounds)
	for r, n := range rounds {
		fmt.Fprintf(c.log, "bench: rpc: round %d/%d\n", r+1, len(rounds))
		for k := range rpcNetworks {
			network := rpcNetworks[(k+r)%len(rpcNetworks)]
			u, s, g, err := rpcSamples(ctx, network, n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", network, err)
			}
			samples["unary "+network] = append(samples["unary "+network], u...)
			samples["stream "+network] = append(samples["stream "+network], s...)
			samples["get "+network] = append(samples["get "+network], g...)
		}
	}
	rep := &report{
		title:   "RPC stacks: gRPC and net/http",
		refName: "the group's shmnet row",
		format:  humanDuration,
		about: fmt.Sprintf("The RPC stacks Go programs already use, between two processes, unchanged, over three "+
			"transports: **shmnet** (`shmnet.Listen`/`shmnet.Dial`, a `net.Conn` over shared-memory rings), a "+
			"**Unix socket** and loopback **TCP** (`net.Listen`/`net.Dialer`). The server is an mproc child "+
			"serving the Echo service of `examples/grpc` (`grpc.NewServer`, protobuf messages `{seq, body}`) and "+
			"an `http.Server` whose handler writes 64 bytes; the bench process is the client: `grpc.NewClient` "+
			"with `WithContextDialer`, and an `http.Client` whose `Transport.DialContext` dials the transport "+
			"(HTTP/1.1, kept-alive connections). **Unary**: `Echo` of a 64-byte body, a sample %d calls timed "+
			"together, shown per call. **Stream**: one bidirectional `Stream` per sample, %d messages of %d KiB "+
			"sent while a goroutine receives their echoes, shown as the bytes echoed per second (one direction). "+
			"**GET**: `http.Client.Get` and the body read, %d per sample, per request. No process is pinned.",
			rpcBatch, rpcStreamMsgs, rpcStreamSize>>10, rpcBatch),
	}
	groups := []struct {
		key, what string
		format    func(time.Duration) string
	}{
		{"unary", "gRPC unary `Echo` round trip, 64 B", nil},
		{"stream", "gRPC bidirectional stream, 4 KiB messages", perSecond(rpcStreamMsgs, rpcStreamSize)},
		{"get", "HTTP/1.1 GET round trip, 64 B body", nil},
	}
	for _, g := range groups {
		ref := len(rep.rows)
		for _, network := range rpcNetworks {
			name := map[string]string{"shmnet": "shmnet", "unix": "Unix socket", "tcp": "loopback TCP"}[network]
			rw := row{variant: g.what + ", " + name, samples: samples[g.key+" "+network], ref: ref, format: g.format}
			if len(rw.samples) == 0 {
				rw.missing = "no samples"
			}
			rep.rows = append(rep.rows, rw)
		}
	}
	us, uu := summarize(samples["unary shmnet"]), summarize(samples["unary unix"])
	const what = "Target (issue #14): gRPC unary round trip over shmnet ≤ 0.7× over a Unix socket"
	switch {
	case us.n == 0 || uu.n == 0:
		rep.notes = append(rep.notes, what+" — not judged (no samples).")
	default:
		verdict := "**not met**"
		if float64(us.median) <= 0.7*float64(uu.median) {
			verdict = "**met**"
		}
		rep.notes = append(rep.notes, fmt.Sprintf("%s — %s (median %s against %s, %.2f×).", what, verdict,
			humanDuration(us.median), humanDuration(uu.median), float64(us.median)/float64(uu.median)))
	}
	rep.notes = append(rep.notes,
		"Each group's rows are compared to its shmnet row.",
		fmt.Sprintf("%d samples per row, in %d round(s); each round starts one server per transport (in a rotating "+
			"order) and takes that transport's samples on one gRPC connection and one kept-alive HTTP "+
			"connection, after one uncounted sample of each kind.", c.n, len(rounds)),
		"A gRPC call costs far more than its bytes: HTTP/2 framing, protobuf, and several goroutine hand-offs "+
			"on each side; the transport's share is the difference between the rows. "+
			strings.TrimSpace("The byte-stream costs of the transports alone are in the shmnet section."),
	)
	return rep, nil
}
