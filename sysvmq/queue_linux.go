//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package sysvmq

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mproc/internal/unix"
)

// Keys and flags of Get.
const (
	// IPCPrivate is the key that always creates a new queue, reachable
	// only by its identifier (Queue.ID, or a *Queue in the argument of
	// mproc's Start).
	IPCPrivate = unix.IPC_PRIVATE
	// IPCCreat creates the queue if no queue has the key (IPC_CREAT).
	IPCCreat = unix.IPC_CREAT
	// IPCExcl, with IPCCreat, fails with os.ErrExist if a queue has the
	// key (IPC_EXCL).
	IPCExcl = unix.IPC_EXCL
)

// Key returns the System V IPC key that ftok(3) derives from an existing
// file and a project byte, computed as glibc does from stat(2) of path:
//
//	(proj & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)
//
// so C, Perl (IPC::SysV::ftok) and Python (the third-party sysv_ipc)
// programs that name the same file and project get the same key. The key
// is as unique as those 24 bits of device and inode: two files may
// collide, and replacing the file (a new inode) changes it. proj 0 is
// refused (ErrInvalid): POSIX leaves it unspecified.
func Key(path string, proj byte) (int, error) {
	if proj == 0 {
		return 0, fmt.Errorf("sysvmq key %q: project 0: %w", path, ErrInvalid)
	}
	k, err := unix.Ftok(path, int(proj))
	if err != nil {
		return 0, fmt.Errorf("sysvmq key %q: %w", path, err)
	}
	return k, nil
}

// Queue is a System V message queue: a kernel object named by a key and
// identified by a number (ID) that every process on the machine (in the
// same IPC namespace) may use, permissions allowing. A Queue holds only
// that number: there is nothing to close, and the queue outlives every
// process until Remove.
//
// A *Queue may travel in the argument of mproc's Start (it encodes its
// identifier). It is safe for concurrent use by multiple goroutines.
type Queue struct {
	id      int
	removed atomic.Bool // Remove succeeded here
}

// Get returns the queue with key, as msgget(2) does. flags is 0 (open an
// existing queue: os.ErrNotExist if none), IPCCreat (open or create), or
// IPCCreat|IPCExcl (create: os.ErrExist if the key is taken). perm holds
// the permission bits of a queue it creates (write permission lets a
// process send, read permission receive and Stat); an existing queue's
// permissions are checked against it, and a process without them gets
// os.ErrPermission. IPCPrivate always creates a new queue. Creating more
// than kernel.msgmni queues (32000 by default) fails with ENOSPC and an
// error that names the limit.
func Get(key int, flags int, perm os.FileMode) (*Queue, error) {
	if flags&^(IPCCreat|IPCExcl) != 0 || perm&^os.ModePerm != 0 || key < math.MinInt32 || key > math.MaxUint32 {
		return nil, &Error{Op: "get", Key: key, ID: -1, Err: ErrInvalid}
	}
	key = int(int32(uint32(key)))
	id, err := unix.Msgget(key, flags|int(perm))
	if err == unix.ENOSPC {
		max, _ := os.ReadFile("/proc/sys/kernel/msgmni")
		err = fmt.Errorf("the IPC namespace already holds kernel.msgmni = %s queues: %w", strings.TrimSpace(string(max)), err)
	}
	if err != nil {
		return nil, &Error{Op: "get", Key: key, ID: -1, Err: err}
	}
	return &Queue{id: id}, nil
}

// FromID returns the queue with identifier id, as another process's
// Queue.ID reported it. It fails with ErrRemoved if no queue has it; a
// queue that this process may not read (IPC_STAT) is still returned.
func FromID(id int) (*Queue, error) {
	q := &Queue{id: id}
	if id < 0 || id > math.MaxInt32 || q.gone() {
		return nil, &Error{Op: "get", ID: id, Err: ErrRemoved}
	}
	return q, nil
}

// ID returns the queue's identifier.
func (q *Queue) ID() int { return q.id }

// GobEncode implements gob.GobEncoder: a *Queue in the argument of Start
// reaches the child as the same queue.
func (q *Queue) GobEncode() ([]byte, error) { return strconv.AppendInt(nil, int64(q.id), 10), nil }

// GobDecode implements gob.GobDecoder.
func (q *Queue) GobDecode(b []byte) error {
	id, err := strconv.Atoi(string(b))
	if err != nil || id < 0 {
		return fmt.Errorf("sysvmq: decode queue %q: %w", b, ErrInvalid)
	}
	q.id = id
	return nil
}

// Send appends a message of type typ (at least 1) to the queue, waiting
// while the queue is full (its bytes or its message count at MaxBytes)
// until ctx is done; it then returns ctx's error and sends nothing. A
// message longer than kernel.msgmax (8192 bytes by default) or than the
// queue's capacity fails with ErrTooLarge. (For the capacity the kernel
// itself would wait forever; a sender without read permission cannot see
// the capacity, and waits.) See the package documentation for how a
// blocked Send is cancelled.
func (q *Queue) Send(ctx context.Context, typ int64, msg []byte) error {
	return q.send(ctx, typ, msg, true)
}

// TrySend is Send without waiting: it fails with ErrFull when there is no
// room now (and ErrTooLarge when there never will be).
func (q *Queue) TrySend(typ int64, msg []byte) error {
	return q.send(nil, typ, msg, false)
}

func (q *Queue) send(ctx context.Context, typ int64, msg []byte, wait bool) error {
	if typ <= 0 {
		return &Error{Op: "send", ID: q.id, Err: fmt.Errorf("message type %d is not positive: %w", typ, ErrInvalid)}
	}
	if q.removed.Load() {
		return &Error{Op: "send", ID: q.id, Err: ErrRemoved}
	}
	bp := getBuf(unix.MsgTypeSize + len(msg))
	defer putBuf(bp)
	b := *bp
	binary.NativeEndian.PutUint64(b, uint64(typ))
	copy(b[unix.MsgTypeSize:], msg)
	err := unix.Msgsnd(q.id, b, unix.IPC_NOWAIT)
	if err == unix.EAGAIN && q.overCapacity(len(msg)) {
		err = unix.EINVAL // it would never fit: the kernel would wait forever
	}
	if err == unix.EAGAIN && wait {
		_, err = block(ctx, func(nowait int) (int, error) { return 0, unix.Msgsnd(q.id, b, nowait) })
	}
	switch {
	case err == nil:
		return nil
	case err == unix.EAGAIN:
		return ErrFull
	case err == unix.EINVAL && !q.gone():
		err = q.tooLarge(len(msg))
	}
	return q.fail("send", err)
}

// overCapacity reports whether a message of n bytes is longer than the
// queue's capacity, so that msgsnd would wait for room forever (the kernel
// refuses only messages above kernel.msgmax). A sender without read
// permission cannot tell, and waits.
func (q *Queue) overCapacity(n int) bool {
	var ds unix.MsqidDs
	_, err := unix.Msgctl(q.id, unix.IPC_STAT, &ds)
	return err == nil && uint64(n) > ds.Qbytes
}

// Receive removes a message and copies its text into buf, waiting until
// one is there or ctx is done. typeFilter chooses it, as msgrcv(2) does:
//
//   - 0: the first message in the queue;
//   - > 0: the first message of type typeFilter;
//   - < 0: the first message of the lowest type <= -typeFilter.
//
// Messages are in sending order; within a type, the first sent is the
// first received. It returns the length of the text and the message's
// type. A message longer than buf is not received: the error is a
// *TooLongError (ErrBufferTooSmall) with both lengths, and the message
// stays queued; ReceiveWith can truncate instead. When the queue is
// removed, a waiting Receive fails with ErrRemoved.
func (q *Queue) Receive(ctx context.Context, typeFilter int64, buf []byte) (n int, typ int64, err error) {
	return q.ReceiveWith(ctx, buf, ReceiveOptions{Type: typeFilter})
}

// TryReceive is Receive without waiting: it fails with ErrEmpty when no
// message matches typeFilter now.
func (q *Queue) TryReceive(typeFilter int64, buf []byte) (n int, typ int64, err error) {
	return q.ReceiveWith(nil, buf, ReceiveOptions{Type: typeFilter, NoWait: true})
}

// ReceiveOptions modify ReceiveWith. The zero value is Receive's behaviour
// with typeFilter 0.
type ReceiveOptions struct {
	// Type is the type filter, as Receive's typeFilter.
	Type int64
	// Except, with Type > 0, takes the first message whose type is not
	// Type (MSG_EXCEPT).
	Except bool
	// Truncate receives a message longer than the buffer cut to the
	// buffer's length; the rest of it is lost (MSG_NOERROR). Without it,
	// such a message fails with a *TooLongError and stays queued.
	Truncate bool
	// NoWait fails with ErrEmpty instead of waiting (IPC_NOWAIT), as
	// TryReceive does.
	NoWait bool
}

// ReceiveWith is Receive with options. ctx is not used with NoWait (it may
// be nil then).
func (q *Queue) ReceiveWith(ctx context.Context, buf []byte, o ReceiveOptions) (n int, typ int64, err error) {
	if o.Except && o.Type <= 0 {
		return 0, 0, &Error{Op: "receive", ID: q.id, Err: fmt.Errorf("except type %d is not positive: %w", o.Type, ErrInvalid)}
	}
	if q.removed.Load() {
		return 0, 0, &Error{Op: "receive", ID: q.id, Err: ErrRemoved}
	}
	flags := 0
	if o.Except {
		flags |= unix.MSG_EXCEPT
	}
	if o.Truncate {
		flags |= unix.MSG_NOERROR
	}
	bp := getBuf(unix.MsgTypeSize + len(buf))
	defer putBuf(bp)
	b := *bp
	n, err = unix.Msgrcv(q.id, b, o.Type, flags|unix.IPC_NOWAIT)
	if err == unix.ENOMSG && !o.NoWait {
		n, err = block(ctx, func(nowait int) (int, error) { return unix.Msgrcv(q.id, b, o.Type, flags|nowait) })
	}
	switch err {
	case nil:
		return copy(buf, b[unix.MsgTypeSize:unix.MsgTypeSize+n]), int64(binary.NativeEndian.Uint64(b)), nil
	case unix.ENOMSG:
		return 0, 0, ErrEmpty
	case unix.E2BIG:
		err = q.tooLong(len(buf), o)
	}
	return 0, 0, q.fail("receive", err)
}

// Info describes a queue (IPC_STAT).
type Info struct {
	ID, Key    int
	Perm       os.FileMode // permission bits
	UID, GID   int         // owner
	CUID, CGID int         // creator
	Messages   int         // messages queued (msg_qnum)
	Bytes      int         // bytes of message text queued (msg_cbytes)
	MaxBytes   int         // capacity in bytes, and in messages (msg_qbytes)
	// LastSender and LastReceiver are the pids of the last msgsnd and
	// msgrcv (msg_lspid, msg_lrpid), as this process's pid namespace sees
	// them; 0 if none. When a message went straight to a receiver that
	// was waiting for it, the kernel records the receiving thread's id
	// instead of its process's: a Go process waits on threads other than
	// its main one, so LastReceiver may be a tid (/proc/PID/task/TID).
	LastSender, LastReceiver int
	// SendTime, ReceiveTime and ChangeTime are the times of the last
	// msgsnd, msgrcv, and creation or SetMaxBytes, to the second; zero if
	// none.
	SendTime, ReceiveTime, ChangeTime time.Time
}

// Stat describes the queue. It needs read permission.
func (q *Queue) Stat() (Info, error) {
	ds, err := q.stat("stat")
	if err != nil {
		return Info{}, err
	}
	t := func(s int64) time.Time {
		if s == 0 {
			return time.Time{}
		}
		return time.Unix(s, 0)
	}
	return Info{
		ID: q.id, Key: int(ds.Perm.Key), Perm: os.FileMode(ds.Perm.Mode) & os.ModePerm,
		UID: int(ds.Perm.Uid), GID: int(ds.Perm.Gid), CUID: int(ds.Perm.Cuid), CGID: int(ds.Perm.Cgid),
		Messages: int(ds.Qnum), Bytes: int(ds.Cbytes), MaxBytes: int(ds.Qbytes),
		LastSender: int(ds.Lspid), LastReceiver: int(ds.Lrpid),
		SendTime: t(ds.Stime), ReceiveTime: t(ds.Rtime), ChangeTime: t(ds.Ctime),
	}, nil
}

func (q *Queue) stat(op string) (*unix.MsqidDs, error) {
	if q.removed.Load() {
		return nil, &Error{Op: op, ID: q.id, Err: ErrRemoved}
	}
	var ds unix.MsqidDs
	if _, err := unix.Msgctl(q.id, unix.IPC_STAT, &ds); err != nil {
		return nil, q.fail(op, err)
	}
	return &ds, nil
}

// SetMaxBytes sets the queue's capacity: the most bytes of message text,
// and the most messages, it holds (msg_qbytes, by IPC_SET). The default is
// kernel.msgmnb (16384 bytes). Only the queue's owner or creator may set
// it, and raising it above kernel.msgmnb needs CAP_SYS_RESOURCE
// (os.ErrPermission otherwise).
func (q *Queue) SetMaxBytes(n int) error {
	if n < 1 || n > math.MaxInt32 {
		return &Error{Op: "set", ID: q.id, Err: fmt.Errorf("capacity %d: %w", n, ErrInvalid)}
	}
	ds, err := q.stat("set")
	if err != nil {
		return err
	}
	ds.Qbytes = uint64(n)
	if _, err := unix.Msgctl(q.id, unix.IPC_SET, ds); err != nil {
		return q.fail("set", err)
	}
	return nil
}

// Remove removes the queue at once (IPC_RMID): its messages are dropped,
// and every Send and Receive waiting on it, in any process, fails with
// ErrRemoved. Only the queue's owner or creator may remove it
// (os.ErrPermission otherwise). Removing a removed queue fails with
// ErrRemoved.
func (q *Queue) Remove() error {
	if q.removed.Load() {
		return &Error{Op: "remove", ID: q.id, Err: ErrRemoved}
	}
	if _, err := unix.Msgctl(q.id, unix.IPC_RMID, nil); err != nil {
		return q.fail("remove", err)
	}
	q.removed.Store(true)
	return nil
}

// fail wraps err for op, turning the kernel's ways of saying "removed"
// into ErrRemoved: EIDRM (removed while waiting) and EINVAL (the
// identifier names no queue; arguments were checked before the call).
func (q *Queue) fail(op string, err error) error {
	switch {
	case err == unix.EIDRM, err == unix.EINVAL && q.gone():
		err = ErrRemoved
	}
	return &Error{Op: op, ID: q.id, Err: err}
}

// gone reports whether the identifier no longer names a queue. (SysV
// identifiers carry a sequence number, so a removed queue's identifier is
// not soon reused by a new queue.)
func (q *Queue) gone() bool {
	if q.removed.Load() {
		return true
	}
	var ds unix.MsqidDs
	_, err := unix.Msgctl(q.id, unix.IPC_STAT, &ds)
	return err == unix.EINVAL || err == unix.EIDRM
}

// tooLarge explains a message refused for its length: above kernel.msgmax
// (msgsnd's EINVAL) or the queue's capacity (overCapacity).
func (q *Queue) tooLarge(n int) error {
	limits := []string{}
	if b, err := os.ReadFile("/proc/sys/kernel/msgmax"); err == nil {
		limits = append(limits, "kernel.msgmax "+strings.TrimSpace(string(b)))
	}
	var ds unix.MsqidDs
	if _, err := unix.Msgctl(q.id, unix.IPC_STAT, &ds); err == nil {
		limits = append(limits, "queue capacity "+strconv.FormatUint(ds.Qbytes, 10))
	}
	return fmt.Errorf("message of %d bytes is over a limit (%s): %w", n, strings.Join(limits, ", "), ErrTooLarge)
}

// maxCopy bounds the buffer tooLong copies messages into.
const maxCopy = 16 << 20

// tooLong builds the *TooLongError for msgrcv's E2BIG. It learns the
// message's length, best effort, by copying the queue's messages in order
// with MSG_COPY (which leaves them queued) and choosing among them as the
// kernel does for o.
func (q *Queue) tooLong(bufLen int, o ReceiveOptions) error {
	e := &TooLongError{Buffer: bufLen, Size: -1}
	var ds unix.MsqidDs
	if _, err := unix.Msgctl(q.id, unix.IPC_STAT, &ds); err != nil || ds.Cbytes > maxCopy {
		return e
	}
	b := make([]byte, unix.MsgTypeSize+int(ds.Cbytes))
	found, size, typ := false, 0, int64(0)
	for i := range int64(ds.Qnum) {
		n, err := unix.Msgrcv(q.id, b, i, unix.MSG_COPY|unix.IPC_NOWAIT)
		if err != nil {
			break // ENOSYS: no MSG_COPY; ENOMSG: the queue shrank
		}
		t := int64(binary.NativeEndian.Uint64(b))
		var better bool
		switch {
		case o.Type == 0:
			better = !found
		case o.Type > 0:
			better = !found && (t == o.Type) != o.Except
		default: // the lowest type <= |o.Type|, the first of its type
			limit := int64(math.MaxInt64) // the kernel's reading of MinInt64
			if o.Type != math.MinInt64 {
				limit = -o.Type
			}
			better = (!found || t < typ) && t <= limit
		}
		if better {
			found, size, typ = true, n, t
		}
		if found && o.Type >= 0 {
			break
		}
	}
	if found && size > bufLen {
		e.Size, e.Type = size, typ
	}
	return e
}

// Message buffers (struct msgbuf: the type, then the text) come from a
// pool; buffers above maxPooled are left to the garbage collector.
const maxPooled = 64 << 10

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

func getBuf(n int) *[]byte {
	p := bufPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	return p
}

func putBuf(p *[]byte) {
	if cap(*p) <= maxPooled {
		bufPool.Put(p)
	}
}
