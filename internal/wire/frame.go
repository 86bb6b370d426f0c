// Package wire is Python's multiprocessing.connection protocol, spoken
// byte for byte: the frame header and the authkey handshake (both
// generations), with limits checked before anything is allocated. The
// protocol facts it relies on are in ARCHITECTURE.md.
//
// A frame is a 4-byte big-endian signed length and the payload; a payload
// over 0x7fffffff bytes has the length -1 and then an 8-byte big-endian
// unsigned length. Any other negative length is a protocol error.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Errors.
var (
	ErrProtocol      = errors.New("mproc: connection protocol error")
	ErrFrameTooLarge = errors.New("mproc: frame too large")
	ErrAuth          = errors.New("mproc: authentication failed")
)

// MaxShortFrame is the largest payload with a 4-byte header.
const MaxShortFrame = math.MaxInt32

// AppendHeader appends the header of an n-byte frame to b.
func AppendHeader(b []byte, n int) []byte {
	if n <= MaxShortFrame {
		return binary.BigEndian.AppendUint32(b, uint32(n))
	}
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// ReadHeader reads a frame header from r and returns the payload length.
// A length over max is ErrFrameTooLarge (the payload is not read); a
// negative one other than the extension marker is ErrProtocol. io.EOF
// means the stream ended cleanly before the header; io.ErrUnexpectedEOF
// inside it.
func ReadHeader(r io.Reader, max int) (int, error) {
	var h [LongHeader]byte
	if _, err := io.ReadFull(r, h[:ShortHeader]); err != nil {
		return 0, err
	}
	if HeaderLen(h[:]) == LongHeader {
		if _, err := io.ReadFull(r, h[ShortHeader:]); err != nil {
			return 0, unexpected(err)
		}
	}
	return ParseHeader(h[:], max)
}

// Header sizes: the 4-byte length, and the marker and 8-byte length.
const (
	ShortHeader = 4
	LongHeader  = 12
)

// HeaderLen is the size of the header whose first ShortHeader bytes start
// h: ShortHeader, or LongHeader after the extension marker.
func HeaderLen(h []byte) int {
	if binary.BigEndian.Uint32(h) == 0xffffffff {
		return LongHeader
	}
	return ShortHeader
}

// ParseHeader returns the payload length of the header h, which holds at
// least HeaderLen(h) bytes, checked as ReadHeader checks it.
func ParseHeader(h []byte, max int) (int, error) {
	n := int64(int32(binary.BigEndian.Uint32(h)))
	if n == -1 {
		u := binary.BigEndian.Uint64(h[ShortHeader:LongHeader])
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("frame length %d: %w", u, ErrFrameTooLarge)
		}
		n = int64(u)
	} else if n < 0 {
		return 0, fmt.Errorf("negative frame length %d: %w", n, ErrProtocol)
	}
	if n > int64(max) {
		return 0, fmt.Errorf("frame of %d bytes, maximum %d: %w", n, max, ErrFrameTooLarge)
	}
	return int(n), nil
}

// ReadFrame reads one frame of at most max bytes, into buf if it is large
// enough.
func ReadFrame(r io.Reader, max int, buf []byte) ([]byte, error) {
	n, err := ReadHeader(r, max)
	if err != nil {
		return nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, unexpected(err)
	}
	return buf, nil
}

// WriteFrame writes one frame: header and payload in one write when the
// payload is small (as Python does, to avoid Nagle stalls), two otherwise.
func WriteFrame(w io.Writer, p []byte) error {
	if len(p) <= 16384 {
		b := make([]byte, 0, 12+len(p))
		b = append(AppendHeader(b, len(p)), p...)
		_, err := w.Write(b)
		return err
	}
	if _, err := w.Write(AppendHeader(nil, len(p))); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
