package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The rpc workload (issue #14): the RPC stacks Go programs already use —
// gRPC and net/http — between two processes over shmnet, a Unix socket and
// loopback TCP, with the same handlers and clients; only the net.Conn
// changes. The samples are taken by examples/grpc/rpcbench, a program of
// the gRPC example's module, so that this binary does not link gRPC.

func init() {
	addWorkload(workload{name: "rpc", about: "gRPC unary round trip and stream, HTTP/1.1 GET round trip: shmnet vs Unix socket vs TCP", run: rpcWorkload})
}

const (
	rpcBatch      = 100     // unary calls or GETs per sample
	rpcStreamMsgs = 256     // messages per stream sample
	rpcStreamSize = 4 << 10 // bytes per stream message
)

var rpcNetworks = []string{"shmnet", "unix", "tcp"}

// rpcSamples runs examples/grpc/rpcbench (a module of its own: see its
// doc) for n samples of each kind over network and returns them.
func rpcSamples(ctx context.Context, network string, n int) (unary, stream, get []time.Duration, err error) {
	root, err := workspaceRoot()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./examples/grpc/rpcbench", "-n", strconv.Itoa(n), "-network", network)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, nil, fmt.Errorf("go run ./examples/grpc/rpcbench: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var out struct{ Samples map[string][]int64 }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, nil, nil, fmt.Errorf("rpcbench output %q: %w", stdout.String(), err)
	}
	ds := func(k string) []time.Duration {
		var r []time.Duration
		for _, v := range out.Samples[k+" "+network] {
			r = append(r, time.Duration(v))
		}
		return r
	}
	return ds("unary"), ds("stream"), ds("get"), nil
}

// workspaceRoot is the directory of go.work above the working directory
// (the repository: go run ./bench runs there, its tests in bench/).
func workspaceRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run the bench from the repository")
		}
		dir = parent
	}
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
			"an `http.Server` whose handler writes 64 bytes; its parent is the client: `grpc.NewClient` "+
			"with `WithContextDialer`, and an `http.Client` whose `Transport.DialContext` dials the transport "+
			"(HTTP/1.1, kept-alive connections). **Unary**: `Echo` of a 64-byte body, a sample %d calls timed "+
			"together, shown per call. **Stream**: one bidirectional `Stream` per sample, %d messages of %d KiB "+
			"sent while a goroutine receives their echoes, shown as the bytes echoed per second (one direction). "+
			"**GET**: `http.Client.Get` and the body read, %d per sample, per request. Client and server are "+
			"`examples/grpc/rpcbench`, a program of the gRPC example's module that the bench runs with `go run` "+
			"(so that the bench binary, which its other workloads' children re-execute, does not link gRPC). "+
			"No process is pinned.",
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
