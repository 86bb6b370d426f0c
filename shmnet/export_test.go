package shmnet

// Internals for the tests that craft segments (crafted_test.go).
var (
	DataSize    = dataSize
	InitSegment = initSegment
)

// SetWatchSockets turns the watcher of new connections on or off.
func SetWatchSockets(on bool) { watchSockets = on }

const (
	ParamKind = paramKind
	CtlOff    = ctlOff
)
