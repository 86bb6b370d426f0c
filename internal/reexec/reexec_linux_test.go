package reexec

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"mproc/internal/unix"
)

// pair returns two connected Conns.
func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, f, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := newConn(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestHelloRoundTripWithDescriptors(t *testing.T) {
	a, b := pair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	arg := bytes.Repeat([]byte("0123456789"), 100_000) // many datagrams
	h := Hello{Func: "f", Name: "n", ParentPid: 1, Grace: time.Second, Arg: arg}
	fds := make([]int, 600) // more than one datagram's worth
	for i := range fds {
		fds[i] = int(w.Fd())
	}
	errc := make(chan error, 1)
	go func() { errc <- a.SendHello(context.Background(), h, fds) }()
	typ, payload, got, err := b.recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if typ != msgHello || len(got) != len(fds) || len(payload) < len(arg) {
		t.Fatalf("type %q, %d fds, %d bytes", typ, len(got), len(payload))
	}
	if _, err := os.NewFile(uintptr(got[599].Int()), "w").Write([]byte("x")); err != nil {
		t.Fatalf("received descriptor unusable: %v", err)
	}
	closeAll(got)
	var one [1]byte
	if _, err := r.Read(one[:]); err != nil || one[0] != 'x' {
		t.Fatalf("read %q, %v", one, err)
	}
}

func TestResultAndEOF(t *testing.T) {
	a, b := pair(t)
	if err := b.SendResult(Result{Status: StatusPanic, Code: 3, Msg: "m", Stack: "s"}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	r, ok, err := a.RecvResult(time.Now().Add(time.Second))
	if err != nil || !ok || r.Status != StatusPanic || r.Code != 3 || r.Msg != "m" || r.Stack != "s" {
		t.Fatalf("%+v %v %v", r, ok, err)
	}
	if _, ok, err := a.RecvResult(time.Now().Add(time.Second)); ok || err != nil {
		t.Fatalf("after close: ok %v err %v", ok, err)
	}
}

func TestBadDatagrams(t *testing.T) {
	for _, dg := range [][]byte{{9, 'R', 0, 1}, {Version}, {Version, 'R', 0, 0xff, 0xff}} {
		a, b := pair(t)
		if _, err := b.f.Write(dg); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := a.RecvResult(time.Now().Add(time.Second)); err == nil || ok {
			t.Errorf("datagram % x: ok %v err %v", dg, ok, err)
		}
	}
}

func TestRecvReadyEOFAndContext(t *testing.T) {
	a, b := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := a.RecvReady(ctx); err != context.DeadlineExceeded {
		t.Fatalf("silent child: %v", err)
	}
	b.Close()
	if err := a.RecvReady(context.Background()); err != io.EOF {
		t.Fatalf("closed child: %v", err)
	}
}

func TestAttachRejectsOtherProtocols(t *testing.T) {
	for _, m := range []string{"v1:3", "v3:3", "3", "v2:x", "v2:1"} {
		if _, err := Attach(m); err == nil || !strings.Contains(err.Error(), "marker") {
			t.Errorf("Attach(%q): %v", m, err)
		}
	}
}

func TestEncodingRoundTripAndTruncation(t *testing.T) {
	h := Hello{Func: "f", Name: "näme", ParentPid: 1 << 22, Grace: -time.Second, Detached: true, Arg: []byte{0, 1, 2}}
	got, err := decodeHello(h.encode())
	if err != nil || got.Func != h.Func || got.Name != h.Name || got.ParentPid != h.ParentPid ||
		got.Grace != h.Grace || !got.Detached || !bytes.Equal(got.Arg, h.Arg) {
		t.Fatalf("hello: %+v, %v", got, err)
	}
	r := Result{Status: StatusError, Code: 1<<32 - 1, Msg: "m", Stack: strings.Repeat("s", 300)}
	if got, err := decodeResult(r.encode()); err != nil || got != r {
		t.Fatalf("result: %+v, %v", got, err)
	}
	enc := h.encode()
	for n := range len(enc) {
		if _, err := decodeHello(enc[:n]); err == nil {
			t.Errorf("hello cut to %d of %d bytes decoded", n, len(enc))
		}
	}
	if _, err := decodeHello(append(enc, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
}
