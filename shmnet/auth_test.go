package shmnet_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/shmnet"
)

// TestAuth checks the authkey handshake: the right key connects; a wrong
// key, and a missing one on either side, are refused on both sides with
// mproc.ErrAuth and a message that says which.
func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name           string
		listen, dial   []byte
		ok             bool
		dialSays       string
		listenerRefuse bool // the listener reports the client to OnError
	}{
		{name: "right key", listen: []byte("k1"), dial: []byte("k1"), ok: true},
		{name: "wrong key", listen: []byte("k1"), dial: []byte("k2"), dialSays: "refused the key", listenerRefuse: true},
		{name: "dialer without key", listen: []byte("k1"), dialSays: "requires a Key", listenerRefuse: true},
		{name: "listener without key", dial: []byte("k1"), dialSays: "has no Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.CheckFDLeaks(t)
			refused := make(chan error, 4)
			ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), &shmnet.Options{Key: tc.listen, OnError: func(err error) { refused <- err }})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan *shmnet.Conn, 1)
			go func() {
				c, err := ln.AcceptConn()
				if err == nil {
					accepted <- c
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := shmnet.Dial(ctx, ln.Addr().String(), &shmnet.Options{Key: tc.dial})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				a := <-accepted
				defer a.Close()
				go a.Write([]byte("welcome"))
				buf := make([]byte, 7)
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "welcome" {
					t.Fatalf("read %q, %v", buf, err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, mproc.ErrAuth) || !strings.Contains(err.Error(), tc.dialSays) {
				t.Errorf("Dial: %v; want mproc.ErrAuth saying %q", err, tc.dialSays)
			}
			t.Logf("dialer: %v", err)
			if tc.listenerRefuse {
				select {
				case err := <-refused:
					if !errors.Is(err, mproc.ErrAuth) {
						t.Errorf("listener's OnError: %v, want mproc.ErrAuth", err)
					}
					t.Logf("listener: %v", err)
				case <-time.After(10 * time.Second):
					t.Error("the listener did not report the refused client")
				}
				select {
				case a := <-accepted:
					a.Close()
					t.Error("Accept returned the refused client")
				default:
				}
				return
			}
			// The keyless listener had sent its segment: the connection it
			// accepted fails at once, its dialer gone.
			select {
			case a := <-accepted:
				defer a.Close()
				a.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := a.Read(make([]byte, 1)); !errors.Is(err, shmnet.ErrPeerGone) {
					t.Errorf("the listener's side of the refused connection: %v, want ErrPeerGone", err)
				}
			case err := <-refused:
				t.Logf("listener: %v", err) // the dialer left before the segment went out
			case <-time.After(10 * time.Second):
				t.Error("the listener neither accepted nor refused")
			}
		})
	}
}
