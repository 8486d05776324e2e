package event

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestParseSeverity(t *testing.T) {
	families := map[Severity][]string{
		Critical: {"critical", "crit", "fatal", "emergency", "emerg", "alert", "panic", "disaster", "p1", "sev1", "sev-1", "down"},
		High:     {"high", "error", "err", "major", "severe", "p2", "sev2", "sev-2", "failure", "failed"},
		Medium:   {"medium", "warning", "warn", "moderate", "average", "p3", "sev3", "sev-3", "minor", "degraded"},
		Low:      {"low", "notice", "p4", "sev4", "sev-4", "unknown"},
		Info:     {"info", "informational", "information", "debug", "trace", "ok", "resolved", "clear", "cleared", "normal", "p5", "sev5", "sev-5", "none", "up"},
	}
	for want, words := range families {
		for _, w := range words {
			// Case and surrounding space do not matter.
			for _, in := range []string{w, strings.ToUpper(w), " " + strings.ToUpper(w[:1]) + w[1:] + "\t\n"} {
				t.Run(in, func(t *testing.T) {
					got, err := ParseSeverity(in)
					require.NoError(t, err)
					require.Equal(t, want, got)
				})
			}
		}
	}
}

func TestParseSeveritySyslogLevels(t *testing.T) {
	want := []Severity{Critical, Critical, Critical, High, Medium, Low, Info, Info}
	for n, sev := range want {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			got, err := ParseSeverity(strconv.Itoa(n))
			require.NoError(t, err)
			require.Equal(t, sev, got)
			got, err = ParseSeverityJSON(json.RawMessage(strconv.Itoa(n)))
			require.NoError(t, err)
			require.Equal(t, sev, got)
		})
	}
}

func TestParseSeverityRejects(t *testing.T) {
	for _, in := range []string{
		"", " ", "8", "9", "10", "99", "-1", "-8", "1.5", "3.0", "1e0", "0x1",
		"urgent", "crit ical", "p0", "p6", "sev0", "sev-6", "critical!", "info\x00",
		"9223372036854775808", strings.Repeat("x", 1000), "\xff\xfe",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseSeverity(in)
			require.ErrorIs(t, err, ErrUnknownSeverity)
			require.Empty(t, got)
			require.LessOrEqual(t, len(err.Error()), 300, "the error quotes a clipped value")
		})
	}
}

func TestParseSeverityJSON(t *testing.T) {
	tests := []struct {
		in   string
		want Severity
		ok   bool
	}{
		{`"critical"`, Critical, true},
		{`"Warning"`, Medium, true},
		{`"\u0065rror"`, High, true},
		{`3`, High, true},
		{`"3"`, High, true},
		{`7`, Info, true},
		{`8`, "", false},
		{`-1`, "", false},
		{`2.5`, "", false},
		{`true`, "", false},
		{`null`, "", false},
		{`{}`, "", false},
		{`["high"]`, "", false},
		{`not json`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSeverityJSON(json.RawMessage(tt.in))
			if !tt.ok {
				require.ErrorIs(t, err, ErrUnknownSeverity)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSeverityRank(t *testing.T) {
	for i, s := range Severities {
		require.Equal(t, 4-i, s.Rank())
		require.True(t, s.Valid())
		require.Equal(t, s, SeverityFromRank(s.Rank()))
	}
	require.Equal(t, -1, Severity("warning").Rank())
	require.False(t, Severity("").Valid())
	require.True(t, Critical.Urgent())
	require.True(t, High.Urgent())
	require.False(t, Medium.Urgent())
	require.Equal(t, Critical, SeverityFromRank(99))
	require.Equal(t, Info, SeverityFromRank(-5))
}

// Every synonym maps to a valid severity, and every severity parses as
// itself.
func TestSeverityWordsAreValid(t *testing.T) {
	for w, s := range words {
		require.True(t, s.Valid(), w)
		require.Equal(t, strings.ToLower(w), w, "keys are lowercase")
	}
	for _, s := range Severities {
		got, err := ParseSeverity(string(s))
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
}

func FuzzParseSeverity(f *testing.F) {
	f.Add("critical")
	f.Add(" P1 ")
	f.Add("7")
	f.Add("-0")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSeverity(s)
		if err != nil {
			require.ErrorIs(t, err, ErrUnknownSeverity)
			require.Empty(t, got)
			return
		}
		require.True(t, got.Valid())
		// Parsing is insensitive to case and surrounding space, and the
		// result parses as itself.
		again, err := ParseSeverity("  " + strings.ToUpper(s) + " ")
		if utf8.ValidString(s) && strings.EqualFold(strings.ToUpper(s), s) {
			require.NoError(t, err)
			require.Equal(t, got, again)
		}
		self, err := ParseSeverity(string(got))
		require.NoError(t, err)
		require.Equal(t, got, self)
		// The JSON string form agrees.
		b, err := json.Marshal(s)
		require.NoError(t, err)
		if utf8.ValidString(s) {
			viaJSON, err := ParseSeverityJSON(b)
			require.NoError(t, err)
			require.Equal(t, got, viaJSON)
		}
	})
}
