package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
)

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, n := range []int{0, 1, 16384, 16385, 70000} {
		if err := WriteFrame(&buf, bytes.Repeat([]byte{7}, n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{0, 1, 16384, 16385, 70000} {
		p, err := ReadFrame(&buf, 1<<20, nil)
		if err != nil || len(p) != n {
			t.Fatalf("frame of %d: %d bytes, %v", n, len(p), err)
		}
	}
	if _, err := ReadFrame(&buf, 10, nil); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
	// The 8-byte extension, as Python 3.11 accepts it for any size.
	ext := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}
	if p, err := ReadFrame(bytes.NewReader(ext), 10, nil); err != nil || string(p) != "hello" {
		t.Fatalf("extended header: %q %v", p, err)
	}
	if h := AppendHeader(nil, 1<<31); !bytes.Equal(h, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0}) {
		t.Fatalf("2 GiB header % x", h)
	}
	for _, bad := range []struct {
		in   []byte
		want error
	}{
		{[]byte{0xff, 0xff, 0xff, 0xfe}, ErrProtocol},
		{[]byte{0, 0, 0, 11}, ErrFrameTooLarge},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0}, ErrFrameTooLarge},
		{[]byte{0, 0}, io.ErrUnexpectedEOF},
		{[]byte{0, 0, 0, 5, 'a'}, io.ErrUnexpectedEOF},
	} {
		if _, err := ReadFrame(bytes.NewReader(bad.in), 10, nil); !errors.Is(err, bad.want) {
			t.Errorf("% x: %v, want %v", bad.in, err, bad.want)
		}
	}
	// A huge claimed length allocates nothing.
	huge := []byte{0x7f, 0xff, 0xff, 0xff}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ReadFrame(bytes.NewReader(huge), 1<<20, nil)
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4096 {
		t.Fatalf("%d bytes allocated for a refused frame", d)
	}
}

func handshake(t *testing.T, serverKey, clientKey []byte) (srv, cli error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		err := Deliver(a, serverKey, false)
		if err == nil {
			err = Answer(a, serverKey)
		}
		a.Close()
		done <- err
	}()
	cli = Answer(b, clientKey)
	if cli == nil {
		cli = Deliver(b, clientKey, false)
	}
	b.Close()
	return <-done, cli
}

func TestHandshake(t *testing.T) {
	if s, c := handshake(t, []byte("key"), []byte("key")); s != nil || c != nil {
		t.Fatalf("same key: %v / %v", s, c)
	}
	s, c := handshake(t, []byte("key"), []byte("other"))
	if !errors.Is(s, ErrAuth) || !errors.Is(c, ErrAuth) {
		t.Fatalf("wrong key: %v / %v", s, c)
	}
}

// A legacy (Python 3.11) challenge is answered with a bare HMAC-MD5.
func TestLegacyAnswer(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	key, msg := []byte("k"), bytes.Repeat([]byte{1}, 20)
	go func() {
		WriteFrame(a, append([]byte(challenge), msg...))
		resp, _ := ReadFrame(a, 256, nil)
		m := hmac.New(md5.New, key)
		m.Write(msg)
		if hmac.Equal(resp, m.Sum(nil)) {
			WriteFrame(a, []byte(welcome))
		} else {
			WriteFrame(a, []byte(failure))
		}
	}()
	if err := Answer(b, key); err != nil {
		t.Fatal(err)
	}
}
