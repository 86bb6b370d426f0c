package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"math"
	"os"
	"runtime"
	"testing"
	"time"
)

// handshakeDeadline bounds every read of a fuzzed handshake: the peer's
// bytes end with end-of-file, so a handshake that reaches it has hung.
// Generous, for a busy machine.
const handshakeDeadline = 10 * time.Second

// FuzzReadFrame feeds ReadFrame arbitrary bytes with an arbitrary limit.
// Every frame it returns is exactly what the header announced, no longer
// than the limit, and taken from the stream in order; every error is one
// the package documents (io.EOF only before a header); and a frame is
// never paid for before it is known to fit: a refused header allocates
// nothing like its claimed length, an accepted one at most its own length
// (its buffer), whatever the stream claims.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0}, uint32(16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'}, uint32(16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint32(1<<20))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, uint32(1<<20))
	f.Add([]byte{0xff, 0xff, 0xff, 0xfe, 1}, uint32(16))
	f.Add([]byte{0, 0, 1, 0, 'x'}, uint32(1<<10))
	f.Add([]byte{0, 0}, uint32(0))
	f.Add([]byte{}, uint32(3))
	f.Fuzz(func(t *testing.T, stream []byte, limit uint32) {
		max := int(limit % (1 << 20)) // a real limit is small: no 4 GiB buffers here
		r := bytes.NewReader(stream)
		for i := 0; ; i++ {
			off := len(stream) - r.Len()
			p, err := ReadFrame(r, max, nil)
			// What reading this frame again allocates (the least of a few
			// tries: the fuzzer's own goroutines allocate too).
			alloc := minAlloc(func() { ReadFrame(bytes.NewReader(stream[off:]), max, nil) })
			if err != nil {
				checkFrameErr(t, stream[off:], max, err)
				// Errors are formatted (a few hundred bytes); a claimed
				// length is never allocated before it is checked, and one
				// that fits costs its buffer (rounded up to the
				// allocator's 8 KiB pages for a large one).
				if alloc > slack && alloc > uint64(max)+slack {
					t.Fatalf("frame %d: %d bytes allocated to refuse it (limit %d): %v", i, alloc, max, err)
				}
				return
			}
			h := stream[off:]
			n, herr := ParseHeader(append(h[:HeaderLen(h):HeaderLen(h)], make([]byte, LongHeader)...), max)
			if herr != nil || n != len(p) || len(p) > max {
				t.Fatalf("frame %d: %d bytes, header says %d (%v), limit %d", i, len(p), n, herr, max)
			}
			if want := h[HeaderLen(h) : HeaderLen(h)+n]; !bytes.Equal(p, want) {
				t.Fatalf("frame %d: payload %x, stream holds %x", i, p, want)
			}
			if alloc > uint64(len(p))+slack {
				t.Fatalf("frame %d: %d bytes allocated for a payload of %d", i, alloc, len(p))
			}
			// Written again, it reads back the same through a buffer
			// large enough, which is reused.
			var w bytes.Buffer
			if err := WriteFrame(&w, p); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 0, len(p))
			q, err := ReadFrame(&w, max, buf)
			if err != nil || !bytes.Equal(p, q) || (len(q) > 0 && &q[0] != &buf[:1][0]) {
				t.Fatalf("frame %d written and read again: %x, %v", i, q, err)
			}
			if i >= 100 {
				return
			}
		}
	})
}

// slack is what reading a frame may allocate beyond its payload: an
// error's text, and the rounding of a large buffer up to whole 8 KiB pages.
const slack = 8192

// minAlloc returns the fewest bytes f allocated in three runs.
func minAlloc(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// checkFrameErr checks the error ReadFrame returned for the stream s (from
// the failed frame on) against what the header in s says.
func checkFrameErr(t *testing.T, s []byte, max int, err error) {
	t.Helper()
	switch {
	case len(s) == 0:
		if err != io.EOF {
			t.Fatalf("empty stream: %v, want io.EOF", err)
		}
		return
	case len(s) < ShortHeader || len(s) < HeaderLen(s):
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("stream of %d bytes cut in its header: %v, want io.ErrUnexpectedEOF", len(s), err)
		}
		return
	}
	claimed := int64(int32(binary.BigEndian.Uint32(s)))
	if claimed == -1 {
		u := binary.BigEndian.Uint64(s[ShortHeader:])
		if u > 1<<62 {
			claimed = 1 << 62 // over every limit; avoids overflow below
		} else {
			claimed = int64(u)
		}
	}
	var want error
	switch {
	case claimed < 0:
		want = ErrProtocol
	case claimed > int64(max):
		want = ErrFrameTooLarge
	case int64(len(s)-HeaderLen(s)) < claimed:
		want = io.ErrUnexpectedEOF
	default:
		t.Fatalf("a complete frame of %d bytes (limit %d) refused: %v", claimed, max, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("header % x, limit %d: %v, want %v", s[:HeaderLen(s)], max, err, want)
	}
}

// peerScript is how a fuzzed peer answers Deliver's challenge before it
// sends its raw bytes.
const (
	peerRaw      = iota // nothing but the raw bytes
	peerRightKey        // the right HMAC, with the digest named by the next byte
	peerWrongKey        // an HMAC with another key
	peerScripts
)

// FuzzDeliver runs the challenging side of the handshake against a peer
// that answers with a script and then arbitrary bytes over a pipe, and
// checks: Deliver always returns (the bytes end with end-of-file); it
// succeeds exactly when the peer proved the key (and, with modernOnly, in
// the modern form); and the verdict it sends says the same.
func FuzzDeliver(f *testing.F) {
	f.Add([]byte("key"), byte(peerRightKey), byte(1), false, []byte{})
	f.Add([]byte("key"), byte(peerRightKey), byte(5), true, []byte{})   // legacy MD5 answer, refused
	f.Add([]byte("key"), byte(peerRightKey), byte(5), false, []byte{})  // legacy MD5 answer, accepted
	f.Add([]byte{}, byte(peerRightKey), byte(3), false, []byte("junk")) // an empty key runs the handshake
	f.Add([]byte("key"), byte(peerWrongKey), byte(0), false, []byte{})
	f.Add([]byte("key"), byte(peerRaw), byte(0), false, []byte{0, 0, 0, 16, '{', 's', 'h', 'a', '2', '5', '6', '}', 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte("key"), byte(peerRaw), byte(0), false, []byte{0, 0, 1, 0})
	f.Add([]byte("key"), byte(peerRaw), byte(0), false, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 20})
	f.Fuzz(func(t *testing.T, key []byte, script, digest byte, modernOnly bool, raw []byte) {
		script %= peerScripts
		names := []string{"md5", "sha256", "sha384", "sha3_256", "sha3_384", ""} // "": legacy bare MD5
		name := names[int(digest)%len(names)]
		var peerErr error
		var verdicts [][]byte
		err := runHandshake(t, func(rw io.ReadWriter) error { return Deliver(rw, key, modernOnly) },
			func(in io.Reader, out io.WriteCloser) {
				defer out.Close()
				ch, err := ReadFrame(in, maxAuthFrame, nil)
				if err != nil {
					peerErr = err
					return
				}
				if script != peerRaw {
					msg, ok := bytes.CutPrefix(ch, []byte(challenge))
					if !ok {
						peerErr = errors.New("no challenge")
						return
					}
					k := key
					if script == peerWrongKey {
						k = append([]byte("not "), key...)
					}
					if err := WriteFrame(out, answerFor(name, k, msg)); err != nil {
						peerErr = err
						return
					}
				}
				out.Write(raw)
				out.Close()
				for {
					v, err := ReadFrame(in, maxAuthFrame, nil)
					if err != nil {
						return
					}
					verdicts = append(verdicts, v)
				}
			})
		if peerErr != nil {
			t.Fatalf("Deliver sent no challenge: %v", peerErr)
		}
		proved := script == peerRightKey && !(modernOnly && name == "")
		switch {
		case proved && err != nil:
			t.Fatalf("the right key (%q) refused: %v", name, err)
		case !proved && err == nil:
			t.Fatalf("accepted a peer that did not prove the key (script %d, digest %q, raw % x)", script, name, raw)
		case err != nil && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrProtocol):
			t.Fatalf("Deliver: %v, want ErrAuth, ErrFrameTooLarge or ErrProtocol", err)
		}
		switch {
		case err == nil && (len(verdicts) != 1 || string(verdicts[0]) != welcome):
			t.Fatalf("accepted, and told the peer %q", verdicts)
		case err != nil && len(verdicts) > 0 && (len(verdicts) > 1 || string(verdicts[0]) != failure):
			t.Fatalf("refused (%v), and told the peer %q", err, verdicts)
		}
	})
}

// FuzzAnswer runs the answering side of the handshake against a peer that
// sends arbitrary bytes over a pipe, and checks: Answer always returns; it
// answers only a well-formed challenge, with exactly the HMAC of that
// challenge under the key in the challenge's generation (nothing else
// about the key leaves); and it succeeds exactly when the next frame is
// the welcome.
func FuzzAnswer(f *testing.F) {
	frame := func(parts ...string) []byte {
		var b []byte
		for _, p := range parts {
			b = append(AppendHeader(b, len(p)), p...)
		}
		return b
	}
	f.Add([]byte("key"), frame(challenge+"{sha256}"+string(bytes.Repeat([]byte{7}, 40)), welcome))
	f.Add([]byte("key"), frame(challenge+"{md5}0123456789abcdef", welcome))
	f.Add([]byte("key"), frame(challenge+"{sha3_384}0123456789abcdefghij", failure))
	f.Add([]byte("key"), frame(challenge+"01234567890123456789", welcome)) // legacy, 20 bytes
	f.Add([]byte("key"), frame(challenge+"{sha1}0123456789abcdefghij", welcome))
	f.Add([]byte{}, frame(challenge+"{sha384}0123456789abcdefghij", welcome+"x"))
	f.Add([]byte("key"), frame(challenge+"short", welcome))
	f.Add([]byte("key"), []byte{0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, key, stream []byte) {
		var reply []byte
		var replyErr error
		err := runHandshake(t, func(rw io.ReadWriter) error { return Answer(rw, key) },
			func(in io.Reader, out io.WriteCloser) {
				out.Write(stream)
				out.Close()
				reply, replyErr = ReadFrame(in, 1<<20, nil)
				io.Copy(io.Discard, in)
			})
		s := bytes.NewReader(stream)
		ch, chErr := ReadFrame(s, maxAuthFrame, nil)
		msg, isChallenge := bytes.CutPrefix(ch, []byte(challenge))
		var want []byte
		if chErr == nil && isChallenge && len(msg) >= 20 {
			want = answerFor(challengeDigest(msg), key, msg)
		}
		if want == nil {
			if replyErr != io.EOF {
				t.Fatalf("answered a malformed challenge %q: %x, %v", ch, reply, replyErr)
			}
			if err == nil {
				t.Fatalf("success after a malformed challenge %q", ch)
			}
			return
		}
		if replyErr != nil || !bytes.Equal(reply, want) {
			t.Fatalf("challenge %q: answered %x (%v), want %x", msg, reply, replyErr, want)
		}
		verdict, vErr := ReadFrame(s, maxAuthFrame, nil)
		if ok := vErr == nil && string(verdict) == welcome; ok != (err == nil) {
			t.Fatalf("verdict %q (%v): Answer returned %v", verdict, vErr, err)
		}
	})
}

// challengeDigest is the digest a challenge asks for: "" (bare HMAC-MD5)
// for a 20-byte legacy one, the {name} prefix if it names a digest Python
// allows, and "?" otherwise.
func challengeDigest(msg []byte) string {
	if len(msg) == 20 {
		return ""
	}
	if rest, ok := bytes.CutPrefix(msg, []byte("{")); ok {
		if i := bytes.IndexByte(rest, '}'); i > 0 {
			if newHash(string(rest[:i])) != nil {
				return string(rest[:i])
			}
		}
	}
	return "?"
}

// answerFor is the answer to the challenge payload msg with key: a bare
// HMAC-MD5 for name "", {name} and the HMAC otherwise, nil for a digest
// that is not allowed. Written from Python's connection.py, not from
// auth.go.
func answerFor(name string, key, msg []byte) []byte {
	if name == "" {
		m := hmac.New(md5.New, key)
		m.Write(msg)
		return m.Sum(nil)
	}
	h := newHash(name)
	if h == nil {
		return nil
	}
	m := hmac.New(h, key)
	m.Write(msg)
	return append([]byte("{"+name+"}"), m.Sum(nil)...)
}

func newHash(name string) func() hash.Hash {
	switch name {
	case "md5":
		return md5.New
	case "sha256":
		return sha256.New
	case "sha384":
		return sha512.New384
	case "sha3_256":
		return func() hash.Hash { return sha3.New256() }
	case "sha3_384":
		return func() hash.Hash { return sha3.New384() }
	}
	return nil
}

// runHandshake runs side over two pipes whose other ends peer holds: peer
// reads what side writes from in, and writes to out (closing it gives side
// end-of-file). It returns side's error once both are done; a side that
// still waits at the deadline has hung, and fails t.
func runHandshake(t *testing.T, side func(io.ReadWriter) error, peer func(in io.Reader, out io.WriteCloser)) error {
	t.Helper()
	toPeer, fromSide, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromPeer, toSide, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(handshakeDeadline)
	for _, f := range []*os.File{toPeer, fromSide, fromPeer, toSide} {
		f.SetDeadline(deadline)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer toPeer.Close()
		peer(toPeer, toSide)
	}()
	err = side(struct {
		io.Reader
		io.Writer
	}{fromPeer, fromSide})
	fromSide.Close() // the peer reads to end-of-file
	fromPeer.Close() // and what it still writes fails
	<-done
	toSide.Close()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the handshake hung: %v", err)
	}
	return err
}
