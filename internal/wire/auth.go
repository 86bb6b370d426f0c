package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
)

// The handshake messages (every one a frame; reads capped at maxAuthFrame).
const (
	challenge    = "#CHALLENGE#"
	welcome      = "#WELCOME#"
	failure      = "#FAILURE#"
	maxAuthFrame = 256
	// modernLength is the random part of a challenge Go delivers, as
	// Python 3.12+ does.
	modernLength = 40
)

// digests are the HMAC digests Python 3.12+ allows.
var digests = map[string]func() hash.Hash{
	"md5":      md5.New,
	"sha256":   sha256.New,
	"sha384":   sha512.New384,
	"sha3_256": func() hash.Hash { return sha3.New256() },
	"sha3_384": func() hash.Hash { return sha3.New384() },
}

func mac(name string, key, msg []byte) []byte {
	m := hmac.New(digests[name], key)
	m.Write(msg)
	return m.Sum(nil)
}

// Deliver is the challenging half of the handshake (a Listener runs it
// first, a Client second): it sends a {sha256} challenge and checks the
// peer's answer, a {digest}-prefixed HMAC or, from Python 3.11 and older,
// a bare 16-byte HMAC-MD5 (refused when modernOnly). It tells the peer
// the verdict and returns ErrAuth on a wrong answer.
func Deliver(rw io.ReadWriter, key []byte, modernOnly bool) error {
	msg := make([]byte, 0, 8+modernLength)
	msg = append(msg, "{sha256}"...)
	msg = append(msg, make([]byte, modernLength)...)
	rand.Read(msg[8:])
	if err := WriteFrame(rw, append([]byte(challenge), msg...)); err != nil {
		return err
	}
	resp, err := ReadFrame(rw, maxAuthFrame, nil)
	if err != nil {
		return handshakeErr(err)
	}
	name, payload := "md5", resp
	if len(resp) != 16 && len(resp) != 20 {
		name, payload, err = digestOf(resp)
	} else if modernOnly {
		err = fmt.Errorf("peer answered with a legacy HMAC-MD5: %w", ErrAuth)
	}
	if err == nil && !hmac.Equal(payload, mac(name, key, msg)) {
		err = fmt.Errorf("digest received was wrong: %w", ErrAuth)
	}
	if err != nil {
		WriteFrame(rw, []byte(failure))
		return err
	}
	return WriteFrame(rw, []byte(welcome))
}

// Answer is the answering half: it reads the peer's challenge, answers it
// in the peer's generation, and waits for the verdict.
func Answer(rw io.ReadWriter, key []byte) error {
	frame, err := ReadFrame(rw, maxAuthFrame, nil)
	if err != nil {
		return handshakeErr(err)
	}
	msg, ok := bytes.CutPrefix(frame, []byte(challenge))
	if !ok || len(msg) < 20 {
		return fmt.Errorf("malformed challenge %q: %w", trim(frame), ErrAuth)
	}
	var reply []byte
	if len(msg) == 20 {
		reply = mac("md5", key, msg)
	} else {
		name, _, err := digestOf(msg)
		if err != nil {
			return err
		}
		reply = append([]byte("{"+name+"}"), mac(name, key, msg)...)
	}
	if err := WriteFrame(rw, reply); err != nil {
		return err
	}
	verdict, err := ReadFrame(rw, maxAuthFrame, nil)
	if err != nil {
		return handshakeErr(err)
	}
	if string(verdict) != welcome {
		return fmt.Errorf("peer refused the key (%q): %w", trim(verdict), ErrAuth)
	}
	return nil
}

// digestOf splits a "{name}payload" message.
func digestOf(b []byte) (string, []byte, error) {
	if len(b) > 0 && b[0] == '{' {
		if i := bytes.IndexByte(b, '}'); i > 0 {
			name := string(b[1:i])
			if _, ok := digests[name]; ok {
				return name, b[i+1:], nil
			}
			return "", nil, fmt.Errorf("unsupported digest %q: %w", name, ErrAuth)
		}
	}
	return "", nil, fmt.Errorf("no digest named in %q: %w", trim(b), ErrAuth)
}

func handshakeErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("peer closed the connection during the handshake: %w", ErrAuth)
	}
	return err
}

func trim(b []byte) []byte { return b[:min(len(b), 32)] }
