package webhook

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Limits on numbers in an event. PostgreSQL stores event data as jsonb,
// whose numbers are numerics: an exponent beyond about ±16,000 or a
// mantissa of 131,072 digits fails the insert of the whole batch. These
// bounds are far inside that and far beyond any real metric.
const (
	maxNumberLen      = 100
	maxNumberExponent = 1000
)

// checkStorable reports the first part of the valid JSON object b that no
// store can hold: invalid UTF-8, a \u0000 escape (PostgreSQL text and jsonb
// cannot hold NUL), an unpaired UTF-16 surrogate escape (jsonb rejects it)
// or an out-of-range number. The error names the top-level field it is in.
func checkStorable(b []byte) *FieldError {
	var (
		depth     int
		inString  bool
		isKey     bool // the current string is a top-level key
		expectKey bool // the next top-level string is a key
		strStart  int
		key       []byte // raw current top-level key, quotes included
	)
	fail := func(reason string, inKey bool, i int) *FieldError {
		k := key
		if inKey {
			// The bad byte is inside the key itself: name what we can.
			k = append(append([]byte{}, b[strStart:i]...), '"')
		}
		return &FieldError{Field: fieldName(k), Reason: reason}
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case c == '"':
				inString = false
				if isKey {
					key = b[strStart : i+1]
				}
			case c == '\\':
				if i+1 < len(b) && b[i+1] == 'u' {
					r, n := hex4(b, i+2)
					switch {
					case n < 4:
						// Not reachable for valid JSON.
						return fail("contains an invalid \\u escape", isKey, i)
					case r == 0:
						return fail(`contains a NUL character (\u0000), which cannot be stored`, isKey, i)
					case r >= 0xDC00 && r <= 0xDFFF:
						return fail("contains an unpaired UTF-16 surrogate escape", isKey, i)
					case r >= 0xD800 && r <= 0xDBFF:
						if i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
							return fail("contains an unpaired UTF-16 surrogate escape", isKey, i)
						}
						lo, n := hex4(b, i+8)
						if n < 4 || lo < 0xDC00 || lo > 0xDFFF {
							return fail("contains an unpaired UTF-16 surrogate escape", isKey, i)
						}
						i += 11
					default:
						i += 5
					}
				} else {
					i++
				}
			case c >= utf8.RuneSelf:
				r, size := utf8.DecodeRune(b[i:])
				if r == utf8.RuneError && size <= 1 {
					return fail("contains invalid UTF-8", isKey, i)
				}
				i += size - 1
			}
			continue
		}
		switch c {
		case '"':
			inString, strStart = true, i
			isKey = depth == 1 && expectKey
		case '{', '[':
			depth++
			if depth == 1 {
				expectKey = c == '{'
			}
		case '}', ']':
			depth--
		case ':':
			if depth == 1 {
				expectKey = false
			}
		case ',':
			if depth == 1 {
				expectKey = true
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			j := i
			for j < len(b) && strings.IndexByte("-+.eE0123456789", b[j]) >= 0 {
				j++
			}
			if !numberStorable(b[i:j]) {
				return fail("contains a number too large or too long to store", false, i)
			}
			i = j - 1
		default:
			if c >= utf8.RuneSelf {
				// Not reachable for valid JSON.
				return fail("contains invalid UTF-8", false, i)
			}
		}
	}
	return nil
}

// numberStorable reports whether the JSON number n is within the limits.
func numberStorable(n []byte) bool {
	if len(n) > maxNumberLen {
		return false
	}
	for i, c := range n {
		if c != 'e' && c != 'E' {
			continue
		}
		exp := 0
		for _, d := range n[i+1:] {
			if d >= '0' && d <= '9' {
				exp = exp*10 + int(d-'0')
				if exp > maxNumberExponent {
					return false
				}
			}
		}
		return true
	}
	return true
}

// hex4 decodes the four hex digits at b[i:], returning how many it read.
func hex4(b []byte, i int) (rune, int) {
	var r rune
	for n := 0; n < 4; n++ {
		if i+n >= len(b) {
			return r, n
		}
		c := b[i+n]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return r, n
		}
		r = r<<4 | rune(c)
	}
	return r, 4
}

// fieldName decodes a raw JSON key for use in a Reject, replacing what
// cannot be shown (invalid UTF-8, NUL).
func fieldName(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
	return clip(s, 100)
}
