package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mproc/internal/shm"
	"mproc/posixmq"
)

// The inventory of IPC objects that ls, stat, rm and watch share: what
// each object is, which processes it names, and whether it is stale.

// Kinds of objects that are not mproc segments.
const (
	kindPosixMQ = "posix-mq"
	kindSysvMsg = "sysv-msg"
	kindSysvShm = "sysv-shm"
	kindFIFO    = "fifo"
)

// kindNames are the ls kinds of mproc segments, by the root package's
// handle type (shm.Inspection.Type).
var kindNames = map[string]string{
	"Queue": "queue", "JoinableQueue": "joinable-queue", "LIFOQueue": "lifo-queue",
	"PriorityQueue": "priority-queue", "SharedMemory": "shared-memory", "Lock": "lock", "RLock": "rlock",
	"RWMutex": "rwmutex", "Semaphore": "semaphore", "BoundedSemaphore": "bounded-semaphore",
	"Event": "event", "Cond": "cond", "Barrier": "barrier", "Value": "value", "Array": "array",
}

// Roles of the processes an object names.
const (
	roleOpen          = "open"           // has a descriptor on it (/proc/PID/fd)
	roleAttached      = "attached"       // holds one of a queue's process records
	rolePutting       = "putting"        // inside a put of a queue
	roleGetting       = "getting"        // inside a get of a queue
	roleBusy          = "busy"           // holds an ordered queue's mutex (inside a put or get)
	roleHolder        = "holder"         // holds a lock, or units of a semaphore
	roleReader        = "reader"         // holds read locks of an rwmutex
	roleWriter        = "writer"         // holds an rwmutex for writing
	roleWaitingWriter = "waiting-writer" // waits to write an rwmutex
	roleWaiting       = "waiting"        // arrived at a barrier, waiting for the others
	roleNotify        = "notify"         // registered for a POSIX queue's notification
	roleLastSend      = "last-send"      // the last to send to a SysV queue
	roleLastReceive   = "last-receive"   // the last to receive from a SysV queue
	roleLastAttach    = "last-attach"    // the last to attach or detach SysV shared memory
)

// proc is a process that an object names, and in which roles.
type proc struct {
	Pid   int      `json:"pid"`
	Alive bool     `json:"alive"`
	Roles []string `json:"roles"`
}

// procRef is a process an object names in one role (its creator, a lock's
// holder), and whether it is alive.
type procRef struct {
	Pid   int  `json:"pid"`
	Alive bool `json:"alive"`
}

// entry is one IPC object: a row of ls, the head of stat.
type entry struct {
	Kind      string     `json:"kind"`
	Name      string     `json:"name"`
	Path      string     `json:"path,omitempty"`
	ID        *int       `json:"id,omitempty"`  // SysV
	Key       string     `json:"key,omitempty"` // SysV, in hex
	Size      int64      `json:"size"`
	Uid       uint32     `json:"uid"`
	Mode      string     `json:"mode"`
	Creator   *procRef   `json:"creator,omitempty"`
	Created   *time.Time `json:"created,omitempty"` // mproc: the header's creation time
	Ctime     *time.Time `json:"ctime,omitempty"`   // SysV: created or last changed (IPC_SET)
	Processes []proc     `json:"processes"`
	Messages  *int64     `json:"messages,omitempty"`
	Capacity  *int64     `json:"capacity,omitempty"`
	Attached  *int64     `json:"attached,omitempty"` // SysV shared memory: nattch
	State     string     `json:"state,omitempty"`    // a few words on the state
	Stale     bool       `json:"stale"`
	Note      string     `json:"note,omitempty"` // why something could not be read

	file   fileID // to find the processes that have it open; zero if none
	unread bool   // could not be read: never stale
}

// fileID names a file for the descriptor scan.
type fileID struct{ dev, ino uint64 }

func (e *entry) addProc(pid int, alive bool, role string) {
	if pid <= 0 {
		return
	}
	for i := range e.Processes {
		p := &e.Processes[i]
		if p.Pid == pid && p.Alive == alive {
			if !slices.Contains(p.Roles, role) {
				p.Roles = append(p.Roles, role)
			}
			return
		}
	}
	e.Processes = append(e.Processes, proc{Pid: pid, Alive: alive, Roles: []string{role}})
}

// addToken adds the process of a packed owner token.
func (e *entry) addToken(tok uint64, role string) {
	if tok != 0 {
		p := shm.ProcOf(tok)
		e.addProc(p.Pid, p.Alive, role)
	}
}

// anyAlive reports whether a process the entry names (its creator too)
// is alive.
func (e *entry) anyAlive() bool {
	if e.Creator != nil && e.Creator.Alive {
		return true
	}
	return slices.ContainsFunc(e.Processes, func(p proc) bool { return p.Alive })
}

func int64p(v int64) *int64 { return &v }

// mprocEntry describes the segment of in, without the processes that have
// it open (addOpeners adds them).
func mprocEntry(in *shm.Inspection) entry {
	e := entry{Name: in.Name, Path: in.Path, Size: in.Size, Uid: in.Uid, Mode: fmt.Sprintf("%04o", in.Mode),
		Processes: []proc{}, file: fileID{in.Dev, in.Ino}}
	switch {
	case in.Err != nil:
		e.Kind, e.Note = "invalid", oneLine(in.Err)
		return e
	case !in.Ready:
		e.Kind, e.Note = "initialising", "header not published: being created, or its creator died creating it"
		return e
	}
	info := in.Info
	e.Kind = kindNames[in.Type]
	if e.Kind == "" {
		e.Kind = info.Kind.String()
	}
	c := shm.ProcOf(info.Creator.Pack())
	e.Creator = &procRef{Pid: c.Pid, Alive: c.Alive}
	created := info.Created
	e.Created = &created
	if in.StateErr != nil {
		e.Note = oneLine(in.StateErr)
		return e
	}
	switch {
	case in.Queue != nil:
		q := in.Queue
		e.Messages, e.Capacity = int64p(int64(q.Len())), int64p(int64(q.Cap))
		for _, t := range q.Records {
			e.addToken(t, roleAttached)
		}
		for _, t := range q.Writing {
			e.addToken(t, rolePutting)
		}
		for _, t := range q.Reading {
			e.addToken(t, roleGetting)
		}
		e.State = fmt.Sprintf("%d/%d messages", q.Len(), q.Cap)
		if q.Closed {
			e.State += ", shut down"
		}
	case in.Heap != nil:
		h := in.Heap
		e.Messages, e.Capacity = int64p(int64(h.Len)), int64p(int64(h.Cap))
		e.addToken(h.Owner, roleBusy)
		e.State = fmt.Sprintf("%d/%d messages", h.Len, h.Cap)
		if h.Closed {
			e.State += ", shut down"
		}
	case in.RMutex != nil:
		e.addToken(in.RMutex.Owner, roleHolder)
		e.State = lockState(in.RMutex.MutexState.Owner != 0, in.RMutex.Consistent)
	case in.RWMutex != nil:
		rw := in.RWMutex
		e.addToken(rw.Writer, roleWriter)
		readers := 0
		for _, h := range rw.Records {
			if h.Held > 0 {
				e.addToken(h.Token, roleReader)
				readers += int(h.Held)
			}
			if h.Waiting > 0 {
				e.addToken(h.Token, roleWaitingWriter)
			}
		}
		switch {
		case rw.Writer != 0:
			e.State = "write-locked"
		case readers > 0:
			e.State = plural(int64(readers), "read lock", "read locks")
		default:
			e.State = "free"
		}
	case in.Semaphore != nil:
		s := in.Semaphore
		for _, h := range s.Holders {
			if h.Held > 0 {
				e.addToken(h.Token, roleHolder)
			}
		}
		e.State = fmt.Sprintf("value %d", s.Value)
		if s.Max != 0 {
			e.State += fmt.Sprintf(" of %d", s.Max)
		}
	case in.Event != nil:
		e.State = map[bool]string{true: "set", false: "clear"}[in.Event.Set]
	case in.Cond != nil:
		e.State = fmt.Sprintf("%d waiting", in.Cond.Waiters)
	case in.Barrier != nil:
		b := in.Barrier
		for _, t := range b.Arrived {
			e.addToken(t, roleWaiting)
		}
		e.State = fmt.Sprintf("%d/%d arrived", len(b.Arrived), b.Parties)
		if b.Broken {
			e.State += ", broken"
		}
	case in.Mutex != nil: // a lock, or a value's or an array's
		e.addToken(in.Mutex.Owner, roleHolder)
		if in.Type == "Lock" {
			e.State = lockState(in.Mutex.Owner != 0, in.Mutex.Consistent)
		} else {
			e.State = fmt.Sprintf("%d x %d bytes", in.Count, in.ElemSize)
		}
	}
	return e
}

func lockState(held, consistent bool) string {
	s := map[bool]string{true: "held", false: "free"}[held]
	if !consistent {
		s += ", inconsistent"
	}
	return s
}

// oneLine makes an error's text one line, for ls's notes and for errors
// that scripts read.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// listMproc returns the mproc segments of /dev/shm, without openers.
func listMproc() ([]entry, error) {
	names, err := shm.List()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", shm.Dir, err)
	}
	var out []entry
	for _, name := range names {
		in, err := shm.Inspect(name)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue // removed since it was listed
		case err != nil:
			e := entry{Kind: "unknown", Name: name, Path: shm.Path(name), Processes: []proc{}, Note: oneLine(err), unread: true}
			if fi, err := os.Lstat(e.Path); err == nil {
				e.Size, e.Mode = fi.Size(), fmt.Sprintf("%04o", fi.Mode().Perm())
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					e.Uid, e.file = st.Uid, fileID{st.Dev, st.Ino}
				}
			}
			if errors.Is(err, os.ErrPermission) {
				e.Note = "permission denied (" + fileOwner(e.Path) + ")"
			}
			out = append(out, e)
			continue
		}
		out = append(out, mprocEntry(in))
	}
	return out, nil
}

// inspectMproc inspects the mproc object name for stat, rm and watch: a
// missing object or one this user may not read is an error of one line.
func inspectMproc(cmd, name string) (*shm.Inspection, error) {
	if err := shm.ValidateName(name); err != nil {
		return nil, badArgs("%s: %s", cmd, oneLine(err))
	}
	in, err := shm.Inspect(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%s: no mproc object %q (no file %s)", cmd, name, shm.Path(name))
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("%s: %q: permission denied (%s)", cmd, name, fileOwner(shm.Path(name)))
	case err != nil:
		return nil, fmt.Errorf("%s: %s", cmd, oneLine(err))
	}
	return in, nil
}

// fileOwner says who owns the file at path, and its mode, for a refusal.
func fileOwner(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return path
	}
	owner := "?"
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = strconv.FormatUint(uint64(st.Uid), 10)
	}
	return fmt.Sprintf("%s: owned by uid %s, mode %04o", path, owner, fi.Mode().Perm())
}

// mqueueDir returns where an mqueue file system is mounted, "" if nowhere.
func mqueueDir() string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == "mqueue" {
			return unescapeMount(f[1])
		}
	}
	return ""
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040 for
// a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// listPosixMQ returns the POSIX message queues of the mqueue file system
// mounted at dir.
func listPosixMQ(dir string) ([]entry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list POSIX message queues: %w", err)
	}
	var out []entry
	for _, de := range ents {
		path := filepath.Join(dir, de.Name())
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		e := entry{Kind: kindPosixMQ, Name: "/" + de.Name(), Path: path, Mode: fmt.Sprintf("%04o", fi.Mode().Perm()),
			Processes: []proc{}}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.Uid, e.file = st.Uid, fileID{st.Dev, st.Ino}
		}
		// The file's one line: QSIZE (bytes in the queue), NOTIFY, SIGNO,
		// NOTIFY_PID. The count of messages is not in it: mq_getattr(3)
		// has it, for a process that may open the queue.
		if b, err := os.ReadFile(path); err == nil {
			for _, f := range strings.Fields(string(b)) {
				k, v, _ := strings.Cut(f, ":")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "QSIZE":
					e.Size = n
				case "NOTIFY_PID":
					e.addProc(int(n), shm.PidAlive(int(n)), roleNotify)
				}
			}
		}
		if q, err := posixmq.Open(e.Name, posixmq.O_RDONLY, nil, 0); err == nil {
			if a, err := q.Attr(); err == nil {
				e.Messages, e.Capacity = int64p(a.CurMsgs), int64p(a.MaxMsgs)
				e.State = fmt.Sprintf("%d/%d messages", a.CurMsgs, a.MaxMsgs)
			}
			q.Close()
		} else {
			e.Note = "message count not read: " + oneLine(err)
		}
		out = append(out, e)
	}
	return out, nil
}

// sysvTable parses a /proc/sysvipc table into rows by column name.
func sysvTable(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var cols []string
	var rows []map[string]string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if cols == nil {
			cols = fields
			continue
		}
		if len(fields) != len(cols) {
			continue
		}
		row := make(map[string]string, len(cols))
		for i, c := range cols {
			row[c] = fields[i]
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

func num(row map[string]string, col string) int64 {
	n, _ := strconv.ParseInt(row[col], 10, 64)
	return n
}

// sysvEntry fills what SysV queues and shared memory have in common.
func sysvEntry(kind string, row map[string]string, idCol string) entry {
	id := int(num(row, idCol))
	perms, _ := strconv.ParseUint(row["perms"], 8, 32)
	key, _ := strconv.ParseInt(row["key"], 10, 64)
	e := entry{Kind: kind, Name: "id " + strconv.Itoa(id), ID: &id, Key: fmt.Sprintf("%#08x", uint32(key)),
		Uid: uint32(num(row, "uid")), Mode: fmt.Sprintf("%04o", perms&0o777), Processes: []proc{}}
	if c := num(row, "ctime"); c > 0 {
		t := time.Unix(c, 0)
		e.Ctime = &t
	}
	return e
}

// listSysvMsg returns the SysV message queues of this IPC namespace.
func listSysvMsg() ([]entry, error) {
	rows, err := sysvTable("/proc/sysvipc/msg")
	if err != nil {
		return nil, fmt.Errorf("list SysV message queues: %w", err)
	}
	var out []entry
	for _, row := range rows {
		e := sysvEntry(kindSysvMsg, row, "msqid")
		e.Size, e.Messages = num(row, "cbytes"), int64p(num(row, "qnum"))
		for _, r := range []struct{ col, role string }{{"lspid", roleLastSend}, {"lrpid", roleLastReceive}} {
			if pid := int(num(row, r.col)); pid > 0 {
				e.addProc(pid, shm.PidAlive(pid), r.role)
			}
		}
		e.State = plural(*e.Messages, "message", "messages")
		out = append(out, e)
	}
	return out, nil
}

// shmDest is SHM_DEST in the perms of /proc/sysvipc/shm: removed, freed
// when the last process detaches.
const shmDest = 0o1000

// listSysvShm returns the SysV shared memory segments of this IPC
// namespace.
func listSysvShm() ([]entry, error) {
	rows, err := sysvTable("/proc/sysvipc/shm")
	if err != nil {
		return nil, fmt.Errorf("list SysV shared memory: %w", err)
	}
	var out []entry
	for _, row := range rows {
		e := sysvEntry(kindSysvShm, row, "shmid")
		e.Size, e.Attached = num(row, "size"), int64p(num(row, "nattch"))
		if pid := int(num(row, "cpid")); pid > 0 {
			e.Creator = &procRef{Pid: pid, Alive: shm.PidAlive(pid)}
		}
		if pid := int(num(row, "lpid")); pid > 0 {
			e.addProc(pid, shm.PidAlive(pid), roleLastAttach)
		}
		e.State = fmt.Sprintf("%d attached", *e.Attached)
		if perms, _ := strconv.ParseUint(row["perms"], 8, 32); perms&shmDest != 0 {
			e.State += ", removed"
		}
		out = append(out, e)
	}
	return out, nil
}

// listFIFOs returns the FIFOs in dir (not in its subdirectories).
func listFIFOs(dir string) ([]entry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--fifo %s: %s", dir, oneLine(unwrapPath(err)))
	}
	var out []entry
	for _, de := range ents {
		if de.Type()&fs.ModeNamedPipe == 0 {
			continue
		}
		path := filepath.Join(dir, de.Name())
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		e := entry{Kind: kindFIFO, Name: path, Path: path, Mode: fmt.Sprintf("%04o", fi.Mode().Perm()), Processes: []proc{}}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.Uid, e.file = st.Uid, fileID{st.Dev, st.Ino}
		}
		out = append(out, e)
	}
	return out, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// addOpeners adds to each entry the processes that have a descriptor on
// its file, and then decides whether it is stale.
func addOpeners(es []entry) {
	want := map[fileID]bool{}
	for _, e := range es {
		if e.file != (fileID{}) {
			want[e.file] = true
		}
	}
	open := openers(want)
	for i := range es {
		e := &es[i]
		for _, pid := range open[e.file] {
			e.addProc(pid, true, roleOpen)
		}
		slices.SortFunc(e.Processes, func(a, b proc) int {
			if a.Pid != b.Pid {
				return a.Pid - b.Pid
			}
			return boolCmp(a.Alive, b.Alive)
		})
		e.Stale = stale(e)
	}
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// stale says whether e is stale: what "mproc help ls" says, kind by kind.
// An object that could not be read, or a file of another user whose
// processes' descriptors this user cannot see (unless root), is not.
func stale(e *entry) bool {
	euid := os.Geteuid()
	if e.unread || e.file != (fileID{}) && euid != 0 && e.Uid != uint32(euid) {
		return false
	}
	switch e.Kind {
	case kindSysvMsg:
		// Only the last sender and receiver are known; a queue nobody has
		// used yet is not stale.
		return len(e.Processes) > 0 && !e.anyAlive()
	case kindSysvShm:
		return *e.Attached == 0 && !e.anyAlive()
	}
	// mproc segments (a creator and the processes they record, plus
	// openers), POSIX queues and FIFOs (openers and a notified process).
	return !e.anyAlive()
}

// openers returns, for each file of want, the live processes that have a
// descriptor on it, from /proc/*/fd. Processes whose descriptors this user
// may not read are left out.
func openers(want map[fileID]bool) map[fileID][]int {
	out := map[fileID][]int{}
	if len(want) == 0 {
		return out
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		seen := map[fileID]bool{}
		for _, fd := range fds {
			var st syscall.Stat_t
			if syscall.Stat(dir+"/"+fd.Name(), &st) != nil {
				continue
			}
			id := fileID{uint64(st.Dev), st.Ino}
			if want[id] && !seen[id] {
				seen[id] = true
				out[id] = append(out[id], pid)
			}
		}
	}
	return out
}

// kindOrder sorts ls: mproc objects first, then the kernel's.
func kindOrder(kind string) int {
	switch kind {
	case kindPosixMQ:
		return 1
	case kindSysvMsg:
		return 2
	case kindSysvShm:
		return 3
	case kindFIFO:
		return 4
	}
	return 0
}

// procList formats processes for a table: the live ones, then the dead.
func procList(ps []proc) string {
	var live, dead []string
	for _, p := range ps {
		s := strconv.Itoa(p.Pid) + " " + strings.Join(p.Roles, "+")
		if p.Alive {
			live = append(live, s)
		} else {
			dead = append(dead, s)
		}
	}
	const maxDead = 3
	if len(dead) > maxDead {
		dead = append(dead[:maxDead], fmt.Sprintf("+%d more", len(dead)-maxDead))
	}
	out := strings.Join(live, ", ")
	if len(dead) > 0 {
		if out != "" {
			out += "; "
		}
		out += "dead: " + strings.Join(dead, ", ")
	}
	if out == "" {
		return "-"
	}
	return out
}

// humanSize formats bytes with a binary unit.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// humanAge formats the time since t, coarsely.
func humanAge(t time.Time, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// writeJSON writes v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
