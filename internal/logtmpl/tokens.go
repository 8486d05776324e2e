package logtmpl

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokenize splits a masked message into tokens: at white space, and
// around '=', '(' and ')', so that in key=value the value stands alone
// and (x) and LOGIN(x) differ in length; an empty "()" holds an empty
// token, so that it and (value) align; a masked number and its unit after
// one space are one token (<*> ms, <<*> sec). glued[i] is whether no space
// precedes tokens[i] (the template's text keeps the message's spacing).
func tokenize(s string) (tokens []string, glued []bool) {
	return tokenizeInto(s, nil, nil)
}

// tokenizeInto is tokenize appending to tokens and glued (of length 0),
// so that a caller can reuse them.
func tokenizeInto(s string, tokens []string, glued []bool) ([]string, []bool) {
	space := true
	prevEnd := -1 // where the last token ends
	for i := 0; i < len(s); {
		c := s[i]
		if k := byteClass[c]; k == classSpace || (k == classOther && spaceAt(s, i) > 0) {
			space = true
			i += spaceAt(s, i)
			continue
		}
		start := i
		if byteClass[c] == classSep {
			i++
		} else {
			for i < len(s) {
				k := byteClass[s[i]]
				if k == classPlain || (k == classOther && spaceAt(s, i) == 0) {
					i++
					continue
				}
				break
			}
		}
		if k := len(tokens) - 1; k >= 0 && prevEnd == start-1 && s[start-1] == ' ' &&
			strings.HasSuffix(tokens[k], Wildcard) && units[strings.TrimRight(s[start:i], ".,;:")] {
			// A number and its unit are one parameter: 5 ms, <1 sec.
			tokens[k] = s[start-1-len(tokens[k]) : i]
			prevEnd = i
			space = false
			continue
		}
		tokens = append(tokens, s[start:i])
		glued = append(glued, !space)
		space = false
		prevEnd = i
		if c == '(' && i < len(s) && s[i] == ')' {
			tokens = append(tokens, "")
			glued = append(glued, true)
		}
	}
	return tokens, glued
}

// The classes of bytes for tokenize: classOther is a byte of a non-ASCII
// character, which may be white space.
const (
	classPlain = iota
	classSpace
	classSep
	classOther
)

var byteClass = func() (t [256]byte) {
	for c := range t {
		switch {
		case c >= utf8.RuneSelf:
			t[c] = classOther
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			t[c] = classSpace
		case c == '=' || c == '(' || c == ')':
			t[c] = classSep
		}
	}
	return t
}()

// spaceAt is the length of the white space (as strings.Fields sees it)
// at s[i], or 0.
func spaceAt(s string, i int) int {
	c := s[i]
	if c < utf8.RuneSelf {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' {
			return 1
		}
		return 0
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if unicode.IsSpace(r) {
		return n
	}
	return 0
}

// wordLike: letters only, but for trailing punctuation, and not a name of
// a day, a month or a unit (those are parts of parameters).
func wordLike(s string) bool {
	s = strings.TrimRight(s, ".,;:!?")
	if s == "" || paramWords[s] {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) {
			return false
		}
	}
	return true
}

// paramWords are words that are parts of parameters: days and months of
// dates, units of sizes and durations; units are those that after a
// masked number join its token.
var paramWords, units = map[string]bool{}, map[string]bool{}

func init() {
	for _, w := range strings.Fields(`B KB MB GB TB KiB MiB GiB TiB ms us ns s sec secs min mins h hrs`) {
		units[w] = true
		paramWords[w] = true
	}
	for _, w := range strings.Fields(`Mon Tue Wed Thu Fri Sat Sun Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec`) {
		paramWords[w] = true
	}
}

// varLike: a token that looks like a parameter: digits, a path, an empty
// value, a day, month or unit, or a masked number with its unit.
func varLike(s string) bool {
	return s == "" || hasDigit(s) || strings.IndexByte(s, '/') >= 0 || paramWords[strings.TrimRight(s, ".,;:")] ||
		(strings.IndexByte(s, ' ') >= 0 && strings.Contains(s, Wildcard))
}

// paramPair: two different tokens that are the same parameter's values:
// they differ in digits, punctuation or masked parts only, or both look
// like parameters.
func paramPair(a, b string) bool {
	return sameLetters(a, b) || (varLike(a) && varLike(b))
}

// sameLetters: a and b have the same letters in the same order.
func sameLetters(a, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && !isLetter(a[i]) {
			i++
		}
		for j < len(b) && !isLetter(b[j]) {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if a[i] != b[j] {
			return false
		}
		i++
		j++
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// mergeToken is the template token for two different values a and b at
// one position: when they have the same letters (blk_12 and blk_34), the
// letters stay and each run of other characters that differs becomes <*>
// (blk_<*>, but for their common ends); else <*>.
func mergeToken(a, b string) string {
	if !sameLetters(a, b) || !hasLetter(a) {
		return Wildcard
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		si, sj := i, j
		for i < len(a) && !isLetter(a[i]) {
			i++
		}
		for j < len(b) && !isLetter(b[j]) {
			j++
		}
		if x, y := a[si:i], b[sj:j]; x == y {
			out.WriteString(x)
		} else {
			p := 0 // common prefix and suffix stay: _12, _345 -> _<*>
			for p < len(x) && p < len(y) && x[p] == y[p] {
				p++
			}
			q := 0
			for q < len(x)-p && q < len(y)-p && x[len(x)-1-q] == y[len(y)-1-q] {
				q++
			}
			piece := x[:p] + Wildcard + x[len(x)-q:]
			for strings.Contains(piece, Wildcard+Wildcard) {
				piece = strings.ReplaceAll(piece, Wildcard+Wildcard, Wildcard)
			}
			out.WriteString(piece)
		}
		si = i
		for i < len(a) && j < len(b) && isLetter(a[i]) && isLetter(b[j]) {
			i++ // a[i] == b[j]: the same letters
			j++
		}
		out.WriteString(a[si:i])
	}
	return out.String()
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if isLetter(s[i]) {
			return true
		}
	}
	return false
}

// wordPair: a and b are two words, alone or with the same punctuation and
// masked parts around them (dcbf...<*> and icbi...<*>).
func wordPair(a, b string) bool {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] && !isLetter(a[i]) {
		i++
	}
	j := 0
	for j < len(a)-i && j < len(b)-i && a[len(a)-1-j] == b[len(b)-1-j] && !isLetter(a[len(a)-1-j]) {
		j++
	}
	return wordLike(a[i:len(a)-j]) && wordLike(b[i:len(b)-j])
}
