package incident

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/enrich"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/store"
)

// memStore is an in-memory Store for the benchmark: it keeps what the
// engine needs to run (memberships), so that the engine's own cost is
// measured.
type memStore struct {
	mu      sync.Mutex
	members map[int64]int64
}

func (m *memStore) WriteIncidents(_ context.Context, w store.IncidentWrite) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range w.Members {
		if _, ok := m.members[x.EventID]; !ok {
			m.members[x.EventID] = x.IncidentID
		}
	}
	return nil
}
func (m *memStore) Incident(context.Context, int64) (store.Incident, error) {
	return store.Incident{}, store.ErrNotFound
}
func (m *memStore) ListIncidents(context.Context, store.IncidentQuery) (store.IncidentPage, error) {
	return store.IncidentPage{}, nil
}
func (m *memStore) IncidentEventIDs(context.Context, int64, int) ([]int64, error) { return nil, nil }
func (m *memStore) IncidentsOfEvents(_ context.Context, ids []int64) (map[int64]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int64]int64{}
	for _, id := range ids {
		if in, ok := m.members[id]; ok {
			out[id] = in
		}
	}
	return out, nil
}
func (m *memStore) AlertsOfEvents(context.Context, []int64) (map[int64]store.AlertState, error) {
	return map[int64]store.AlertState{}, nil
}
func (m *memStore) SetIncidentStatus(context.Context, int64, store.IncidentStatus, time.Time) (store.Incident, error) {
	return store.Incident{}, store.ErrNotFound
}
func (m *memStore) PruneIncidents(context.Context, time.Time) (int64, error) { return 0, nil }
func (m *memStore) Event(context.Context, int64) (*event.Event, error) {
	return nil, store.ErrNotFound
}
func (m *memStore) EventsByID(context.Context, []int64) ([]event.Event, error) { return nil, nil }

// BenchmarkHandle measures the engine on batches of 500 events from 2,000
// hosts in 200 clusters of 10 (a database and 9 dependents), a tenth of
// them failing (high) and the rest chatter (info): the engine's CPU per
// event, without the store.
func BenchmarkHandle(b *testing.B) {
	inv := enrich.NewInventory()
	for c := range 200 {
		db := fmt.Sprintf("db-%03d", c)
		inv.Set(store.Asset{Host: db, Criticality: "critical"})
		for i := range 9 {
			inv.Set(store.Asset{Host: fmt.Sprintf("app-%03d-%d", c, i), Dependencies: []string{db}})
		}
	}
	now := t0
	eng, err := New(context.Background(), Options{Store: &memStore{members: map[int64]int64{}}, Graph: inv, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	recs := make([]processed.Record, batch)
	evs := make([]event.Event, batch)
	id := event.IDAt(t0)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range evs {
			id += 1 << 12
			c := (n*batch + i) % 200
			host := fmt.Sprintf("db-%03d", c)
			if i%10 != 0 {
				host = fmt.Sprintf("app-%03d-%d", c, i%9)
			}
			sev := event.Info
			if i%10 < 1 || (n*batch+i)%97 == 0 {
				sev = event.High
			}
			at := t0.Add(time.Duration(n*batch+i) * 10 * time.Millisecond)
			evs[i] = event.Event{ID: id, EventType: "alert", Severity: sev, SourceHost: host, Title: "something failed", OccurredAt: at}
			recs[i] = processed.Record{Kind: processed.KindNew, RawEventID: id, EventID: id, Event: &evs[i]}
		}
		now = now.Add(time.Second)
		if err := eng.Handle(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(eng.Open()), "open")
}
