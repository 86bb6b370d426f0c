// gRPC between processes: one Echo service (a unary call and a
// bidirectional stream) served by a child process, called by its parent
// over shared memory (shmnet), a Unix socket and loopback TCP — the same
// handler, the same client code; only the net.Conn underneath changes.
//
//	go run ./examples/grpc                    # all three transports
//	go run ./examples/grpc -network shmnet    # one of shmnet, unix, tcp
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"mproc"
	"mproc/examples/grpc/echopb"
)

type serverArg struct {
	Network, Addr string
	Ready         *mproc.Queue[string] // the address the server listens on
}

var serve = mproc.Register("grpc-echo-server", func(ctx context.Context, a serverArg) error {
	ln, err := echopb.Listen(a.Network, a.Addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	echopb.RegisterEchoServer(s, echopb.Service{})
	go func() { <-ctx.Done(); s.Stop() }() // Terminate cancels ctx
	if err := a.Ready.Put(ctx, ln.Addr().String()); err != nil {
		return err
	}
	return s.Serve(ln)
})

// StartServer runs the service in a child process listening on network,
// and returns its address and the process.
func StartServer(ctx context.Context, network, dir string) (string, *mproc.Process, error) {
	addr := "127.0.0.1:0"
	if network != "tcp" {
		addr = filepath.Join(dir, network+".sock")
	}
	ready, err := mproc.NewQueue[string](1)
	if err != nil {
		return "", nil, err
	}
	defer ready.Close()
	p, err := serve.Start(ctx, serverArg{network, addr, ready}, mproc.ProcOptions{})
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr, err = ready.Get(ctx)
	if err != nil {
		p.Kill()
		p.Wait(context.Background())
		return "", nil, fmt.Errorf("server did not start: %w", err)
	}
	return addr, p, nil
}

func run(ctx context.Context, network, dir string) error {
	addr, p, err := StartServer(ctx, network, dir)
	if err != nil {
		return err
	}
	defer func() { p.Terminate(); p.Wait(context.Background()) }()
	cc, err := echopb.NewClient(network, addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	c := echopb.NewEchoClient(cc)

	const calls = 1000
	t0 := time.Now()
	for i := range uint64(calls) {
		m, err := c.Echo(ctx, &echopb.Msg{Seq: i, Body: []byte("ping")})
		if err != nil || m.Seq != i {
			return fmt.Errorf("Echo %d: %v %v", i, m, err)
		}
	}
	unary := time.Since(t0) / calls

	s, err := c.Stream(ctx)
	if err != nil {
		return err
	}
	const msgs, size = 2000, 4 << 10
	body := make([]byte, size)
	t0 = time.Now()
	go func() {
		for i := range uint64(msgs) {
			if s.Send(&echopb.Msg{Seq: i, Body: body}) != nil {
				return
			}
		}
		s.CloseSend()
	}()
	for i := range uint64(msgs) {
		m, err := s.Recv()
		if err != nil || m.Seq != i || len(m.Body) != size {
			return fmt.Errorf("Stream message %d: %v", i, err)
		}
	}
	if _, err := s.Recv(); err != io.EOF {
		return fmt.Errorf("Stream end: %v", err)
	}
	mbps := float64(2*msgs*size) / time.Since(t0).Seconds() / 1e6
	fmt.Printf("%-6s server pid %d at %s: %d unary Echo calls, %v each; %d × 4 KiB streamed both ways, %.0f MB/s\n",
		network, p.Pid(), addr, calls, unary.Round(time.Microsecond), msgs, mbps)
	return nil
}

func main() {
	mproc.Main()
	network := flag.String("network", "", "shmnet, unix or tcp (default: all three)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "mproc-grpc-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	networks := []string{"shmnet", "unix", "tcp"}
	if *network != "" {
		networks = []string{*network}
	}
	for _, n := range networks {
		if err := run(context.Background(), n, dir); err != nil {
			log.Fatalf("%s: %v", n, err)
		}
	}
}
