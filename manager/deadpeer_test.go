package manager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mproc"
	"mproc/internal/owner"
	"mproc/internal/wire"
	"mproc/pickle"
)

// Regression tests for what TestTortureClientKilled and
// TestTortureServerKilled (torture_test.go, -tags mprocfail) found.

// deadToken returns the token of a process that has lived and died.
func deadToken(t *testing.T) uint64 {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tok, err := owner.Of(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return tok.Pack()
}

// waitNumObjects waits up to 10 s for s to hold want objects.
func waitNumObjects(t *testing.T, s *Server, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.NumObjects() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d objects, want %d", s.NumObjects(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client killed right after sending incref or decref may have its call
// read after the reaper has dropped its references: counted then, a decref
// dropped another process's reference, and the object went while that one
// still held it.
func TestLateDecrefFromDeadClient(t *testing.T) {
	s := NewServer(Options{})
	defer close(s.served)
	obj, err := s.types["dict"].New(Args{})
	if err != nil {
		t.Fatal(err)
	}
	live, dead := owner.Self().Pack(), deadToken(t)
	id := s.hold("dict", obj, live)
	// The dead client's incref, counted while it lived.
	s.mu.Lock()
	s.refLocked(s.objs[id], id, true, dead)
	s.mu.Unlock()
	// The reaper drops it; the live reference stays.
	if refs := waitRefs(t, s, id, 1); refs != 1 {
		t.Fatalf("%d references once the dead client's are dropped, want 1", refs)
	}
	// Then its late calls arrive.
	if err := s.ref(id, false, dead); err != nil {
		t.Fatal(err)
	}
	if err := s.ref(id, true, dead); err != nil {
		t.Fatalf("the live client's object after a dead client's late decref: %v", err)
	}
	time.Sleep(2 * reapEvery)
	if refs := waitRefs(t, s, id, 1); refs != 1 {
		t.Fatalf("%d references after a dead client's late decref and incref; the live client holds 1", refs)
	}
}

// waitRefs waits up to 10 s for object id to have want references, and
// returns how many it has (-1: freed).
func waitRefs(t *testing.T, s *Server, id string, want int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.mu.Lock()
		refs := -1
		if e := s.objs[id]; e != nil {
			refs = e.refs
		}
		s.mu.Unlock()
		if refs == want || time.Now().After(deadline) {
			return refs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that dies before the server has looked it up (its request is
// read after its death) gets a token no live process has: what it creates
// is reaped, not held for ever as if it came over TCP.
func TestCreateFromDeadClient(t *testing.T) {
	s := NewServer(Options{})
	defer close(s.served)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	peer := peerToken(cmd.Process.Pid)
	if peer == 0 || owner.Alive(owner.Unpack(peer)) {
		t.Fatalf("the token of a dead peer is %#x, which is zero or alive", peer)
	}
	if _, _, err := s.create("dict", Args{}, peer); err != nil {
		t.Fatal(err)
	}
	waitNumObjects(t, s, 0)
}

// A server that dies between naming the shared-memory path's queues and
// removing the names must not leave them in /dev/shm: the client removes
// them once it has opened them.
func TestShmNamesRemovedByClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := []byte("key")
	ln, err := mproc.Listen("unix", filepath.Join(t.TempDir(), "m"), key, mproc.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := NewServer(Options{})
	names := make(chan string, 2)
	go func() {
		// A server that offers the queues and "dies": it closes the
		// connection after the answer without removing the names.
		c, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		l := socketLink(c, pickle.DefaultMaxSize)
		if _, err := s.recv(ctx, l); err != nil {
			return
		}
		req, rep, err := shmQueues()
		if err != nil {
			return
		}
		defer req.Close()
		defer rep.Close()
		names <- req.Name()
		names <- rep.Name()
		s.send(ctx, l, pickle.Tuple{kindReturn, pickle.Tuple{req.Name(), rep.Name()}})
		c.RecvBytes(ctx)
	}()
	conn, err := mproc.Dial(ctx, "unix", ln.Addr(), key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := dialShm(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if l.in == nil {
		t.Fatal("the client kept to the socket")
	}
	for range 2 {
		name := <-names
		if _, err := mproc.OpenQueue[[]byte](name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("queue %q after the set-up: %v, want it removed", name, err)
		}
	}
}

// A server that died before its client had the queues' names left them:
// the next server sweeps them, and only those of servers that are gone.
func TestSweepShm(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("%s%d-test-req", shmPrefix, cmd.Process.Pid)
	live := fmt.Sprintf("%s%d-test-req", shmPrefix, os.Getpid())
	for _, name := range []string{dead, live} {
		q, err := mproc.CreateQueue[[]byte](name, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Remove()
		q.Close()
	}
	sweepShm()
	if _, err := mproc.OpenQueue[[]byte](dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dead server's queue after the sweep: %v, want it removed", err)
	}
	q, err := mproc.OpenQueue[[]byte](live)
	if err != nil {
		t.Fatalf("a live server's queue after the sweep: %v", err)
	}
	q.Close()
}

// A server that dies during the handshake ends the connection, which
// mproc.Dial reports as ErrAuth: the client reports ErrServerGone, whether
// the connection was reset or just closed (then a second try finds the
// server gone).
func TestDialServerDiesInHandshake(t *testing.T) {
	for _, reset := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		path := filepath.Join(t.TempDir(), "m")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if reset {
					// Unread bytes at close make the kernel reset the
					// connection: the challenge's answer, once it comes.
					wire.WriteFrame(c, append([]byte("#CHALLENGE#{sha256}"), make([]byte, 32)...))
					time.Sleep(50 * time.Millisecond)
					c.Close()
					continue
				}
				// Closed mid-handshake, and the listener gone with it.
				ln.Close()
				c.Close()
				return
			}
		}()
		_, err = Dial(ctx, "unix", path, []byte("key"), nil)
		ln.Close()
		if !errors.Is(err, ErrServerGone) {
			t.Fatalf("Dial of a server that died in the handshake (reset %v): %v, want ErrServerGone", reset, err)
		}
	}
}
