package maintenance

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMatcherJSON(t *testing.T) {
	for _, c := range []struct {
		in, out string
		want    Matcher
		err     string
	}{
		{in: `"db-01"`, out: `"db-01"`, want: Matcher{Values: []string{"db-01"}}},
		{in: `["a", "b"]`, out: `["a","b"]`, want: Matcher{Values: []string{"a", "b"}}},
		{in: `{"regex": "db-.*"}`, out: `{"regex":"db-.*"}`, want: Matcher{Regex: "db-.*"}},
		{in: `{"regex": "("}`, err: "invalid regex"},
		{in: `{"regex": ""}`, err: "non-empty"},
		{in: `{"re": "x"}`, err: "want a string"},
		{in: `{"regex": "x", "other": 1}`, err: "want a string"},
		{in: `[1, 2]`, err: "want a string"},
		{in: `12`, err: "want a string"},
		{in: `null`, err: "want a string"},
	} {
		t.Run(c.in, func(t *testing.T) {
			var m Matcher
			err := json.Unmarshal([]byte(c.in), &m)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want.Values, m.Values)
			require.Equal(t, c.want.Regex, m.Regex)
			b, err := json.Marshal(m)
			require.NoError(t, err)
			require.JSONEq(t, c.out, string(b))
		})
	}
}

func window(t *testing.T, matchers string) Window {
	t.Helper()
	w := Window{StartsAt: time.Unix(1000, 0), EndsAt: time.Unix(2000, 0)}
	require.NoError(t, json.Unmarshal([]byte(matchers), &w.Matchers))
	return w
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name, matchers, path string
		mod                  func(*Window)
	}{
		{name: "ok", matchers: `{"host": "db-01", "tags": ["env:prod"]}`},
		{name: "no matchers", matchers: `{}`, path: "matchers"},
		{name: "unknown field", matchers: `{"color": "red"}`, path: "matchers.color"},
		{name: "empty list", matchers: `{"host": []}`, path: "matchers.host"},
		{name: "empty value", matchers: `{"host": [" "]}`, path: "matchers.host"},
		{name: "regex matches empty", matchers: `{"service": {"regex": ".*"}}`, path: "matchers.service"},
		{name: "no start", matchers: `{"host": "a"}`, path: "starts_at", mod: func(w *Window) { w.StartsAt = time.Time{} }},
		{name: "no end", matchers: `{"host": "a"}`, path: "ends_at", mod: func(w *Window) { w.EndsAt = time.Time{} }},
		{name: "end before start", matchers: `{"host": "a"}`, path: "ends_at", mod: func(w *Window) { w.EndsAt = w.StartsAt }},
		{name: "long comment", matchers: `{"host": "a"}`, path: "comment", mod: func(w *Window) { w.Comment = string(make([]byte, 5000)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := window(t, c.matchers)
			if c.mod != nil {
				c.mod(&w)
			}
			err := w.Validate()
			if c.path == "" {
				require.NoError(t, err)
				return
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, c.path, fe.Path)
		})
	}
}

func TestMatches(t *testing.T) {
	db := Target{Host: "db-01", Service: "postgres", Tags: []string{"env:prod", "team:dba"}}
	for _, c := range []struct {
		matchers string
		target   Target
		want     bool
	}{
		{`{"host": "db-01"}`, db, true},
		{`{"host": "DB-01"}`, db, true},
		{`{"host": {"regex": "db-[0-9]+"}}`, Target{Host: "DB-07"}, true},
		{`{"host": {"regex": "db"}}`, db, false}, // anchored
		{`{"host": ["web-01", "db-01"], "service": "postgres"}`, db, true},
		{`{"host": "db-01", "service": "mysql"}`, db, false},
		{`{"service": "Postgres"}`, db, false}, // services are exact
		{`{"tags": "team:dba"}`, db, true},
		{`{"tags": {"regex": "env:(prod|staging)"}}`, db, true},
		{`{"tags": "env:dev"}`, db, false},
		{`{"event_type": "backup"}`, db, false}, // a host as a whole has no event type
		{`{"event_type": "backup", "host": "db-01"}`, Target{Host: "db-01", EventType: "backup"}, true},
		{`{"service": "postgres"}`, Target{Host: "db-01"}, false},
	} {
		t.Run(c.matchers, func(t *testing.T) {
			w := window(t, c.matchers)
			require.Equal(t, c.want, w.Matches(c.target))
		})
	}
	var none Window
	require.False(t, none.Matches(db))
}

func TestActive(t *testing.T) {
	w := window(t, `{"host": "a"}`)
	require.False(t, w.Active(w.StartsAt.Add(-time.Nanosecond)))
	require.True(t, w.Active(w.StartsAt))
	require.True(t, w.Active(w.EndsAt.Add(-time.Nanosecond)))
	require.False(t, w.Active(w.EndsAt))
	require.True(t, w.Covers(Target{Host: "a"}, w.StartsAt))
	require.False(t, w.Covers(Target{Host: "a"}, w.EndsAt))
}

// FuzzWindow decodes untrusted matchers: never a panic, and a window that
// validates matches without error and encodes back to what decodes the
// same.
func FuzzWindow(f *testing.F) {
	for _, s := range []string{`{"host": "db-01"}`, `{"tags": ["a", "b"]}`, `{"host": {"regex": "db-[0-9]+"}}`, `{"service": {"regex": "("}}`, `{"x": 1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w := Window{StartsAt: time.Unix(1000, 0), EndsAt: time.Unix(2000, 0)}
		if json.Unmarshal([]byte(s), &w.Matchers) != nil || w.Validate() != nil {
			return
		}
		_ = w.Matches(Target{Host: "db-01", Service: "s", EventType: "e", Tags: []string{"t"}})
		b, err := json.Marshal(w.Matchers)
		require.NoError(t, err)
		var back Matchers
		require.NoError(t, json.Unmarshal(b, &back))
		require.Len(t, back, len(w.Matchers))
	})
}
