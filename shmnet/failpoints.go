package shmnet

// Failpoints (package internal/failpoint) at a ring's commit points. A
// build with -tags mprocfail can kill the process there (torture_test.go);
// a normal build compiles the calls to nothing. Whichever end dies there,
// the survivor must see every byte published before the death, whole and
// in order, then an error, and never a byte that was not published:
//
//   - FailWriteCopied: a writer has copied bytes into the ring and not yet
//     published them (Tail). They are lost: the reader never sees them.
//   - FailWritePublished: the writer has published them (Tail).
//   - FailReadCopied: a reader has copied bytes out and not yet given their
//     room back (Head). The writer must not overwrite them, and its Write
//     fails once the reader is gone.
//   - FailReadPublished: the reader has given the room back (Head).
const (
	FailWriteCopied    = "shmnet.write.copied"
	FailWritePublished = "shmnet.write.published"
	FailReadCopied     = "shmnet.read.copied"
	FailReadPublished  = "shmnet.read.published"
)
