// Package storetest is the conformance suite of store.Store. Every
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openForTest(t) })
//	}
//
// It also holds the poisoned-batch test (RunPoisoned), which needs a
// trigger only the implementation's own test can install, and the
// synthetic workload of the write benchmarks.
package storetest

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; Run migrates it and closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Migrate/twice", testMigrateTwice},
		{"Close/idempotent", testCloseTwice},
		{"WriteBatch/round trip", testRoundTrip},
		{"WriteBatch/empty", testEmptyBatch},
		{"WriteBatch/replay is harmless", testReplay},
		{"WriteBatch/partial replay", testPartialReplay},
		{"WriteBatch/bad batch stores nothing", testBadBatch},
		{"WriteBatch/concurrent", testConcurrentWrites},
		{"WriteBatch/far timestamps", testFarTimestamps},
		{"WriteBatch/long values are cut", testLongValues},
		{"WriteBatch/unicode and bad text", testUnicode},
		{"StoredRawIDs", testStoredRawIDs},
		{"Event/deduplicated raw id", testEventOfFoldedRaw},
		{"Event/not found", testNotFound},
		{"Repeats", testRepeats},
		{"Correlations/insert then replace", testCorrelationReplace},
		{"Correlations/time based and causal", testCorrelationGroups},
		{"Events/filters", testEventFilters},
		{"Events/pagination with equal times", testPagination},
		{"Events/limit", testLimit},
		{"Analytics", testAnalytics},
		{"RecentEvents", testRecentEvents},
		{"Assets", testAssets},
		{"Keys", testKeys},
		{"EnforceRetention", testRetention},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newEnv(t, open(t)))
		})
	}
}

// env is one subtest's store and event factory.
type env struct {
	s    store.Store
	ctx  context.Context
	base time.Time // "now" of the test data, whole milliseconds, UTC
}

func newEnv(t *testing.T, s store.Store) *env {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.Migrate(ctx))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return &env{s: s, ctx: ctx, base: time.Now().UTC().Truncate(time.Millisecond)}
}

var idCounter atomic.Int64

// idAt returns a fresh event id whose time (event.TimeOfID) is t, as
// intake would allocate it.
func idAt(t time.Time) int64 {
	// The counter spans the node and counter bits of an id: 4,096 distinct
	// ids within the millisecond of t, all with t's receipt time.
	return event.IDAt(t) + idCounter.Add(1)%(1<<12)
}

// pair is a raw event and the processed event it became.
type pair struct {
	raw event.Raw
	ev  event.Event
}

// mk makes an event received and occurred at at, as the pipeline would
// hand it to the store. Times are in microseconds, as both stores keep.
func mk(at time.Time, host string, sev event.Severity, title string) pair {
	at = at.UTC().Truncate(time.Microsecond)
	id := idAt(at)
	data, _ := json.Marshal(map[string]any{"source": "nagios", "host": host, "severity": string(sev), "message": title})
	return pair{
		raw: event.Raw{
			ID: id, SourceSystem: "nagios", SourceType: event.SourceWebhook, Data: data,
			ReceivedAt: at, Processed: true, ProcessedEventID: id,
		},
		ev: event.Event{
			ID: id, RawEventID: id, EventType: "threshold_breach", Severity: sev,
			SourceSystem: "nagios", SourceType: event.SourceWebhook, SourceHost: host,
			SourceService: "nginx", Title: title,
			Data:       map[string]any{"metadata": map[string]any{"cpu_usage": 97.5}, "asset": map[string]any{"criticality": "high"}},
			Tags:       []string{"env:prod", "team:web"},
			OccurredAt: at, ReceivedAt: at, ProcessedAt: at.Add(time.Millisecond),
			Fingerprint: "f00dfeed", OccurrenceCount: 1, LastSeenAt: at, Priority: 50,
		},
	}
}

// batch makes a batch in which each pair's raw event became its event.
func batch(ps ...pair) *store.Batch {
	b := &store.Batch{}
	for _, p := range ps {
		b.Raw = append(b.Raw, p.raw)
		b.New = append(b.New, p.ev)
	}
	return b
}

func (e *env) write(t *testing.T, b *store.Batch) {
	t.Helper()
	require.NoError(t, e.s.WriteBatch(e.ctx, b))
}

// requireEvent checks got against want, comparing their JSON (times as
// instants in UTC, maps regardless of order).
func requireEvent(t *testing.T, want event.Event, got *event.Event) {
	t.Helper()
	require.NotNil(t, got)
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}

// ids returns the ids of events, in order.
func ids(evs []event.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func idsOf(ps ...pair) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.ev.ID
	}
	return out
}
