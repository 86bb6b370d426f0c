//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64 || ppc64le || s390x)

package unix_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"mproc/internal/unix"
)

// TestMqCalls checks the hand-written mq_* wrappers against the kernel's
// contract: names without '/', attributes in and out, priorities, EAGAIN
// on O_NONBLOCK, EMSGSIZE, the one mq_notify registration per queue.
func TestMqCalls(t *testing.T) {
	name := fmt.Sprintf("mproc-unix-test-%d", os.Getpid())
	defer unix.MqUnlink(name)
	if _, err := unix.MqOpen("/"+name, unix.O_RDWR|unix.O_CREAT, 0o600, nil); err != syscall.EACCES {
		t.Errorf("MqOpen with a leading '/': %v, want EACCES", err)
	}
	attr := &unix.MqAttr{Maxmsg: 2, Msgsize: 8}
	mqd, err := unix.MqOpen(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600, attr)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mqd)
	var got unix.MqAttr
	if err := unix.MqGetsetattr(mqd, nil, &got); err != nil || got.Maxmsg != 2 || got.Msgsize != 8 || got.Flags != unix.O_NONBLOCK {
		t.Fatalf("MqGetsetattr: %+v %v", got, err)
	}
	buf := make([]byte, 8)
	if _, err := unix.MqTimedreceive(mqd, buf, nil, nil); err != unix.EAGAIN {
		t.Fatalf("receive on empty: %v, want EAGAIN", err)
	}
	if err := unix.MqTimedsend(mqd, []byte("low"), 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := unix.MqTimedsend(mqd, nil, 7, nil); err != nil {
		t.Fatal(err)
	}
	if err := unix.MqTimedsend(mqd, []byte("x"), 0, nil); err != unix.EAGAIN {
		t.Fatalf("send on full: %v, want EAGAIN", err)
	}
	if err := unix.MqTimedsend(mqd, make([]byte, 9), 0, nil); err == nil {
		t.Fatal("a 9-byte message on an 8-byte queue went through")
	}
	if _, err := unix.MqTimedreceive(mqd, make([]byte, 7), nil, nil); err == nil {
		t.Fatal("a 7-byte buffer was accepted for an 8-byte queue")
	}
	var prio uint32
	if n, err := unix.MqTimedreceive(mqd, buf, &prio, nil); err != nil || n != 0 || prio != 7 {
		t.Fatalf("first receive: %d %d %v, want the empty message of priority 7", n, prio, err)
	}
	if n, err := unix.MqTimedreceive(mqd, buf, &prio, nil); err != nil || string(buf[:n]) != "low" || prio != 1 {
		t.Fatalf("second receive: %q %d %v", buf[:n], prio, err)
	}

	// Clearing O_NONBLOCK through mq_getsetattr, and setting it back.
	if err := unix.MqGetsetattr(mqd, &unix.MqAttr{}, nil); err != nil {
		t.Fatal(err)
	}
	unix.MqGetsetattr(mqd, nil, &got)
	if got.Flags != 0 {
		t.Fatalf("flags %#x after clearing", got.Flags)
	}
	if err := unix.MqGetsetattr(mqd, &unix.MqAttr{Flags: unix.O_NONBLOCK}, &got); err != nil || got.Flags != 0 {
		t.Fatalf("old flags %#x, %v", got.Flags, err)
	}

	// One registration per queue: a second descriptor gets EBUSY.
	if err := unix.MqNotify(mqd, &unix.Sigevent{Notify: unix.SIGEV_NONE}); err != nil {
		t.Fatal(err)
	}
	if err := unix.MqNotify(mqd, &unix.Sigevent{Notify: unix.SIGEV_NONE}); err != syscall.EBUSY {
		t.Fatalf("second registration: %v, want EBUSY", err)
	}
	if err := unix.MqNotify(mqd, &unix.Sigevent{Notify: unix.SIGEV_THREAD_ID}); err != unix.EINVAL && err != syscall.EBUSY {
		t.Fatalf("SIGEV_THREAD_ID: %v", err)
	}
	if err := unix.MqNotify(mqd, nil); err != nil {
		t.Fatal(err)
	}
	if err := unix.MqNotify(mqd, &unix.Sigevent{Notify: unix.SIGEV_THREAD_ID}); err != unix.EINVAL {
		t.Fatalf("SIGEV_THREAD_ID: %v, want EINVAL", err)
	}

	if err := unix.MqUnlink(name); err != nil {
		t.Fatal(err)
	}
	if err := unix.MqUnlink(name); err != unix.ENOENT {
		t.Fatalf("second unlink: %v, want ENOENT", err)
	}
}
