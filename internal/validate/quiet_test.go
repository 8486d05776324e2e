package validate

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

var idCounter atomic.Int64

// mkEvent is an event received and occurred at at, as the pipeline hands
// it to the store (see storetest).
func mkEvent(at time.Time, host, typ, fingerprint string, template int64) (event.Raw, event.Event) {
	at = at.UTC().Truncate(time.Microsecond)
	id := event.IDAt(at) + idCounter.Add(1)%(1<<12)
	data, _ := json.Marshal(map[string]any{"source": "nagios", "host": host})
	raw := event.Raw{ID: id, SourceSystem: "nagios", SourceType: event.SourceWebhook, Data: data,
		ReceivedAt: at, Processed: true, ProcessedEventID: id}
	e := event.Event{
		ID: id, RawEventID: id, EventType: typ, Severity: event.High,
		SourceSystem: "nagios", SourceType: event.SourceWebhook, SourceHost: host, Title: "CPU at 97%",
		OccurredAt: at, ReceivedAt: at, ProcessedAt: at.Add(time.Millisecond),
		Fingerprint: fingerprint, OccurrenceCount: 1, LastSeenAt: at, Priority: 50,
	}
	if template != 0 {
		e.Template = &event.Template{ID: template, Text: "CPU at <*>%"}
	}
	return raw, e
}

func write(t *testing.T, s *sqlite.Store, evs ...func() (event.Raw, event.Event)) []event.Event {
	t.Helper()
	b := &store.Batch{}
	for _, f := range evs {
		r, e := f()
		b.Raw = append(b.Raw, r)
		b.New = append(b.New, e)
	}
	require.NoError(t, s.WriteBatch(t.Context(), b))
	return b.New
}

func ev(at time.Time, host, typ, fp string, tmpl int64) func() (event.Raw, event.Event) {
	return func() (event.Raw, event.Event) { return mkEvent(at, host, typ, fp, tmpl) }
}

func TestCheckQuietSQLite(t *testing.T) {
	base := time.Now().UTC().Truncate(time.Millisecond)
	from, due := base, base.Add(10*time.Minute)
	const typ = "threshold_breach"

	type setup func(t *testing.T, s *sqlite.Store, trigger event.Event)
	for _, tc := range []struct {
		name   string
		match  Match
		setup  setup
		ok     bool
		detail string
	}{
		{"quiet: only other hosts, types, patterns and times", Match{EventType: typ, Fingerprint: "f00d"},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				write(t, s,
					ev(base.Add(2*time.Minute), "web-02", typ, "f00d", 0),         // another host
					ev(base.Add(2*time.Minute), "web-01", "disk_full", "f00d", 0), // another type
					ev(base.Add(2*time.Minute), "web-01", typ, "beef", 0),         // another fingerprint
					ev(base.Add(-2*time.Minute), "web-01", typ, "f00d", 0),        // before the window
					ev(base.Add(11*time.Minute), "web-01", typ, "f00d", 0),        // after it
				)
			}, true, "no new event (event type \"threshold_breach\", fingerprint f00d) on web-01 within 10m0s of the action"},
		{"a new event of the pattern", Match{EventType: typ, Fingerprint: "f00d"},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				write(t, s, ev(base.Add(4*time.Minute), "web-01", typ, "f00d", 0))
			}, false, "new event"},
		{"at Due exactly counts", Match{EventType: typ, Fingerprint: "f00d"},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				write(t, s, ev(due, "web-01", typ, "f00d", 0))
			}, false, "new event"},
		{"at From exactly does not", Match{EventType: typ, Fingerprint: "f00d"},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				write(t, s, ev(from, "web-01", typ, "f00d", 0))
			}, true, "no new event"},
		{"a repeat folded into the triggering event", Match{EventType: typ, Fingerprint: "f00d"},
			func(t *testing.T, s *sqlite.Store, trigger event.Event) {
				require.NoError(t, s.WriteBatch(t.Context(), &store.Batch{Repeats: []store.Repeat{{
					EventID: trigger.ID, OccurredAt: trigger.OccurredAt, OccurrenceCount: 2, LastSeenAt: base.Add(3 * time.Minute)}}}))
			}, false, "repeated at"},
		{"a repeat folded into another event of the pattern, occurred before the window", Match{EventType: typ, Fingerprint: "f00d"},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				other := write(t, s, ev(base.Add(-20*time.Minute), "web-01", typ, "f00d", 0))[0]
				require.NoError(t, s.WriteBatch(t.Context(), &store.Batch{Repeats: []store.Repeat{{
					EventID: other.ID, OccurredAt: other.OccurredAt, OccurrenceCount: 5, LastSeenAt: base.Add(5 * time.Minute)}}}))
			}, false, "repeated at"},
		{"by template id, whatever the fingerprint", Match{EventType: typ, TemplateID: 7},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				write(t, s, ev(base.Add(time.Minute), "web-01", typ, "other", 7))
			}, false, "log template 7"},
		{"another template is another pattern", Match{EventType: typ, TemplateID: 7},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				write(t, s, ev(base.Add(time.Minute), "web-01", typ, "f00d", 8))
			}, true, "no new event"},
		{"type only when the event had neither", Match{EventType: typ},
			func(t *testing.T, s *sqlite.Store, _ event.Event) {
				write(t, s, ev(base.Add(time.Minute), "web-01", typ, "anything", 0))
			}, false, "new event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSQLite(t)
			trigger := write(t, s, ev(base.Add(-time.Minute), "web-01", typ, "f00d", 7))[0]
			tc.setup(t, s, trigger)
			now := due.Add(30 * time.Second)
			v := newValidator(t, Options{Events: s, Now: func() time.Time { return now }})
			ok, detail, err := v.CheckQuiet(t.Context(), QuietCheck{Host: "web-01", Match: tc.match, EventID: trigger.ID, From: from, Due: due})
			require.NoError(t, err)
			require.Equal(t, tc.ok, ok, detail)
			require.Contains(t, detail, tc.detail)
		})
	}
}

func TestCheckQuietNotDue(t *testing.T) {
	s := openSQLite(t)
	base := time.Now().UTC()
	v := newValidator(t, Options{Events: s, Now: func() time.Time { return base.Add(9 * time.Minute) }})
	_, _, err := v.CheckQuiet(t.Context(), QuietCheck{Host: "web-01", Match: Match{EventType: "x"}, From: base, Due: base.Add(10 * time.Minute)})
	require.ErrorIs(t, err, ErrNotDue)
}

func TestCheckQuietScanBound(t *testing.T) {
	s := openSQLite(t)
	base := time.Now().UTC().Truncate(time.Millisecond)
	var evs []func() (event.Raw, event.Event)
	for i := range 30 {
		// Of the type on the host, but another fingerprint: each one read.
		evs = append(evs, ev(base.Add(time.Duration(i)*time.Second), "web-01", "t", "other", 0))
	}
	write(t, s, evs...)
	now := base.Add(time.Hour)
	v := newValidator(t, Options{Events: s, Now: func() time.Time { return now }, MaxScan: 10})
	// Pages of 1000 hold all 30: the bound is checked between pages, so
	// read them with a narrow page size through a wrapper.
	v.events = pageOf{s, 5}
	ok, detail, err := v.CheckQuiet(t.Context(), QuietCheck{Host: "web-01", Match: Match{EventType: "t", Fingerprint: "f00d"}, From: base, Due: base.Add(10 * time.Minute)})
	require.NoError(t, err)
	require.False(t, ok)
	require.Contains(t, detail, "more than 10 events")
}

// pageOf reads pages of n events.
type pageOf struct {
	*sqlite.Store
	n int
}

func (p pageOf) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	q.Limit = p.n
	return p.Store.Events(ctx, q)
}

func TestCheckQuietPagesThroughEvents(t *testing.T) {
	s := openSQLite(t)
	base := time.Now().UTC().Truncate(time.Millisecond)
	var evs []func() (event.Raw, event.Event)
	for i := range 12 {
		evs = append(evs, ev(base.Add(time.Duration(i)*time.Second), "web-01", "t", "other", 0))
	}
	evs = append(evs, ev(base.Add(time.Minute), "web-01", "t", "f00d", 0)) // the last, on the third page
	write(t, s, evs...)
	now := base.Add(time.Hour)
	v := newValidator(t, Options{Events: pageOf{s, 5}, Now: func() time.Time { return now }})
	ok, detail, err := v.CheckQuiet(t.Context(), QuietCheck{Host: "web-01", Match: Match{EventType: "t", Fingerprint: "f00d"}, From: base.Add(-time.Second), Due: base.Add(10 * time.Minute)})
	require.NoError(t, err)
	require.False(t, ok, detail)
	require.Contains(t, detail, "new event")
}
