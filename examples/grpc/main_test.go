package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"mproc"
	"mproc/examples/grpc/echopb"
)

func TestMain(m *testing.M) {
	mproc.Main()
	os.Exit(m.Run())
}

// The example itself, over each transport: the same handler and client.
func TestTransports(t *testing.T) {
	for _, network := range []string{"shmnet", "unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := run(ctx, network, t.TempDir()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// 64 streams at once on one connection, each echoing its own sequence.
func TestConcurrentStreams(t *testing.T) {
	for _, network := range []string{"shmnet", "unix"} {
		t.Run(network, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			addr, p, err := StartServer(ctx, network, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { p.Terminate(); p.Wait(context.Background()) }()
			cc, err := echopb.NewClient(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			c := echopb.NewEchoClient(cc)
			const streams, msgs = 64, 200
			var wg sync.WaitGroup
			errs := make(chan error, streams)
			for k := range streams {
				wg.Go(func() {
					s, err := c.Stream(ctx)
					if err != nil {
						errs <- err
						return
					}
					body := []byte(fmt.Sprintf("stream %d", k))
					for i := range uint64(msgs) {
						if err := s.Send(&echopb.Msg{Seq: i, Body: body}); err != nil {
							errs <- err
							return
						}
						m, err := s.Recv()
						if err != nil || m.Seq != i || string(m.Body) != string(body) {
							errs <- fmt.Errorf("stream %d message %d: %v %v", k, i, m, err)
							return
						}
					}
					s.CloseSend()
					if _, err := s.Recv(); err != io.EOF {
						errs <- fmt.Errorf("stream %d end: %v", k, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// A server killed in the middle of a stream: the client's Recv fails
// soon, it does not hang.
func TestServerKilledMidStream(t *testing.T) {
	for _, network := range []string{"shmnet", "unix"} {
		t.Run(network, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			addr, p, err := StartServer(ctx, network, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Wait(context.Background())
			cc, err := echopb.NewClient(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			s, err := echopb.NewEchoClient(cc).Stream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(&echopb.Msg{Seq: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			p.Kill()
			t0 := time.Now()
			_, err = s.Recv()
			if err == nil {
				t.Fatal("Recv after the server was killed succeeded")
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Fatalf("Recv took %v to fail", d)
			}
			t.Logf("Recv failed %v after the kill: %v", time.Since(t0).Round(time.Millisecond), err)
		})
	}
}
