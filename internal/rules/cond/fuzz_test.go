package cond

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/reflex-ops/reflex/internal/event"
)

// FuzzCompile: any bytes give an *Error naming a place under conditions,
// or a Matcher that evaluates events without panicking, whose Explain
// agrees with Match and whose index keys never rule out an event it
// matches.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}}`))
	f.Add([]byte(`{"$or": [{"tags": "web"}, {"metadata.list": {"$gt": 0}}], "event_data.asset.team": {"$ne": null}}`))
	events := []*event.Event{sample(), {}, {EventType: "threshold_breach", Severity: "bogus", Tags: []string{""}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Compile(data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Path, rootPath) || ce.Msg == "" {
				t.Fatalf("error %T %q: want an *Error under %s", err, err, rootPath)
			}
			return
		}
		_ = m.String()
		types, sevs, sources := m.Keys()
		idx := NewIndex()
		idx.Add(7, m)
		for _, e := range events {
			ok := m.Match(e)
			got, why := m.Explain(e)
			if got != ok || why == "" {
				t.Fatalf("Match %t, Explain %t %q", ok, got, why)
			}
			if !ok {
				continue
			}
			if !slices.Contains(idx.Candidates(e, nil), 7) {
				t.Fatalf("matches %+v but is no candidate (keys %q %q %q)", e, types, sevs, sources)
			}
			if (types != nil && !slices.Contains(types, e.EventType)) ||
				(sevs != nil && !slices.Contains(sevs, string(e.Severity))) ||
				(sources != nil && !slices.Contains(sources, e.SourceSystem)) {
				t.Fatalf("matches %+v outside its keys %q %q %q", e, types, sevs, sources)
			}
		}
	})
}
