package cluster_test

import (
	"context"
	"testing"

	"mproc/cluster"
)

// BenchmarkEmbeddedStart: Connect with an embedded server, then Close
// (cmd/clusterbench reports the same with medians).
func BenchmarkEmbeddedStart(b *testing.B) {
	for _, bc := range []struct{ name, listen string }{{"inprocess", ""}, {"listener", "127.0.0.1:0"}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				c, err := cluster.Connect(context.Background(), cluster.Options{Listen: bc.listen})
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkQueue: one Put, Get and TaskDone of a 64 B message on an
// embedded server.
func BenchmarkQueue(b *testing.B) {
	ctx := context.Background()
	c, err := cluster.Connect(ctx, cluster.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	q, err := cluster.CreateQueue[[]byte](ctx, c, "bench", 0, cluster.QueueOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	msg := make([]byte, 64)
	for b.Loop() {
		if err := q.Put(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := q.Get(ctx); err != nil {
			b.Fatal(err)
		}
		if err := q.TaskDone(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
