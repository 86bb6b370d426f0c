package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"mproc/cluster"
)

// natsCluster is a 3-node JetStream cluster in this process, on loopback
// ports: nats-server's own test helpers are not importable, so each node
// is configured by hand — client port, route port, the routes to all
// three, a store of its own.
type natsCluster struct {
	servers []*server.Server
	urls    []string
}

func startCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes[i] = "nats://" + l.Addr().String()
		l.Close()
	}
	nc := &natsCluster{}
	for i := range n {
		port := routes[i][strings.LastIndexByte(routes[i], ':')+1:]
		var rp int
		fmt.Sscan(port, &rp)
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "mproc-test", Host: "127.0.0.1", Port: rp},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i)
		}
		nc.servers = append(nc.servers, s)
		nc.urls = append(nc.urls, s.ClientURL())
	}
	t.Cleanup(func() {
		for _, s := range nc.servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	start := time.Now()
	for !nc.ready() {
		if time.Since(start) > 60*time.Second {
			t.Fatal("no JetStream meta leader after 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d-node cluster has a meta leader after %v", n, time.Since(start).Round(time.Millisecond))
	return nc
}

// ready reports whether the running nodes have a meta leader, are current
// with it, and are all known to it as peers (placement needs that).
func (nc *natsCluster) ready() bool {
	running, peers := 0, 0
	for _, s := range nc.servers {
		if !s.Running() {
			continue
		}
		if !s.JetStreamIsCurrent() {
			return false
		}
		running++
		if s.JetStreamIsLeader() {
			peers = len(s.JetStreamClusterPeers())
		}
	}
	return running > 0 && peers == running
}

func (nc *natsCluster) server(name string) *server.Server {
	for _, s := range nc.servers {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// TestClusterFailover streams messages through an R3 queue of a 3-node
// cluster and shuts down the stream's leader mid-stream. Every message
// whose Put succeeded is delivered and done; none is delivered again
// after a Done that succeeded.
func TestClusterFailover(t *testing.T) {
	ctx := ctxT(t)
	nc := startCluster(t, 3)
	fast := []nats.Option{nats.ReconnectWait(50 * time.Millisecond)}
	connect := func() *cluster.Conn {
		c, err := cluster.Connect(ctx, cluster.Options{URLs: nc.urls, NATS: fast})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	prod, cons := connect(), connect()
	opts := cluster.QueueOptions{MaxDeliver: -1, Storage: cluster.Storage{Replicas: 3, AckWait: 10 * time.Second}}
	q, err := cluster.CreateQueue[int](ctx, prod, "failover", 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	const total = 400
	var (
		mu        sync.Mutex
		putOK     = map[int]bool{}
		doneOK    = map[int]bool{}
		received  = map[int]int{}
		violation []string
	)
	killAt := make(chan struct{})
	var wg sync.WaitGroup
	producerDone := false
	wg.Go(func() {
		defer func() {
			mu.Lock()
			producerDone = true
			mu.Unlock()
		}()
		for i := range total {
			if i == total/3 {
				close(killAt)
			}
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := q.Put(pctx, i)
			cancel()
			mu.Lock()
			if err == nil {
				putOK[i] = true
			} else {
				t.Logf("Put(%d): %v (not acknowledged: may be lost)", i, err)
			}
			mu.Unlock()
		}
	})
	stop := make(chan struct{})
	for range 2 {
		h, err := cluster.OpenQueue[int](ctx, cons, "failover", cluster.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				d, err := h.Receive(rctx)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					continue
				}
				mu.Lock()
				received[d.Value]++
				if doneOK[d.Value] {
					violation = append(violation, fmt.Sprintf("%d delivered again (attempt %d) after a successful Done", d.Value, d.Attempt()))
				}
				mu.Unlock()
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err = d.Done(dctx)
				cancel()
				mu.Lock()
				if err == nil {
					doneOK[d.Value] = true
				} else {
					t.Logf("Done(%d): %v (may be delivered again)", d.Value, err)
				}
				mu.Unlock()
			}
		})
	}

	<-killAt
	info, err := prod.JetStream().Stream(ctx, "MPQ_failover")
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	victim := nc.server(leader)
	if victim == nil {
		t.Fatalf("stream leader %q is not a node", leader)
	}
	killed := time.Now()
	victim.Shutdown()
	victim.WaitForShutdown()
	t.Logf("shut down the stream leader %s after %d puts", leader, total/3)

	// Wait until every acknowledged put is done.
	for {
		mu.Lock()
		missing := 0
		for i := range putOK {
			if !doneOK[i] {
				missing++
			}
		}
		finished := producerDone && missing == 0
		mu.Unlock()
		if finished {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d acknowledged messages never done", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("all %d acknowledged puts done %v after the shutdown", len(putOK), time.Since(killed).Round(time.Millisecond))

	twice := 0
	for _, n := range received {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d puts acknowledged, %d messages received, %d received more than once (before a successful Done)", len(putOK), len(received), twice)
	for _, v := range violation {
		t.Error(v)
	}
	if n, err := q.Len(ctx); err != nil || n != 0 && len(putOK) == total {
		// (A put that failed may have landed after all, and be left.)
		t.Errorf("Len after the stream = %d, %v", n, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test ran out of time")
	}
}
