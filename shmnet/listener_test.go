package shmnet_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mproc/internal/testenv"
	"mproc/shmnet"
)

// TestListener checks the Listener's address and socket file, Accept after
// Close, a Close that ends a waiting Accept, and the file's removal.
func TestListener(t *testing.T) {
	testenv.CheckFDLeaks(t)
	path := filepath.Join(t.TempDir(), "s")
	ln, err := shmnet.Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := ln.Addr(); a.Network() != "shmnet" || a.String() != path {
		t.Errorf("Addr %q on %q, want %q on shmnet", a, a.Network(), path)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v, %v; want a socket, mode 0600", st.Mode(), err)
	}
	if _, err := shmnet.Listen(path, nil); err == nil {
		t.Error("a second Listen on a taken path succeeded")
	}

	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("waiting Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Accept")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	if _, err := shmnet.Dial(context.Background(), path, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dial after Close: %v, want os.ErrNotExist", err)
	}
}

// TestListenerPrivatePath checks Listen with an empty path: a socket in a
// new private directory, both removed by Close.
func TestListenerPrivatePath(t *testing.T) {
	ln, err := shmnet.Listen("", nil)
	if err != nil {
		t.Fatal(err)
	}
	path := ln.Addr().String()
	d, a, err := connect(ln, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	a.Close()
	ln.Close()
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private directory %s after Close: %v", filepath.Dir(path), err)
	}
}

// TestOptions checks that bad options are refused.
func TestOptions(t *testing.T) {
	for _, o := range []shmnet.Options{
		{RingSize: 3 << 10},
		{RingSize: shmnet.MinRingSize / 2},
		{RingSize: 2 * shmnet.MaxRingSize},
		{RingSize: -1},
		{HandshakeTimeout: -time.Second},
	} {
		if ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), &o); err == nil {
			ln.Close()
			t.Errorf("Listen with %+v succeeded", o)
		}
		if _, err := shmnet.Dial(context.Background(), "/nonexistent", &o); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("Dial with %+v: %v, want the options refused", o, err)
		}
	}
}
