//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package sysvmq

// SetPolling makes blocking calls wait by polling with IPC_NOWAIT (the
// fallback for a program that ignores SIGURG) instead of blocking in the
// kernel and being interrupted by a signal, so tests can measure both.
func SetPolling(on bool) { forcePoll.Store(on) }
