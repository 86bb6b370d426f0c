package unix

import linux "golang.org/x/sys/unix"

// Errno values and flags for named pipes (package fifo), re-exported from
// x/sys.
const (
	ENXIO = linux.ENXIO // open(2) O_WRONLY|O_NONBLOCK of a FIFO with no reader
	EPIPE = linux.EPIPE // write(2) to a pipe or FIFO with no reader

	O_WRONLY = linux.O_WRONLY
)

// PIPE_BUF is Linux's PIPE_BUF (<linux/limits.h>), which x/sys does not
// define: a write(2) of at most PIPE_BUF bytes to a pipe or FIFO is atomic,
// never interleaved with other writers' bytes; a non-blocking one writes
// all of it or fails with EAGAIN.
const PIPE_BUF = 4096

// Mkfifo is mkfifo(3) (mknodat(AT_FDCWD, path, S_IFIFO|mode, 0)); the
// umask applies to mode.
var Mkfifo = linux.Mkfifo
