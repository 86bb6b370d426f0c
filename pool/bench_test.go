package pool_test

import (
	"context"
	"testing"

	"mproc/pool"
)

// BenchmarkMapChunk1 is the parent's cost per task of a Map with chunks of
// one (the bench workload compares it with Python's; here for profiles:
// go test -run '^$' -bench MapChunk1 -cpuprofile cpu.out ./pool).
func BenchmarkMapChunk1(b *testing.B) {
	p, err := pool.New(context.Background(), pool.Options{Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { p.Close(); p.Wait(context.Background()) }()
	xs := make([]int, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := double.Map(context.Background(), p, xs, pool.ChunkSize(1)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/task")
}
