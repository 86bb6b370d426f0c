//go:build !mprocfail

package failpoint

// Enabled reports whether this build has failpoints.
const Enabled = false

// Hit marks the failpoint name; in this build it does nothing.
func Hit(name string) {}
