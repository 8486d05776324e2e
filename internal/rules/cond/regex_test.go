package cond

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPatternLiteral(t *testing.T) {
	cases := []struct {
		expr, lit string
		fold      bool
	}{
		{`(?i)out of (memory|disk)`, "out of ", true},
		{`^web-\d+$`, "web-", false},
		{`disk (full|almost full)`, "disk ", false},
		{`(?i)refused|reset`, "re", true}, // the parser factors the common prefix
		{`a|b`, "", false},
		{`(abc)+x`, "abc", false},
		{`(abc)*x`, "x", false},
		{`(abc){2,3}`, "abc", false},
		{`(abc)?`, "", false},
		{`(?i)kelvin`, "elvin", true}, // k folds to the Kelvin sign
		{`(?i)disk`, "di", true},      // s folds to the long s
		{`(?i)ks`, "", false},
		{`(?i)ERROR`, "error", true},
		{`naïve`, "naïve", false},
		{`(?i)naïve`, "na", true},
	}
	for _, c := range cases {
		p, err := newPattern(c.expr)
		require.NoError(t, err)
		require.Equal(t, c.lit, p.lit, c.expr)
		require.Equal(t, c.fold, p.fold, c.expr)
	}
}

// TestPatternAgrees: the prefilter never changes the answer of the
// regular expression, on random expressions and strings.
func TestPatternAgrees(t *testing.T) {
	atoms := []string{"a", "B", "k", "s", "er", "OR", "x+", "(ab)+", "(a|b)", "c*", "d?", "\\d", ".", "[a-c]", "K", "ſ", "é", " ", "(er){2}", "^", "$"}
	texts := []string{"", "a", "ab", "ERROR", "error", "Error on k", "\u212a", "\u017f", "ſer", "abab", "xxab", "1 er or", "naïve é", "KS", "ks", "ORer", "bbb c"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		var b strings.Builder
		if r.IntN(2) == 0 {
			b.WriteString("(?i)")
		}
		for range 1 + r.IntN(4) {
			b.WriteString(atoms[r.IntN(len(atoms))])
		}
		expr := b.String()
		p, err := newPattern(expr)
		require.NoError(t, err, expr)
		re := regexp.MustCompile(expr)
		for _, s := range texts {
			s += texts[r.IntN(len(texts))]
			require.Equal(t, re.MatchString(s), p.MatchString(s), "%q on %q (literal %q fold %t)", expr, s, p.lit, p.fold)
		}
	}
}
