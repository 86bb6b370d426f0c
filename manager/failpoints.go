package manager

// Failpoints (package internal/failpoint) where a client's call or the
// server's reference counts are half done. A build with -tags mprocfail
// can kill the process there (torture_test.go); a normal build compiles
// the calls to nothing.
//
// In a client, whichever call it makes (create, incref, decref, a method):
//
//   - FailClientSent: the request is sent and its reply not yet read. The
//     server runs the call for a client that is gone: what it takes for
//     that client (a reference, a lock, a queue's item) must not outlive
//     it, beyond the one item of a get (the queue's promise).
//   - FailClientReplied: the reply is read and not yet acted on.
//   - FailLinkChunk (either side; a client in the tests): on the
//     shared-memory path, a message longer than a chunk is partly sent.
//     The other side must drop the part, not act on it.
//
// In the server, which then dies with the call half done (each client's
// calls must fail within a bounded time, and nothing be left in /dev/shm):
//
//   - FailServerCreated: an object is created and counted, the reply not
//     yet sent.
//   - FailServerRef: an incref or decref is counted, the reply not yet
//     sent.
//   - FailServerReaped: the references of a dead client are dropped.
//   - FailServerShmOffered: the shared-memory path's queues are created
//     and named to the client, their names not yet removed.
const (
	FailClientSent       = "manager.client.sent"
	FailClientReplied    = "manager.client.replied"
	FailLinkChunk        = "manager.link.chunk"
	FailServerCreated    = "manager.server.created"
	FailServerRef        = "manager.server.ref"
	FailServerReaped     = "manager.server.reaped"
	FailServerShmOffered = "manager.server.shm-offered"
)
