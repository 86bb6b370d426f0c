package fifo

import "encoding/hex"

// The message format of WriteMessage and ReadMessage.
//
// A message is a 4-byte header and the payload. The header is the length
// of the whole message, header included, as four hexadecimal ASCII digits
// (written lowercase, read in either case): "0009hello" is the message
// "hello", "0004" the empty message. It is the length prefix of git's
// pkt-line, so any program that can print can speak it:
//
//	printf '%04x%s' $(( ${#msg} + 4 )) "$msg" > "$fifo"  # sh; ${#msg} counts bytes only with LC_ALL=C
//
//	n = snprintf(buf, sizeof buf, "%04zx%s", strlen(msg) + 4, msg);  /* C */
//	write(fd, buf, n);
//
// A text length rather than newline-delimited messages, so that payloads
// may hold any bytes, newlines included; hexadecimal rather than a binary
// integer, so that shells and humans can write and read it.
//
// The writer must put the whole message in one write(2) for it to be
// atomic (at most PIPE_BUF bytes): WriteMessage does, and in practice so
// does a shell's printf of a message that short (it buffers its output and
// writes it at once), but check your peer.
const (
	// HeaderSize is the size of a message header.
	HeaderSize = 4
	// PipeBuf is Linux's PIPE_BUF: a write of at most this many bytes to a
	// FIFO is atomic, never interleaved with another writer's bytes.
	PipeBuf = 4096
	// MaxMessage is the largest payload WriteMessage accepts: what fits in
	// one atomic write with its header.
	MaxMessage = PipeBuf - HeaderSize
	// maxFrame is the longest message ReadMessage accepts, header
	// included: the most four hex digits can say. Longer messages than
	// PipeBuf can only come from a writer that does not need atomicity.
	maxFrame = 0xffff
)

// putHeader writes the header of a message of n bytes in all (header
// included, HeaderSize <= n <= maxFrame) into h.
func putHeader(h []byte, n int) {
	hex.Encode(h[:HeaderSize], []byte{byte(n >> 8), byte(n)})
}

// parseHeader returns the total message length a header says, or false if
// h is not a header: not four hex digits, or a length under HeaderSize.
func parseHeader(h []byte) (int, bool) {
	var b [HeaderSize / 2]byte
	if _, err := hex.Decode(b[:], h[:HeaderSize]); err != nil {
		return 0, false
	}
	n := int(b[0])<<8 | int(b[1])
	return n, n >= HeaderSize
}
