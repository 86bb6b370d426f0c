package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/shm"
	"mproc/pickle"
)

// The shared-memory path. A Go client of a Go server on one machine (a
// Unix socket) asks, on a new connection, for "mproc_accept_shm" instead
// of "accept_connection". The server creates two named queues in shared
// memory (0600: only the server's user can open them) and replies with
// their names; the client opens them and answers on the socket with True
// (or False, when it could not: the connection then carries the calls
// itself, as after accept_connection). The client removes both names as
// soon as it has opened the queues, and the server once it has the
// answer, so nothing is left in /dev/shm after the set-up, whichever of
// the two dies; but a server that dies before its client has the names
// leaves them, and the next server to start on the machine removes them
// (sweepShm).
// From then on requests travel on the first queue and replies on the
// second, each message in chunks of at most shmMaxMsg-1 bytes behind a
// flag byte (chunkMore: more of this message follows).
//
// The socket stays open and silent beside the queues: it is how each side
// learns that the other has gone. Each side watches it (one goroutine
// blocked in Poll, no CPU), and when it ends shuts the queue it reads from
// down, which ends its wait. A Python server does not know
// mproc_accept_shm: it replies '#TRACEBACK' and closes the connection, and
// the client keeps to the socket from then on.
const (
	methodAcceptShm = "mproc_accept_shm"
	shmSlots        = 4
	shmMaxMsg       = 64 << 10
	chunkMore       = 1
)

// A link carries one connection's calls: its socket, or the two queues of
// the shared-memory path beside it.
type link struct {
	sock    *mproc.Conn
	in, out *mproc.Queue[[]byte] // nil on the socket path
	max     int                  // the largest message recv accepts
	watched chan struct{}        // closed when the socket's watcher has returned
}

// socketLink makes c's link; max is the largest message either path
// accepts: the largest pickle the reader's decoder takes, so that a peer
// cannot make it allocate more for a message it would refuse anyway.
func socketLink(c *mproc.Conn, max int) *link {
	c.SetMaxFrame(max)
	return &link{sock: c, max: max}
}

// sendBufs keeps the buffers requests and replies are pickled into:
// send copies a message out (into the queue, or the socket) before it
// returns, so one buffer serves call after call.
var sendBufs = sync.Pool{New: func() any { return new([]byte) }}

// putSendBuf returns buf to sendBufs holding b's array, unless it grew
// large (one big message should not pin its buffer for good).
func putSendBuf(buf *[]byte, b []byte) {
	if cap(b) <= 64<<10 {
		*buf = b[:0]
		sendBufs.Put(buf)
	}
}

// send sends the message b; b may be reused once it returns.
func (l *link) send(ctx context.Context, b []byte) error {
	if l.out == nil {
		return l.sock.SendBytes(ctx, b)
	}
	for {
		n := min(len(b), shmMaxMsg-1)
		flag := byte(0)
		if n < len(b) {
			flag = chunkMore
		}
		chunk := b[:n]
		if err := l.out.PutFunc(ctx, n+1, func(p []byte) { p[0] = flag; copy(p[1:], chunk) }); err != nil {
			return l.queueErr(err)
		}
		if b = b[n:]; flag == 0 {
			return nil
		}
		failpoint.Hit(FailLinkChunk)
	}
}

func (l *link) recv(ctx context.Context) ([]byte, error) {
	if l.in == nil {
		return l.sock.RecvBytes(ctx)
	}
	var msg []byte
	for {
		more, bad := false, false
		err := l.in.GetFunc(ctx, func(p []byte) {
			if len(p) == 0 || p[0] > chunkMore || len(msg)+len(p)-1 > l.max {
				bad = true
				return
			}
			more = p[0] == chunkMore
			if msg == nil && !more {
				msg = make([]byte, 0, len(p)-1) // the usual one-chunk message, exactly sized
			}
			msg = append(msg, p[1:]...)
		})
		switch {
		case err != nil:
			return nil, l.queueErr(err)
		case bad:
			return nil, fmt.Errorf("%w: a malformed or oversized message on the shared-memory path", ErrProtocol)
		case !more:
			return msg, nil
		}
	}
}

// queueErr maps a queue's failure: a shut-down queue means the socket
// beside it ended, as the socket path would report it.
func (l *link) queueErr(err error) error {
	if errors.Is(err, mproc.ErrShutdown) {
		return fmt.Errorf("the connection ended: %w", os.ErrClosed)
	}
	return err
}

// watch starts the socket's watcher on the shared-memory path: when the
// socket ends (the peer closed it or died) or carries anything (which it
// must not), in is shut down and hangup runs.
func (l *link) watch(hangup func()) {
	l.watched = make(chan struct{})
	go func() {
		defer close(l.watched)
		l.sock.Poll(context.Background())
		l.in.Shutdown()
		if hangup != nil {
			hangup()
		}
	}()
}

// close closes the socket and, on the shared-memory path, waits for the
// watcher and releases the queues in this process.
func (l *link) close() {
	l.sock.Close()
	if l.watched != nil {
		<-l.watched
	}
	if l.in != nil {
		l.in.Close()
		l.out.Close()
	}
}

// shmPrefix starts the names of the shared-memory path's queues; the
// server's pid follows.
const shmPrefix = "mproc-manager-"

// shmQueues creates the pair of queues of a shared-memory link.
func shmQueues() (req, rep *mproc.Queue[[]byte], err error) {
	var r [8]byte
	rand.Read(r[:])
	base := fmt.Sprintf("%s%d-%s", shmPrefix, os.Getpid(), hex.EncodeToString(r[:]))
	if req, err = mproc.CreateQueue[[]byte](base+"-req", shmSlots, mproc.WithMaxMessage(shmMaxMsg)); err != nil {
		return nil, nil, err
	}
	if rep, err = mproc.CreateQueue[[]byte](base+"-rep", shmSlots, mproc.WithMaxMessage(shmMaxMsg)); err != nil {
		req.Remove()
		req.Close()
		return nil, nil, err
	}
	return req, rep, nil
}

// sweepShm removes the queue names that dead servers left: a server
// killed between creating a link's queues and its client's opening them
// (the client removes the names then) leaves names nobody else knows.
// Serve sweeps when it starts, and removes only names of this user whose
// server's pid no longer exists (a reused pid keeps them, for now).
func sweepShm() {
	names, _ := filepath.Glob(shm.Path(shmPrefix + "*"))
	for _, path := range names {
		name := strings.TrimPrefix(filepath.Base(path), shm.Prefix)
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, shmPrefix), "-", 2)[0])
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if fi, err := os.Lstat(path); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
			continue
		}
		shm.Unlink(name)
	}
}

// acceptShm serves the server's side of the set-up on l: it replies with
// the queues' names and reads the client's answer. It reports whether the
// link is now on the shared-memory path; false with a nil error means the
// client keeps to the socket.
func (s *Server) acceptShm(ctx context.Context, l *link) (bool, error) {
	req, rep, err := shmQueues()
	if err != nil {
		// The client reads the error and keeps to the socket.
		return false, s.send(ctx, l, pickle.Tuple{kindError, pickle.Object{Module: "builtins", Name: "OSError", Args: pickle.Tuple{err.Error()}}})
	}
	err = s.send(ctx, l, pickle.Tuple{kindReturn, pickle.Tuple{req.Name(), rep.Name()}})
	failpoint.Hit(FailServerShmOffered)
	var b []byte
	if err == nil {
		b, err = l.sock.RecvBytes(ctx)
	}
	req.Remove()
	rep.Remove()
	var ok bool
	if err == nil {
		var v any
		if err = pickle.Unmarshal(b, &v); err == nil {
			ok, _ = v.(bool)
		}
	}
	if err != nil || !ok {
		req.Close()
		rep.Close()
		return false, err
	}
	l.in, l.out = req, rep
	return true, nil
}

// refusedError is a server's refusal of the shared-memory path.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return "shared-memory path refused: " + e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// dialShm asks for the shared-memory path on a new connection conn. It
// returns the link on either path, or an error when the server refused the
// request (a Python server, which has closed conn).
func dialShm(ctx context.Context, conn *mproc.Conn) (*link, error) {
	l := socketLink(conn, pickle.DefaultMaxSize)
	t, err := exchange(ctx, l, request{method: methodAcceptShm})
	if err != nil {
		return nil, err
	}
	v, err := result(methodAcceptShm, t)
	if err != nil {
		return nil, &refusedError{err}
	}
	names, _ := v.(pickle.Tuple)
	if len(names) != 2 {
		return nil, fmt.Errorf("%w: %s returned %T", ErrProtocol, methodAcceptShm, v)
	}
	reqName, _ := names[0].(string)
	repName, _ := names[1].(string)
	req, err := mproc.OpenQueue[[]byte](reqName)
	var rep *mproc.Queue[[]byte]
	if err == nil {
		if rep, err = mproc.OpenQueue[[]byte](repName); err != nil {
			req.Close()
		}
	}
	opened := err == nil
	if opened {
		// The server removes the names once it has the answer; should it
		// die before, they would stay in /dev/shm for good. Whichever
		// removes them first, nothing is left.
		req.Remove()
		rep.Remove()
	}
	b, _ := pickle.Marshal(opened)
	if err := conn.SendBytes(ctx, b); err != nil {
		if opened {
			req.Close()
			rep.Close()
		}
		return nil, gone(ctx, err)
	}
	if opened {
		l.in, l.out = rep, req
		l.watch(nil)
	}
	return l, nil
}
