package cluster

import "mproc"

// Unregistered returns a handle of a task registered nowhere, as a
// submitter sees a task the workers' binary lacks.
func Unregistered[A, R any](name string) *Task[A, R] {
	return &Task[A, R]{name: name, codec: mproc.DefaultCodec}
}
