package pickle

import "unicode/utf8"

// Python str values cross as UTF-8 with "surrogatepass": lone surrogates
// (U+D800 to U+DFFF, which Python strings may hold) are encoded like any
// other code point, as three bytes that Go's UTF-8 calls invalid. This
// package accepts and keeps them (in Go strings) so that such a str
// survives a round trip; everything else must be valid UTF-8.

func isSurrogate(r rune) bool { return 0xd800 <= r && r <= 0xdfff }

// surrogateAt reports whether s starts with an encoded surrogate.
func surrogateAt(s string) bool {
	return len(s) >= 3 && s[0] == 0xed && 0xa0 <= s[1] && s[1] <= 0xbf && 0x80 <= s[2] && s[2] <= 0xbf
}

// validWTF8 reports whether b is UTF-8 in which surrogates are allowed.
func validWTF8(b string) bool {
	if utf8.ValidString(b) {
		return true
	}
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(b[i:])
		if r == utf8.RuneError && n == 1 {
			if !surrogateAt(b[i:]) {
				return false
			}
			n = 3
		}
		i += n
	}
	return true
}

// decodeWTF8 decodes the first code point of s, surrogates included, like
// utf8.DecodeRuneInString.
func decodeWTF8(s string) (rune, int) {
	if surrogateAt(s) {
		return rune(s[0]&0x0f)<<12 | rune(s[1]&0x3f)<<6 | rune(s[2]&0x3f), 3
	}
	return utf8.DecodeRuneInString(s)
}

// appendWTF8 appends the encoding of r, surrogates included.
func appendWTF8(b []byte, r rune) []byte {
	if isSurrogate(r) {
		return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	}
	return utf8.AppendRune(b, r)
}

// rawUnicodeEscape decodes Python's raw-unicode-escape, the argument of
// the protocol-0 opcode UNICODE: bytes are code points U+0000 to U+00FF,
// except that \uXXXX and \UXXXXXXXX after an odd number of backslashes
// are escapes.
//
// The result takes at most two bytes per byte of b (a byte 0x80 to 0xff
// takes two; an escape of six or ten bytes at most four).
func rawUnicodeEscape(b []byte) (string, bool) {
	out := make([]byte, 0, 2*len(b))
	for i := 0; i < len(b); {
		if b[i] != '\\' {
			out = appendWTF8(out, rune(b[i]))
			i++
			continue
		}
		start := i
		for i < len(b) && b[i] == '\\' {
			out = append(out, '\\')
			i++
		}
		if (i-start)%2 == 0 || i >= len(b) || b[i] != 'u' && b[i] != 'U' {
			continue
		}
		out = out[:len(out)-1] // the backslash starts an escape
		count := 4
		if b[i] == 'U' {
			count = 8
		}
		i++
		if len(b)-i < count {
			return "", false
		}
		var r rune
		for _, c := range b[i : i+count] {
			var d byte
			switch {
			case '0' <= c && c <= '9':
				d = c - '0'
			case 'a' <= c && c <= 'f':
				d = c - 'a' + 10
			case 'A' <= c && c <= 'F':
				d = c - 'A' + 10
			default:
				return "", false
			}
			r = r<<4 | rune(d)
		}
		i += count
		if r > utf8.MaxRune || r < 0 {
			return "", false
		}
		out = appendWTF8(out, r)
	}
	return string(out), true
}
