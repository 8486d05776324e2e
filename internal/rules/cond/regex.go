package cond

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pattern is a compiled $regex with a prefilter: a literal that every
// match contains, looked for before the regular expression runs, since
// most values a rule meets do not match and a failing scan of an
// unanchored expression is the slow case of RE2.
type pattern struct {
	re   *regexp.Regexp
	lit  string // "" when none is known
	fold bool   // lit is ASCII and compared without regard to case
}

func newPattern(expr string) (*pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	p := &pattern{re: re}
	if tree, err := syntax.Parse(expr, syntax.Perl); err == nil {
		p.lit, p.fold = required(tree.Simplify())
		if p.fold {
			p.lit = strings.ToLower(foldable(p.lit))
			p.fold = p.lit != ""
		}
	}
	return p, nil
}

// MatchString reports whether s matches.
func (p *pattern) MatchString(s string) bool {
	if p.lit != "" {
		if p.fold {
			if !containsFold(s, p.lit) {
				return false
			}
		} else if !strings.Contains(s, p.lit) {
			return false
		}
	}
	return p.re.MatchString(s)
}

func (p *pattern) String() string { return p.re.String() }

// required returns a literal that every string re matches contains, the
// longest it finds (case-folded or not), or "".
func required(re *syntax.Regexp) (lit string, fold bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return string(re.Rune), re.Flags&syntax.FoldCase != 0
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if l, f := required(sub); len(l) > len(lit) {
				lit, fold = l, f
			}
		}
	}
	return lit, fold
}

// foldable returns the longest part of s whose runes are ASCII and fold
// only to ASCII runes ('k' also folds to the Kelvin sign, 's' to the long
// s): in that part an ASCII comparison without regard to case finds what
// the expression would.
func foldable(s string) string {
	best, start := "", 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !asciiFold(r) {
			if i-start > len(best) {
				best = s[start:i]
			}
			start = i + size
		}
		i += size
	}
	if len(s)-start > len(best) {
		best = s[start:]
	}
	return best
}

func asciiFold(r rune) bool {
	if r >= utf8.RuneSelf {
		return false
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains lower (ASCII, lower case) without
// regard to ASCII case.
func containsFold(s, lower string) bool {
	n := len(lower)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && toLower(s[i+j]) == lower[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
