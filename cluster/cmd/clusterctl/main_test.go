package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"mproc/cluster"
)

func TestClusterctl(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cluster.Connect(ctx, cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { cluster.Serve(sctx, c, cluster.ServeOptions{Workers: 2}) })
	defer func() { stop(); wg.Wait() }()

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"put", "jobs", "a", "b"}, []string{`put 2 values into "jobs"`}},
		{[]string{"ls"}, []string{"queue  jobs", "2 waiting, 0 held, 0 dead", "pool   default"}},
		{[]string{"get", "jobs", "2"}, []string{"a\nb\n"}},
		{[]string{"map", "demo.square", "3", "13"}, []string{"demo.square(3) = 9", "demo.square(13) = error (ErrUnlucky, across the wire)"}},
		{[]string{"map", "demo.words", "one two"}, []string{"2"}},
	} {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"-nats", c.URL()}, tc.args...), &out, &errOut)
		if err != nil {
			t.Fatalf("%v: %v (%s)", tc.args, err, errOut.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output %q lacks %q", tc.args, out.String(), w)
			}
		}
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"-nats", c.URL(), "nosuch"}, &out, &errOut); err == nil {
		t.Error("unknown subcommand: no error")
	}
}
