package fifo

import "mproc/internal/unix"

// OpenChecked opens path for reading with only the check made on the
// descriptor (not the one by path before it), and closes it again.
func OpenChecked(path string) error {
	f, err := openChecked(path, unix.O_RDONLY)
	if f != nil {
		f.Close()
	}
	return err
}
