package notify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSilenceValidate(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ok := func() Silence {
		return Silence{Matchers: map[string]any{"source_host": "db-01"}, StartsAt: start, EndsAt: start.Add(time.Hour)}
	}
	require.NoError(t, func() error { s := ok(); return s.Validate() }())

	tests := []struct {
		name   string
		change func(*Silence)
		want   string
	}{
		{"no start", func(s *Silence) { s.StartsAt = time.Time{} }, "starts_at: required"},
		{"no end", func(s *Silence) { s.EndsAt = time.Time{} }, "ends_at: required"},
		{"ends at start", func(s *Silence) { s.EndsAt = s.StartsAt }, "ends_at: must be after starts_at"},
		{"ends before start", func(s *Silence) { s.EndsAt = s.StartsAt.Add(-time.Second) }, "ends_at: must be after starts_at"},
		{"no matchers", func(s *Silence) { s.Matchers = nil }, "matchers: at least one matcher is required"},
		{"empty label name", func(s *Silence) { s.Matchers = map[string]any{"": "x"} }, "matchers: empty label name"},
		{"a mapping", func(s *Silence) { s.Matchers = map[string]any{"host": map[string]any{"$eq": "x"}} },
			"matchers.host: expected a string or a list of strings"},
		{"a bool", func(s *Silence) { s.Matchers = map[string]any{"host": true} },
			"matchers.host: expected a string or a list of strings"},
		{"a list with a mapping", func(s *Silence) { s.Matchers = map[string]any{"host": []any{"a", map[string]any{}}} },
			"matchers.host: expected a string or a list of strings"},
		{"an empty list", func(s *Silence) { s.Matchers = map[string]any{"host": []any{}} }, "matchers.host: empty list"},
		{"only empty values", func(s *Silence) { s.Matchers = map[string]any{"host": "", "rule": []string{""}} },
			"matchers: every matcher matches the empty value, which would silence every alert"},
		{"long comment", func(s *Silence) { s.Comment = strings.Repeat("x", 5000) }, "comment: longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.change(&s)
			err := s.Validate()
			require.EqualError(t, err, tt.want)
			var fe *FieldError
			require.True(t, errors.As(err, &fe))
		})
	}

	// An empty value beside a selective one is fine.
	s := ok()
	s.Matchers = map[string]any{"host": "db-01", "team": ""}
	require.NoError(t, s.Validate())
}

func TestSilenceFromJSON(t *testing.T) {
	var s Silence
	require.NoError(t, json.Unmarshal([]byte(`{"matchers": {"source_host": "db-01", "severity": ["critical", "high"], "rule_id": 42},
		"starts_at": "2026-01-02T03:00:00Z", "ends_at": "2026-01-02T05:00:00Z", "created_by": "ops", "comment": "maintenance"}`), &s))
	require.NoError(t, s.Validate())

	a := Alert{RuleID: 42, SourceHost: "db-01", Severity: "high"}
	require.True(t, s.Matches(a))
	a.Severity = "low"
	require.False(t, s.Matches(a))
	a.Severity, a.SourceHost = "critical", "db-02"
	require.False(t, s.Matches(a))
	a.SourceHost, a.RuleID = "db-01", 43
	require.False(t, s.Matches(a))

	// Active from starts_at (included) to ends_at (excluded).
	at := func(v string) time.Time {
		tm, err := time.Parse(time.RFC3339, v)
		require.NoError(t, err)
		return tm
	}
	require.False(t, s.Active(at("2026-01-02T02:59:59Z")))
	require.True(t, s.Active(at("2026-01-02T03:00:00Z")))
	require.True(t, s.Active(at("2026-01-02T04:59:59Z")))
	require.False(t, s.Active(at("2026-01-02T05:00:00Z")))
}

func TestSilenceMatchesNothingWhenMalformed(t *testing.T) {
	a := Alert{SourceHost: "db-01"}
	for _, m := range []map[string]any{nil, {}, {"source_host": map[string]any{}}, {"source_host": []any{}}} {
		s := Silence{Matchers: m}
		require.False(t, s.Matches(a), "%v", m)
	}
	s := Silence{Matchers: map[string]any{"source_host": []string{"db-02", "db-01"}}}
	require.True(t, s.Matches(a))
}
