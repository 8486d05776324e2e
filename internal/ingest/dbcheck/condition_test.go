package dbcheck

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func ptr(f float64) *float64 { return &f }

func TestCondition(t *testing.T) {
	for _, c := range []struct {
		cond  string
		canon string
		value *float64
		rows  int
		holds bool
	}{
		{"value > 100", "value > 100", ptr(101), 1, true},
		{"value > 100", "value > 100", ptr(100), 1, false},
		{"value>100", "value > 100", ptr(100.5), 1, true},
		{"value >= 0.9", "value >= 0.9", ptr(0.9), 1, true},
		{"value < 0.9", "value < 0.9", ptr(0.9), 1, false},
		{"value <= -1e3", "value <= -1e3", ptr(-1000), 1, true},
		{"value == 0", "value == 0", ptr(0), 1, true},
		{"value != 0", "value != 0", ptr(0), 1, false},
		{"rows > 0", "rows > 0", nil, 3, true},
		{"ROWS > 0", "ROWS > 0", nil, 0, false},
		{"rows == 0", "rows == 0", nil, 0, true},
		// No value: a comparison of value is false, whatever the operator.
		{"value != 0", "value != 0", nil, 0, false},
		{"value < 1", "value < 1", nil, 0, false},
		{"value > 1 and rows > 2", "value > 1 and rows > 2", ptr(2), 2, false},
		{"value > 1 && rows > 1", "value > 1 && rows > 1", ptr(2), 2, true},
		{"value > 1 or rows > 2", "value > 1 or rows > 2", ptr(0), 3, true},
		// and binds tighter than or.
		{"rows > 5 or value > 1 and rows > 0", "rows > 5 or value > 1 and rows > 0", ptr(2), 1, true},
		{"rows > 5 || value > 1 and rows > 1", "rows > 5 || value > 1 and rows > 1", ptr(2), 1, false},
	} {
		t.Run(c.cond, func(t *testing.T) {
			cond, err := ParseCondition(c.cond)
			require.NoError(t, err)
			require.Equal(t, c.canon, cond.String())
			require.Equal(t, c.holds, cond.Holds(c.value, c.rows))
			again, err := ParseCondition(cond.String())
			require.NoError(t, err, "the canonical spelling parses")
			require.Equal(t, cond, again)
		})
	}
}

func TestConditionErrors(t *testing.T) {
	for _, s := range []string{
		"", "   ", "value", "value >", "value > ", "> 1", "value > x", "count > 1", "value = 1",
		"value => 1", "value > 1 and", "value > 1 rows > 1", "value > 1 xor rows > 1", "value > NaN",
		"value > Inf", "value > 1e999", "value > 0x10", "value > 1_000", "value > 1; DROP TABLE t",
		"value > (1)", "value > 1 and and rows > 1", "rows > 1 and rows > 1 and rows > 1 and rows > 1 and rows > 1 and rows > 1 and rows > 1 and rows > 1 and rows > 1",
		string(make([]byte, maxConditionLen+1)),
	} {
		_, err := ParseCondition(s)
		require.Error(t, err, "%q", s)
		require.True(t, errors.Is(err, ErrCondition), "%q: %v", s, err)
	}
}

func TestZeroConditionNeverHolds(t *testing.T) {
	require.False(t, Condition{}.Holds(ptr(1), 1))
}

// FuzzCondition: ParseCondition never panics, an accepted condition's
// canonical spelling parses to the same condition, and Holds never panics.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		"value > 100", "rows > 0", "value >= 0.9", "value <= -1e3 and rows != 2", "value == 0 || rows < 1",
		"value>1&&rows<2", "rows >= 1 or rows <= 0 and value != 3.5", "value > ", "and", "value >= .5e-3",
	} {
		f.Add(s, 1.5, 2)
	}
	f.Fuzz(func(t *testing.T, s string, v float64, rows int) {
		c, err := ParseCondition(s)
		if err != nil {
			if !errors.Is(err, ErrCondition) {
				t.Fatalf("%q: error %v does not wrap ErrCondition", s, err)
			}
			return
		}
		again, err := ParseCondition(c.String())
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", s, c.String(), err)
		}
		if again.String() != c.String() || again.Holds(&v, rows) != c.Holds(&v, rows) || again.Holds(nil, rows) != c.Holds(nil, rows) {
			t.Fatalf("%q: canonical %q parses to another condition", s, c.String())
		}
	})
}
