package unix

import linux "golang.org/x/sys/unix"

// Terminals and pseudo-terminals, re-exported from x/sys: the mproc
// command asks whether its output is a terminal (TCGETS succeeds only on
// one), and its tests open pseudo-terminals (/dev/ptmx, then unlock the
// pair with TIOCSPTLCK and learn its number with TIOCGPTN).
type Termios = linux.Termios

const (
	TCGETS     = linux.TCGETS
	TIOCGPTN   = linux.TIOCGPTN
	TIOCSPTLCK = linux.TIOCSPTLCK
	ENOTTY     = linux.ENOTTY
)

var (
	IoctlGetTermios    = linux.IoctlGetTermios
	IoctlGetUint32     = linux.IoctlGetUint32
	IoctlSetPointerInt = linux.IoctlSetPointerInt
)
