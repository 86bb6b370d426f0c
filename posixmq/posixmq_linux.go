package posixmq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mproc/internal/deadline"
	"mproc/internal/unix"
)

// Flags for Open: one access mode, optionally with O_CREATE and O_EXCL.
// They are the os package's values.
const (
	O_RDONLY = os.O_RDONLY // receive only
	O_WRONLY = os.O_WRONLY // send only
	O_RDWR   = os.O_RDWR   // send and receive
	O_CREATE = os.O_CREATE // create the queue if it does not exist
	O_EXCL   = os.O_EXCL   // with O_CREATE: fail with os.ErrExist if it does
)

const (
	// NameMax is the longest name, in bytes, without the leading '/'.
	NameMax = 255
	// MaxPriority is the highest message priority; 0 is the lowest.
	MaxPriority = unix.MQ_PRIO_MAX - 1
)

// Attr is a queue's attributes. MaxMsgs and MsgSize are set when the
// queue is created and never change; a zero field asks for the system
// default (/proc/sys/fs/mqueue/msg_default, msgsize_default).
type Attr struct {
	MaxMsgs int64 // capacity in messages
	MsgSize int64 // the largest message, in bytes
	CurMsgs int64 // messages in the queue now; read-only, ignored by Open
}

// Queue is an open POSIX message queue. It is safe for concurrent use by
// multiple goroutines: senders wait their turn among themselves, and so do
// receivers, each bounded by its own context.
//
// The descriptor is non-blocking and lives in the Go runtime's poller, so
// a Send or Receive that waits parks its goroutine, not an OS thread.
type Queue struct {
	name    string // as given to Open, for errors
	kname   string // the kernel's name: no leading '/'
	f       *os.File
	rc      syscall.RawConn
	access  int   // O_RDONLY, O_WRONLY or O_RDWR
	maxMsgs int64 // fixed at creation
	msgSize int64 // fixed at creation

	// rsem and wsem admit one receiver and one sender at a time to the
	// poller (os.File's own lock would not let a waiting goroutine
	// leave when its context ends). The holder binds its context to the
	// read or write deadline of f (rdl, wdl).
	rsem, wsem chan struct{}
	rdl, wdl   *deadline.Binder

	closed atomic.Bool
	mu     sync.Mutex
	notes  map[*notifier]struct{} // pending Notify calls; nil once closed

	errFull, errEmpty error // preallocated: TrySend and TryReceive are polled
}

// kernelName validates name and returns it as the kernel takes it.
func kernelName(name string) (string, error) {
	k := strings.TrimPrefix(name, "/")
	var why string
	switch {
	case k == "":
		why = "empty"
	case len(k) > NameMax:
		why = fmt.Sprintf("%d bytes long, over NAME_MAX (%d) without the leading '/'", len(k), NameMax)
	case strings.Contains(k, "/"):
		why = "holds a '/' other than a leading one"
	case k == "." || k == "..":
		why = "\".\" and \"..\" cannot name a queue"
	case strings.IndexByte(k, 0) >= 0:
		why = "holds a NUL byte"
	default:
		return k, nil
	}
	return "", fmt.Errorf("%w: %s", ErrInvalidName, why)
}

// Open opens the queue called name ("/jobs" or "jobs": one leading '/' at
// most, no other, up to NameMax bytes), creating it with O_CREATE. flags is
// O_RDONLY, O_WRONLY or O_RDWR, optionally with O_CREATE and O_EXCL. attr
// and perm (permission bits, less the umask) apply only when the queue is
// created; a nil attr asks for the system defaults.
//
// Errors wrap os.ErrExist (O_CREATE|O_EXCL and the queue exists),
// os.ErrNotExist (no O_CREATE and no queue), os.ErrPermission (the queue's
// mode refuses the access), ErrInvalidName, and, for a queue the kernel
// would not create, a [*LimitError] (ErrLimit) naming the limit passed
// and its value.
func Open(name string, flags int, attr *Attr, perm os.FileMode) (*Queue, error) {
	kname, err := kernelName(name)
	if err != nil {
		return nil, &Error{"open", name, err}
	}
	access := flags & (O_RDONLY | O_WRONLY | O_RDWR)
	if flags&^(O_RDONLY|O_WRONLY|O_RDWR|O_CREATE|O_EXCL) != 0 || access == O_WRONLY|O_RDWR {
		return nil, &Error{"open", name, fmt.Errorf("flags %#x: want O_RDONLY, O_WRONLY or O_RDWR, with O_CREATE and O_EXCL only: %w", flags, syscall.EINVAL)}
	}
	if perm&^os.ModePerm != 0 {
		return nil, &Error{"open", name, fmt.Errorf("mode %v: permission bits only: %w", perm, syscall.EINVAL)}
	}
	var ka *unix.MqAttr
	if flags&O_CREATE != 0 && attr != nil && (attr.MaxMsgs != 0 || attr.MsgSize != 0) {
		if ka, err = kernelAttr(attr); err != nil {
			return nil, &Error{"open", name, err}
		}
	}
	mqd, err := ignoringEINTR2(func() (int, error) {
		return unix.MqOpen(kname, flags|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(perm), ka)
	})
	if err != nil {
		return nil, &Error{"open", name, openError(flags, ka, err)}
	}
	var a unix.MqAttr
	if err := unix.MqGetsetattr(mqd, nil, &a); err != nil {
		unix.Close(mqd)
		return nil, &Error{"open", name, err}
	}
	f := os.NewFile(uintptr(mqd), "/"+kname)
	// A descriptor the poller refused would make every wait block a
	// thread and ignore its context; mqueue descriptors are pollable
	// since Linux 2.6.6, so this is a broken kernel, not a fallback case.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, &Error{"open", name, fmt.Errorf("descriptor not pollable: %w", err)}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, &Error{"open", name, err}
	}
	q := &Queue{
		name: name, kname: kname, f: f, rc: rc, access: access,
		maxMsgs: a.Maxmsg, msgSize: a.Msgsize,
		rsem: make(chan struct{}, 1), wsem: make(chan struct{}, 1),
		rdl: deadline.New(f.SetReadDeadline), wdl: deadline.New(f.SetWriteDeadline),
		notes: make(map[*notifier]struct{}),
	}
	q.errFull = &Error{"send", name, ErrFull}
	q.errEmpty = &Error{"receive", name, ErrEmpty}
	return q, nil
}

// kernelAttr validates attr and fills its zero fields with the defaults.
func kernelAttr(attr *Attr) (*unix.MqAttr, error) {
	ka := &unix.MqAttr{Maxmsg: attr.MaxMsgs, Msgsize: attr.MsgSize}
	for _, x := range []struct {
		field, dflt string
		v           *int64
	}{
		{"MaxMsgs", "msg_default", &ka.Maxmsg},
		{"MsgSize", "msgsize_default", &ka.Msgsize},
	} {
		switch {
		case *x.v < 0:
			return nil, fmt.Errorf("%s %d is negative: %w", x.field, *x.v, syscall.EINVAL)
		case *x.v == 0:
			d, err := readProcInt(procMqueue + x.dflt)
			if err != nil {
				return nil, fmt.Errorf("%s 0 asks for the default: %w", x.field, err)
			}
			*x.v = d
		}
	}
	return ka, nil
}

// Unlink removes the queue's name. The queue lives on until every
// descriptor of it is closed; a queue opened by name afterwards is a new
// one. A missing queue is os.ErrNotExist.
func Unlink(name string) error {
	kname, err := kernelName(name)
	if err != nil {
		return &Error{"unlink", name, err}
	}
	if err := ignoringEINTR(func() error { return unix.MqUnlink(kname) }); err != nil {
		return &Error{"unlink", name, osErr(err)}
	}
	return nil
}

// Name returns the queue's name with its leading '/'.
func (q *Queue) Name() string { return "/" + q.kname }

// Attr returns the queue's attributes, with the number of messages in it
// now.
func (q *Queue) Attr() (Attr, error) {
	var a unix.MqAttr
	var err error
	if cerr := q.control(func(fd int) { err = unix.MqGetsetattr(fd, nil, &a) }); cerr != nil {
		return Attr{}, &Error{"attr", q.name, cerr}
	}
	if err != nil {
		return Attr{}, &Error{"attr", q.name, err}
	}
	return Attr{MaxMsgs: a.Maxmsg, MsgSize: a.Msgsize, CurMsgs: a.Curmsgs}, nil
}

// Send adds msg to the queue with priority prio (0 to MaxPriority),
// waiting while the queue is full until ctx is done; then it returns
// ctx.Err(). With room in the queue it sends even if ctx is done: ctx
// bounds the wait. A message longer than the queue's MsgSize is
// ErrTooLarge.
func (q *Queue) Send(ctx context.Context, msg []byte, prio uint) error {
	if err := q.checkSend(msg, prio); err != nil {
		return err
	}
	err := q.trySend(msg, prio)
	if err == unix.EAGAIN {
		err = q.wait(ctx, q.wsem, q.wdl, q.rc.Write, func(fd uintptr) bool {
			err = send(int(fd), msg, prio)
			return err != unix.EAGAIN
		})
	}
	return q.ioError("send", err)
}

// TrySend adds msg if there is room now, or fails with ErrFull.
func (q *Queue) TrySend(msg []byte, prio uint) error {
	if err := q.checkSend(msg, prio); err != nil {
		return err
	}
	if err := q.trySend(msg, prio); err == unix.EAGAIN {
		return q.errFull
	} else {
		return q.ioError("send", err)
	}
}

// Receive removes the oldest message of the highest priority into buf,
// waiting while the queue is empty until ctx is done (then it returns
// ctx.Err(); a message already there is received whatever ctx says), and
// returns its length and priority. buf must hold MsgSize
// bytes (Attr), the kernel's rule even for shorter messages; a shorter buf
// is ErrBufferTooSmall and nothing is received.
func (q *Queue) Receive(ctx context.Context, buf []byte) (n int, prio uint, err error) {
	if err := q.checkReceive(buf); err != nil {
		return 0, 0, err
	}
	n, prio, err = q.tryReceive(buf)
	if err == unix.EAGAIN {
		err = q.wait(ctx, q.rsem, q.rdl, q.rc.Read, func(fd uintptr) bool {
			n, prio, err = receive(int(fd), buf)
			return err != unix.EAGAIN
		})
	}
	return n, prio, q.ioError("receive", err)
}

// TryReceive is Receive without waiting: it fails with ErrEmpty if the
// queue is empty.
func (q *Queue) TryReceive(buf []byte) (n int, prio uint, err error) {
	if err := q.checkReceive(buf); err != nil {
		return 0, 0, err
	}
	n, prio, err = q.tryReceive(buf)
	if err == unix.EAGAIN {
		return 0, 0, q.errEmpty
	}
	return n, prio, q.ioError("receive", err)
}

// Close closes this process's descriptor of the queue and cancels its
// pending Notify calls; waiting Send and Receive calls return
// os.ErrClosed. The queue and its messages remain until Unlink.
func (q *Queue) Close() error {
	if !q.closed.CompareAndSwap(false, true) {
		return &Error{"close", q.name, os.ErrClosed}
	}
	q.mu.Lock()
	notes := q.notes
	q.notes = nil
	q.mu.Unlock()
	for n := range notes {
		n.stop()
	}
	if err := q.f.Close(); err != nil {
		return &Error{"close", q.name, err}
	}
	return nil
}

func (q *Queue) checkSend(msg []byte, prio uint) error {
	switch {
	case q.closed.Load():
		return &Error{"send", q.name, os.ErrClosed}
	case q.access == O_RDONLY:
		return &Error{"send", q.name, ErrReadOnly}
	case int64(len(msg)) > q.msgSize:
		return &Error{"send", q.name, fmt.Errorf("%w: %d bytes, over MsgSize %d", ErrTooLarge, len(msg), q.msgSize)}
	case prio > MaxPriority:
		return &Error{"send", q.name, fmt.Errorf("%w: %d, over %d", ErrPriority, prio, MaxPriority)}
	}
	return nil
}

func (q *Queue) checkReceive(buf []byte) error {
	switch {
	case q.closed.Load():
		return &Error{"receive", q.name, os.ErrClosed}
	case q.access == O_WRONLY:
		return &Error{"receive", q.name, ErrWriteOnly}
	case int64(len(buf)) < q.msgSize:
		return &Error{"receive", q.name, fmt.Errorf("%w: %d bytes, under the queue's MsgSize %d", ErrBufferTooSmall, len(buf), q.msgSize)}
	}
	return nil
}

// send and receive are the non-blocking calls, retried on EINTR.
func send(fd int, msg []byte, prio uint) error {
	return ignoringEINTR(func() error { return unix.MqTimedsend(fd, msg, uint32(prio), nil) })
}

func receive(fd int, buf []byte) (int, uint, error) {
	var p uint32
	n, err := ignoringEINTR2(func() (int, error) { return unix.MqTimedreceive(fd, buf, &p, nil) })
	return n, uint(p), err
}

func (q *Queue) trySend(msg []byte, prio uint) error {
	var err error
	if cerr := q.control(func(fd int) { err = send(fd, msg, prio) }); cerr != nil {
		return cerr
	}
	return err
}

func (q *Queue) tryReceive(buf []byte) (n int, prio uint, err error) {
	if cerr := q.control(func(fd int) { n, prio, err = receive(fd, buf) }); cerr != nil {
		return 0, 0, cerr
	}
	return n, prio, err
}

// control runs f on the descriptor without the poller's read or write lock,
// so that it does not queue behind a waiting Receive or Send.
func (q *Queue) control(f func(fd int)) error {
	err := q.rc.Control(func(fd uintptr) { f(int(fd)) })
	if err != nil && q.closed.Load() {
		return os.ErrClosed
	}
	return err
}

// wait runs op in the poller (io is q.rc.Read or q.rc.Write) until op
// reports done, ctx is done or q is closed. One goroutine per direction
// waits in the poller at a time, admitted by sem; it binds ctx to the
// direction's deadline (dl), whose generations keep a late cancellation
// from touching the next holder's deadline.
func (q *Queue) wait(ctx context.Context, sem chan struct{}, dl *deadline.Binder,
	io func(func(uintptr) bool) error, op func(uintptr) bool) error {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sem }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		unbind := dl.Bind(ctx) // a set error means closed, which io reports
		err := io(op)
		unbind()
		switch {
		case err == nil:
			return nil
		case q.closed.Load():
			return os.ErrClosed
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return err
		}
		// The deadline passed: ctx is done, which the loop reports, or
		// its deadline passed and the file's timer beat the context's.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return context.DeadlineExceeded
		}
	}
}

// ioError wraps the error of a send or receive.
func (q *Queue) ioError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case err == syscall.EMSGSIZE && op == "send":
		err = ErrTooLarge
	case err == syscall.EMSGSIZE:
		err = ErrBufferTooSmall
	case err == syscall.EBADF && op == "send":
		err = ErrReadOnly
	case err == syscall.EBADF && !q.closed.Load():
		err = ErrWriteOnly
	case err == syscall.EBADF:
		err = os.ErrClosed
	}
	return &Error{op, q.name, err}
}

// osErr turns the errnos that have an os sentinel into it.
func osErr(err error) error {
	switch err {
	case syscall.ENOENT:
		return os.ErrNotExist
	case syscall.EEXIST:
		return os.ErrExist
	case syscall.EACCES, syscall.EPERM:
		return os.ErrPermission
	}
	return err
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

func ignoringEINTR2[T any](f func() (T, error)) (T, error) {
	for {
		if v, err := f(); err != unix.EINTR {
			return v, err
		}
	}
}
