package logtmpl

import "strings"

// maskDefault is DefaultMasks without regular expressions: one pass over
// msg that replaces, word by word (a word is a run of letters, digits and
// '_', as \b sees it), a UUID, an IPv4 address with an optional port, a
// 0x hex value, a hex id (hex digits only, with a digit and a lower-case
// letter) and a number (digits, optionally '.' and digits) by <*>.
func maskDefault(msg string) string {
	var b strings.Builder
	last := 0 // msg[last:i] is not copied yet
	i := 0
	for i < len(msg) {
		if !isWord(msg[i]) {
			i++
			continue
		}
		start := i
		for i < len(msg) && isWord(msg[i]) {
			i++
		}
		end := maskedEnd(msg, start, i)
		if end < 0 {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(msg))
		}
		b.WriteString(msg[last:start])
		b.WriteString(Wildcard)
		last, i = end, end
	}
	if last == 0 {
		return msg
	}
	b.WriteString(msg[last:])
	return b.String()
}

// maskedEnd returns where the parameter that starts at the word
// msg[start:end] ends, or -1 when the word is not one.
func maskedEnd(msg string, start, end int) int {
	w := msg[start:end]
	if n := uuidAt(msg, start); n > 0 {
		return start + n
	}
	if allDigits(w) {
		if n := ipv4At(msg, start); n > 0 {
			return start + n
		}
		// A decimal: digits '.' digits, the whole of the next word.
		if end+1 < len(msg) && msg[end] == '.' && isDigit(msg[end+1]) {
			j := end + 1
			for j < len(msg) && isWord(msg[j]) {
				j++
			}
			if allDigits(msg[end+1 : j]) {
				return j
			}
		}
		return end
	}
	if len(w) > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X') && allHex(w[2:]) {
		return end
	}
	if hexID(w) {
		return end
	}
	return -1
}

// uuidAt is the length of the UUID at msg[i:] that ends at a word
// boundary, or 0.
func uuidAt(msg string, i int) int {
	groups := [5]int{8, 4, 4, 4, 12}
	j := i
	for g, n := range groups {
		for k := 0; k < n; k++ {
			if j >= len(msg) || !isHexAny(msg[j]) {
				return 0
			}
			j++
		}
		if g < 4 {
			if j >= len(msg) || msg[j] != '-' {
				return 0
			}
			j++
		}
	}
	if j < len(msg) && isWord(msg[j]) {
		return 0
	}
	return j - i
}

// ipv4At is the length of the IPv4 address (and :port) at msg[i:] that
// ends at a word boundary, or 0.
func ipv4At(msg string, i int) int {
	j := i
	for part := 0; part < 4; part++ {
		n := 0
		for j < len(msg) && isDigit(msg[j]) && n < 4 {
			j++
			n++
		}
		if n == 0 || n > 3 {
			return 0
		}
		if part < 3 {
			if j >= len(msg) || msg[j] != '.' {
				return 0
			}
			j++
		}
	}
	if j < len(msg) && isWord(msg[j]) {
		return 0
	}
	if j+1 < len(msg) && msg[j] == ':' && isDigit(msg[j+1]) {
		k := j + 1
		for k < len(msg) && isDigit(msg[k]) {
			k++
		}
		if k >= len(msg) || !isWord(msg[k]) {
			j = k
		}
	}
	return j - i
}

func hexID(w string) bool {
	digit, letter := false, false
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case isDigit(c):
			digit = true
		case c >= 'a' && c <= 'f':
			letter = true
		default:
			return false
		}
	}
	return digit && letter
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func allHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexAny(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isHexAny(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isWord(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
}
