package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxNumberLen bounds the length of a number in an event. PostgreSQL
// stores event data as jsonb, whose numbers are numerics: a mantissa of
// 131,072 digits fails the insert of the whole batch.
const maxNumberLen = 100

// frame is one open container of the document checkStorable scans, for
// naming the value at fault.
type frame struct {
	obj       bool
	expectKey bool   // in an object: the next string is a key
	key       []byte // in an object: the raw current key, quotes included
	idx       int    // in an array: the current element's index
}

// checkStorable reports the first part of the valid JSON object b that
// cannot be stored and read back: invalid UTF-8, a \u0000 escape
// (PostgreSQL text and jsonb cannot hold NUL), an unpaired UTF-16
// surrogate escape (jsonb rejects it), or a number that is longer than
// maxNumberLen or that the event data decoder cannot read back (event data
// is decoded into float64: a number whose magnitude is beyond the largest
// float64, such as 1e309, overflows). The error's Field is the path of the
// value at fault: the top-level field, then ".key" per nested object and
// "[i]" per array element, such as metadata.v or tags[2].
func checkStorable(b []byte) *FieldError {
	var (
		stack    = make([]frame, 0, 8)
		inString bool
		isKey    bool // the current string is a key
		strStart int
	)
	fail := func(reason string, inKey bool, i int) *FieldError {
		return &FieldError{Field: path(stack, b, strStart, i, inKey), Reason: reason}
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case c == '"':
				inString = false
				if isKey {
					stack[len(stack)-1].key = b[strStart : i+1]
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
			isKey = len(stack) > 0 && stack[len(stack)-1].obj && stack[len(stack)-1].expectKey
		case '{', '[':
			stack = append(stack, frame{obj: c == '{', expectKey: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ':':
			if len(stack) > 0 {
				stack[len(stack)-1].expectKey = false
			}
		case ',':
			if len(stack) > 0 {
				if top := &stack[len(stack)-1]; top.obj {
					top.expectKey = true
				} else {
					top.idx++
				}
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			j := i
			for j < len(b) && strings.IndexByte("-+.eE0123456789", b[j]) >= 0 {
				j++
			}
			if reason := numberProblem(b[i:j]); reason != "" {
				return fail(reason, false, i)
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

// numberProblem says what is wrong with the JSON number n, or returns ""
// when it can be stored and read back. Event data is decoded into float64
// (event.(*Event).UnmarshalData), which fails on a number beyond its range;
// one that only underflows reads back as zero, and jsonb holds it.
func numberProblem(n []byte) string {
	if len(n) > maxNumberLen {
		return fmt.Sprintf("number is longer than %d characters", maxNumberLen)
	}
	// Without an exponent, a number of at most maxNumberLen characters is
	// within float64's range (about 1.8e308): only parse the others.
	if !bytes.ContainsAny(n, "eE") {
		return ""
	}
	if _, err := strconv.ParseFloat(string(n), 64); err != nil {
		return fmt.Sprintf("number %s is out of range", n)
	}
	return ""
}

// path names the value being scanned at byte i: the keys and indexes of
// the open containers; inKey means the problem is in the key that started
// at strStart.
func path(stack []frame, b []byte, strStart, i int, inKey bool) string {
	var sb strings.Builder
	for k, f := range stack {
		last := k == len(stack)-1
		if !f.obj {
			fmt.Fprintf(&sb, "[%d]", f.idx)
			continue
		}
		raw := f.key
		switch {
		case last && inKey:
			// The bad byte is inside the key itself: name what we can.
			raw = append(append([]byte{}, b[strStart:i]...), '"')
		case f.expectKey:
			// Between a comma and the next key: nothing to name.
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(fieldName(raw))
	}
	return clip(sb.String(), 200)
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
