package posixmq

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"mproc/internal/unix"
)

// The kernel's limits on queues (mq_overview(7), ipc/mqueue.c), and how
// Open explains a refusal. The kernel says only EINVAL, EMFILE or ENOSPC;
// Open reads the limits back and names the one that was passed.
//
//   - EINVAL: MaxMsgs over /proc/sys/fs/mqueue/msg_max or MsgSize over
//     msgsize_max. A process with CAP_SYS_RESOURCE (in the initial user
//     namespace) is bound by the compiled-in HARD_MSGMAX and
//     HARD_MSGSIZEMAX instead.
//   - EMFILE: the queue's bytes (messages plus per-message bookkeeping)
//     would take the user's queues past RLIMIT_MSGQUEUE, or the process
//     is out of descriptors.
//   - ENOSPC: queues_max queues exist in the IPC namespace (not for
//     CAP_SYS_RESOURCE).
const (
	procMqueue     = "/proc/sys/fs/mqueue/"
	hardMsgMax     = 65536    // HARD_MSGMAX since Linux 3.5
	hardMsgSizeMax = 16 << 20 // HARD_MSGSIZEMAX since Linux 3.5
	capSysResource = 24

	// Kernel bookkeeping charged to RLIMIT_MSGQUEUE per message (struct
	// msg_msg) and per priority in use (struct posix_msg_tree_node), on
	// 64-bit kernels; the estimate need not be exact, only explain.
	msgOverhead  = 48
	prioOverhead = 48
)

// openError turns mq_open's errno into the error Open returns.
func openError(flags int, ka *unix.MqAttr, err error) error {
	if flags&O_CREATE == 0 {
		return osErr(err)
	}
	switch err {
	case syscall.EINVAL:
		if ka != nil {
			if le := attrLimit(ka, err); le != nil {
				return le
			}
		}
	case syscall.EMFILE:
		if f, oerr := os.Open("/dev/null"); oerr != nil {
			return err // out of descriptors: the errno says so
		} else {
			f.Close()
		}
		if ka == nil {
			ka = &unix.MqAttr{}
			ka.Maxmsg, _ = readProcInt(procMqueue + "msg_default")
			ka.Msgsize, _ = readProcInt(procMqueue + "msgsize_default")
		}
		max := int64(-1)
		var rl syscall.Rlimit
		if syscall.Getrlimit(unix.RLIMIT_MSGQUEUE, &rl) == nil {
			max = int64(min(rl.Cur, 1<<62))
		}
		bytes := ka.Maxmsg*(ka.Msgsize+msgOverhead) + min(ka.Maxmsg, unix.MQ_PRIO_MAX)*prioOverhead
		return &LimitError{Field: "bytes", Value: bytes, Limit: "RLIMIT_MSGQUEUE", Max: max, Err: err}
	case syscall.ENOSPC:
		max, _ := readProcInt(procMqueue + "queues_max")
		return &LimitError{Field: "queues", Limit: procMqueue + "queues_max", Max: max, Err: err}
	}
	return osErr(err)
}

// attrLimit names the limit an attribute passed, or returns nil. Which
// limits bind depends on CAP_SYS_RESOURCE as the kernel sees it, which
// /proc/self/status shows only outside user namespaces: the likely set is
// checked first, then the other.
func attrLimit(ka *unix.MqAttr, errno error) *LimitError {
	msgMax, _ := readProcInt(procMqueue + "msg_max")
	sizeMax, _ := readProcInt(procMqueue + "msgsize_max")
	sysctl := []*LimitError{
		{Field: "MaxMsgs", Value: ka.Maxmsg, Limit: procMqueue + "msg_max", Max: msgMax, Err: errno},
		{Field: "MsgSize", Value: ka.Msgsize, Limit: procMqueue + "msgsize_max", Max: sizeMax, Err: errno},
	}
	hard := []*LimitError{
		{Field: "MaxMsgs", Value: ka.Maxmsg, Limit: "HARD_MSGMAX (the limit with CAP_SYS_RESOURCE)", Max: hardMsgMax, Err: errno},
		{Field: "MsgSize", Value: ka.Msgsize, Limit: "HARD_MSGSIZEMAX (the limit with CAP_SYS_RESOURCE)", Max: hardMsgSizeMax, Err: errno},
	}
	sets := [][]*LimitError{sysctl, hard}
	if hasCap(capSysResource) {
		sets[0], sets[1] = hard, sysctl
	}
	for _, set := range sets {
		for _, le := range set {
			if le.Max >= 0 && le.Value > le.Max {
				return le
			}
		}
	}
	return nil
}

// readProcInt reads a number from a /proc file.
func readProcInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// hasCap reports whether capability c is in this process's effective set.
func hasCap(c uint) bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if hex, ok := strings.CutPrefix(s.Text(), "CapEff:"); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && v&(1<<c) != 0
		}
	}
	return false
}
