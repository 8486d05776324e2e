package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

func testMigrateTwice(t *testing.T, e *env) {
	require.NoError(t, e.s.Migrate(e.ctx))
	p := mk(e.base, "web-01", event.Critical, "after second migrate")
	e.write(t, batch(p))
	got, err := e.s.Event(e.ctx, p.ev.ID)
	require.NoError(t, err)
	requireEvent(t, p.ev, got)
	require.NoError(t, e.s.Ping(e.ctx))
}

func testCloseTwice(t *testing.T, e *env) {
	require.NoError(t, e.s.Close())
	require.NoError(t, e.s.Close())
}

func testRoundTrip(t *testing.T, e *env) {
	p := mk(e.base, "web-server-01", event.Critical, "CPU usage exceeded 95%")
	p.ev.Description = "CPU usage exceeded 95% for 5m"
	p.ev.CorrelationID = "0b7e2a55-8d4c-4f8e-9f3e-3c1d2b4a5e6f"
	p.ev.ParentEventID = idAt(e.base.Add(-time.Minute))
	p.ev.OccurredAt = e.base.Add(-90 * time.Second) // the source's own time
	p.ev.Data = map[string]any{
		"metadata": map[string]any{"cpu_usage": 97.5, "threshold": 95.0, "duration": "5m"},
		"asset":    map[string]any{"environment": "production", "dependencies": []any{"db-01", "cache-01"}},
		"scoring":  map[string]any{"priority": 87.0, "reasons": []any{"source severity critical", "asset criticality high"}},
		"nothing":  nil,
		"flag":     true,
	}
	p.raw.Data = json.RawMessage(`{"source":"monitoring_system_name","event_type":"threshold_breach","severity":"critical","host":"web-server-01","metadata":{"cpu_usage":97.5}}`)
	p.raw.ProcessingErrors = []string{"note: timestamp in the past"}
	e.write(t, batch(p))

	got, err := e.s.Event(e.ctx, p.ev.ID)
	require.NoError(t, err)
	requireEvent(t, p.ev, got)

	raw, err := e.s.RawEvent(e.ctx, p.raw.ID)
	require.NoError(t, err)
	require.JSONEq(t, string(p.raw.Data), string(raw.Data))
	raw.Data = p.raw.Data
	require.Equal(t, p.raw.ReceivedAt.UnixMicro(), raw.ReceivedAt.UnixMicro())
	raw.ReceivedAt = p.raw.ReceivedAt
	require.Equal(t, p.raw, *raw)

	t.Run("optional fields empty", func(t *testing.T) {
		q := mk(e.base, "", event.Info, "bare")
		q.ev.SourceService, q.ev.Description, q.ev.CorrelationID, q.ev.Fingerprint = "", "", "", ""
		q.ev.Data, q.ev.Tags, q.ev.Priority, q.ev.ParentEventID = nil, nil, 0, 0
		q.raw.ProcessingErrors = nil
		e.write(t, batch(q))
		got, err := e.s.Event(e.ctx, q.ev.ID)
		require.NoError(t, err)
		requireEvent(t, q.ev, got)
		require.Nil(t, got.Data)
		require.Nil(t, got.Tags)
	})
	t.Run("defaults for unset fields", func(t *testing.T) {
		q := mk(e.base, "web-01", event.Low, "defaults")
		q.ev.OccurredAt = time.Time{}  // takes the receipt time
		q.ev.OccurrenceCount = 0       // at least 1
		q.ev.LastSeenAt = time.Time{}  // takes the receipt time
		q.ev.ProcessedAt = time.Time{} // stamped by the store
		q.raw.ReceivedAt = time.Time{} // the time of its id
		e.write(t, batch(q))
		got, err := e.s.Event(e.ctx, q.ev.ID)
		require.NoError(t, err)
		require.True(t, got.OccurredAt.Equal(q.ev.ReceivedAt), "occurred_at %v", got.OccurredAt)
		require.Equal(t, 1, got.OccurrenceCount)
		require.True(t, got.LastSeenAt.Equal(q.ev.ReceivedAt))
		require.False(t, got.ProcessedAt.IsZero())
		raw, err := e.s.RawEvent(e.ctx, q.raw.ID)
		require.NoError(t, err)
		require.True(t, raw.ReceivedAt.Equal(event.TimeOfID(q.raw.ID)))
	})
}

func testEmptyBatch(t *testing.T, e *env) {
	require.NoError(t, e.s.WriteBatch(e.ctx, nil))
	require.NoError(t, e.s.WriteBatch(e.ctx, &store.Batch{}))
	page, err := e.s.Events(e.ctx, store.EventQuery{})
	require.NoError(t, err)
	require.Empty(t, page.Events)
	require.False(t, page.More)
}

func countEvents(t *testing.T, e *env) (events, occurrences int64) {
	t.Helper()
	bs, err := e.s.Analytics(e.ctx, store.AnalyticsQuery{GroupBy: store.BySeverity})
	require.NoError(t, err)
	for _, b := range bs {
		events += b.Count
		occurrences += b.Occurrences
	}
	return events, occurrences
}

func testReplay(t *testing.T, e *env) {
	a := mk(e.base, "web-01", event.High, "a")
	b := mk(e.base, "web-01", event.High, "b")
	folded := mk(e.base, "web-01", event.High, "a again")
	folded.raw.ProcessedEventID = a.ev.ID
	a.ev.OccurrenceCount = 2
	bt := batch(a, b)
	bt.Raw = append(bt.Raw, folded.raw)
	bt.Correlations = []event.Correlation{{
		CorrelationID: "11111111-2222-4333-8444-555555555555", Type: event.CorrelationTimeBased,
		PrimaryEventID: a.ev.ID, RelatedEventIDs: []int64{a.ev.ID, b.ev.ID}, Score: 0.5,
		Reason: "same host within 5m", CreatedAt: e.base,
	}}
	e.write(t, bt)
	e.write(t, bt) // the intake log redelivered the message after a crash

	n, occ := countEvents(t, e)
	require.Equal(t, int64(2), n)
	require.Equal(t, int64(3), occ)
	stored, err := e.s.StoredRawIDs(e.ctx, []int64{a.raw.ID, b.raw.ID, folded.raw.ID})
	require.NoError(t, err)
	require.Equal(t, map[int64]bool{a.raw.ID: true, b.raw.ID: true, folded.raw.ID: true}, stored)
	cs, err := e.s.Correlations(e.ctx, a.ev.ID)
	require.NoError(t, err)
	require.Len(t, cs, 1)
}

func testPartialReplay(t *testing.T, e *env) {
	a := mk(e.base, "web-01", event.High, "a")
	b := mk(e.base, "web-01", event.High, "b")
	c := mk(e.base, "web-02", event.Low, "c")
	e.write(t, batch(a))
	e.write(t, batch(a, b, c)) // a is stored already, b and c are new

	n, _ := countEvents(t, e)
	require.Equal(t, int64(3), n)
	for _, p := range []pair{a, b, c} {
		got, err := e.s.Event(e.ctx, p.ev.ID)
		require.NoError(t, err)
		requireEvent(t, p.ev, got)
	}
}

func testBadBatch(t *testing.T, e *env) {
	good := mk(e.base, "web-01", event.High, "good")
	bad := mk(e.base, "web-01", event.High, "bad")
	bad.ev.Data = map[string]any{"value": math.NaN()} // not encodable as JSON
	err := e.s.WriteBatch(e.ctx, batch(good, bad))
	require.Error(t, err)

	stored, err := e.s.StoredRawIDs(e.ctx, []int64{good.raw.ID, bad.raw.ID})
	require.NoError(t, err)
	require.Empty(t, stored)
	_, err = e.s.Event(e.ctx, good.ev.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testConcurrentWrites(t *testing.T, e *env) {
	const writers, batches, size = 6, 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				var ps []pair
				for i := range size {
					ps = append(ps, mk(e.base, fmt.Sprintf("host-%d-%d", w, i%7), event.Severities[i%5], "concurrent"))
				}
				errs <- e.s.WriteBatch(e.ctx, batch(ps...))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, _ := countEvents(t, e)
	require.Equal(t, int64(writers*batches*size), n)
}

func testFarTimestamps(t *testing.T, e *env) {
	cases := []struct {
		name string
		at   time.Time
	}{
		{"200 days ago", e.base.Add(-200 * 24 * time.Hour)},
		{"2 days ahead", e.base.Add(2 * 24 * time.Hour)},
		{"40 days ahead", e.base.Add(40 * 24 * time.Hour)},
		{"the seed's 2024 example", time.Date(2024, 12, 20, 10, 30, 0, 0, time.UTC)},
		{"just before midnight", time.Date(2025, 6, 30, 23, 59, 59, 999999000, time.UTC)},
	}
	var ps []pair
	for _, c := range cases {
		p := mk(e.base, "web-01", event.Medium, c.name)
		p.ev.OccurredAt = c.at
		ps = append(ps, p)
	}
	e.write(t, batch(ps...))
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.s.Event(e.ctx, ps[i].ev.ID)
			require.NoError(t, err)
			requireEvent(t, ps[i].ev, got)
			page, err := e.s.Events(e.ctx, store.EventQuery{Since: c.at, Until: c.at.Add(time.Microsecond)})
			require.NoError(t, err)
			require.Equal(t, []int64{ps[i].ev.ID}, ids(page.Events))
		})
	}
	t.Run("raw received long ago", func(t *testing.T) {
		old := mk(e.base.Add(-200*24*time.Hour), "web-01", event.Low, "old raw")
		e.write(t, batch(old))
		stored, err := e.s.StoredRawIDs(e.ctx, []int64{old.raw.ID})
		require.NoError(t, err)
		require.True(t, stored[old.raw.ID])
		raw, err := e.s.RawEvent(e.ctx, old.raw.ID)
		require.NoError(t, err)
		require.True(t, raw.ReceivedAt.Equal(old.raw.ReceivedAt))
	})
}

func testLongValues(t *testing.T, e *env) {
	p := mk(e.base, "web-01", event.High, strings.Repeat("t", 600))
	p.ev.Tags = []string{strings.Repeat("x", 60), strings.Repeat("é", 51), "short", strings.Repeat("界", 50)}
	p.ev.EventType = strings.Repeat("e", 150)
	p.ev.SourceHost = strings.Repeat("h", 300)
	e.write(t, batch(p))
	got, err := e.s.Event(e.ctx, p.ev.ID)
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("t", 500), got.Title)
	require.Equal(t, []string{strings.Repeat("x", 50), strings.Repeat("é", 50), "short", strings.Repeat("界", 50)}, got.Tags)
	require.Equal(t, strings.Repeat("e", 100), got.EventType)
	require.Equal(t, strings.Repeat("h", 255), got.SourceHost)
}

func testUnicode(t *testing.T, e *env) {
	p := mk(e.base, "服务器-01", event.Critical, "Überhitzung im Rechenzentrum 東京 🔥")
	p.ev.Description = "ошибка диска: ÆØÅ — שגיאה"
	p.ev.SourceService = "naïve-svc"
	p.ev.Tags = []string{"ort:東京", "emoji:🔥"}
	p.ev.Data = map[string]any{"msg": "ünïcödé ✓", "κλειδί": "τιμή"}
	e.write(t, batch(p))
	got, err := e.s.Event(e.ctx, p.ev.ID)
	require.NoError(t, err)
	requireEvent(t, p.ev, got)

	t.Run("NUL and invalid UTF-8 are cleaned, not fatal", func(t *testing.T) {
		q := mk(e.base, "web-01", event.High, "nul\x00in title")
		q.ev.Description = "bad \xff byte"
		q.ev.Data = map[string]any{"k\x00": "a\x00b"}
		q.raw.Data = json.RawMessage(`{"m":"x\u0000y"}`)
		r := mk(e.base, "web-01", event.High, "raw not json")
		r.raw.Data = json.RawMessage(`<13>Nov 27 syslog line`)
		e.write(t, batch(q, r))

		got, err := e.s.Event(e.ctx, q.ev.ID)
		require.NoError(t, err)
		require.Equal(t, "nulin title", got.Title)
		require.Equal(t, "bad \uFFFD byte", got.Description)
		require.Equal(t, map[string]any{"k": "ab"}, got.Data)
		raw, err := e.s.RawEvent(e.ctx, q.raw.ID)
		require.NoError(t, err)
		require.JSONEq(t, `{"m":"xy"}`, string(raw.Data))
		raw, err = e.s.RawEvent(e.ctx, r.raw.ID)
		require.NoError(t, err)
		require.JSONEq(t, `"<13>Nov 27 syslog line"`, string(raw.Data))
	})
}

func testStoredRawIDs(t *testing.T, e *env) {
	a := mk(e.base, "web-01", event.High, "a")
	b := mk(e.base.Add(time.Second), "web-01", event.High, "b")
	limited := mk(e.base.Add(2*time.Second), "web-01", event.High, "rate limited")
	limited.raw.ProcessedEventID = 0
	limited.raw.ProcessingErrors = []string{"rate_limited"}
	unknown := idAt(e.base.Add(3 * time.Second))

	got, err := e.s.StoredRawIDs(e.ctx, []int64{a.raw.ID, b.raw.ID})
	require.NoError(t, err)
	require.Empty(t, got)

	bt := batch(a, b)
	bt.Raw = append(bt.Raw, limited.raw)
	e.write(t, bt)

	cases := []struct {
		name string
		ids  []int64
		want map[int64]bool
	}{
		{"none asked", nil, map[int64]bool{}},
		{"all stored", []int64{a.raw.ID, b.raw.ID, limited.raw.ID}, map[int64]bool{a.raw.ID: true, b.raw.ID: true, limited.raw.ID: true}},
		{"some unknown", []int64{unknown, a.raw.ID}, map[int64]bool{a.raw.ID: true}},
		{"only unknown", []int64{unknown}, map[int64]bool{}},
		{"duplicates", []int64{a.raw.ID, a.raw.ID}, map[int64]bool{a.raw.ID: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.s.StoredRawIDs(e.ctx, c.ids)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}

	raw, err := e.s.RawEvent(e.ctx, limited.raw.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"rate_limited"}, raw.ProcessingErrors)
	require.Zero(t, raw.ProcessedEventID)
	_, err = e.s.Event(e.ctx, limited.raw.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testEventOfFoldedRaw(t *testing.T, e *env) {
	kept := mk(e.base, "web-01", event.Critical, "CPU at 97%")
	repeat := mk(e.base.Add(time.Second), "web-01", event.Critical, "CPU at 98%")
	repeat.raw.ProcessedEventID = kept.ev.ID
	kept.ev.OccurrenceCount = 2
	kept.ev.LastSeenAt = repeat.raw.ReceivedAt
	bt := batch(kept)
	bt.Raw = append(bt.Raw, repeat.raw)
	e.write(t, bt)

	got, err := e.s.Event(e.ctx, repeat.raw.ID)
	require.NoError(t, err)
	requireEvent(t, kept.ev, got)

	// Folded by a later batch.
	later := mk(e.base.Add(2*time.Second), "web-01", event.Critical, "CPU at 99%")
	later.raw.ProcessedEventID = kept.ev.ID
	e.write(t, &store.Batch{
		Raw:     []event.Raw{later.raw},
		Repeats: []store.Repeat{{EventID: kept.ev.ID, OccurredAt: kept.ev.OccurredAt, OccurrenceCount: 3, LastSeenAt: later.raw.ReceivedAt}},
	})
	got, err = e.s.Event(e.ctx, later.raw.ID)
	require.NoError(t, err)
	require.Equal(t, kept.ev.ID, got.ID)
	require.Equal(t, 3, got.OccurrenceCount)
}

func testNotFound(t *testing.T, e *env) {
	id := idAt(e.base)
	_, err := e.s.Event(e.ctx, id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.RawEvent(e.ctx, id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.Correlations(e.ctx, id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.Event(e.ctx, 0)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.Event(e.ctx, -5)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.True(t, errors.Is(err, store.ErrNotFound))
}

func testRepeats(t *testing.T, e *env) {
	p := mk(e.base, "web-01", event.High, "disk full")
	p.ev.OccurredAt = e.base.Add(-3 * time.Hour) // the source's time, not the id's
	e.write(t, batch(p))

	steps := []struct {
		name       string
		repeat     store.Repeat
		wantCount  int
		wantLastAt time.Time
	}{
		{"count and last seen grow",
			store.Repeat{EventID: p.ev.ID, OccurredAt: p.ev.OccurredAt, OccurrenceCount: 3, LastSeenAt: e.base.Add(time.Minute)},
			3, e.base.Add(time.Minute)},
		{"a wrong OccurredAt still finds the event",
			store.Repeat{EventID: p.ev.ID, OccurredAt: e.base.Add(-72 * time.Hour), OccurrenceCount: 4, LastSeenAt: e.base.Add(2 * time.Minute)},
			4, e.base.Add(2 * time.Minute)},
		{"an older repeat does not go back",
			store.Repeat{EventID: p.ev.ID, OccurredAt: p.ev.OccurredAt, OccurrenceCount: 2, LastSeenAt: e.base},
			4, e.base.Add(2 * time.Minute)},
		{"a repeat of a missing event is ignored",
			store.Repeat{EventID: idAt(e.base), OccurredAt: e.base, OccurrenceCount: 9, LastSeenAt: e.base},
			4, e.base.Add(2 * time.Minute)},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.write(t, &store.Batch{Repeats: []store.Repeat{s.repeat}})
			got, err := e.s.Event(e.ctx, p.ev.ID)
			require.NoError(t, err)
			require.Equal(t, s.wantCount, got.OccurrenceCount)
			require.True(t, s.wantLastAt.Equal(got.LastSeenAt), "last seen %v, want %v", got.LastSeenAt, s.wantLastAt)
		})
	}
}
