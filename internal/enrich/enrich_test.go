package enrich

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/store"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newEvent(id int64, host string) *event.Event {
	return &event.Event{ID: id, RawEventID: id, EventType: "threshold_breach", Severity: event.High,
		SourceSystem: "prom", SourceType: event.SourceWebhook, SourceHost: host, Title: "CPU high",
		OccurredAt: t0, ReceivedAt: t0, OccurrenceCount: 1}
}

func TestEnricher(t *testing.T) {
	inv := NewInventory()
	inv.Set(store.Asset{Host: "web-01", Environment: "production", Criticality: "high", Owner: "alice",
		Team: "web", Service: "nginx", Dependencies: []string{"db-01"}, Tags: []string{"frontend", "team:web"}})
	inv.Set(store.Asset{Host: "bare"})
	inv.Set(store.Asset{Host: "longtag", Tags: []string{strings.Repeat("é", 60)}})

	full := &event.Asset{Criticality: "high", Dependencies: []string{"db-01"}, Environment: "production",
		Owner: "alice", Service: "nginx", Team: "web"}
	// event_data as the enricher wrote it when the asset was a map in Data.
	const fullJSON = `"asset":{"criticality":"high","dependencies":["db-01"],"environment":"production","owner":"alice","service":"nginx","team":"web"}`
	tests := []struct {
		name      string
		event     func() *event.Event
		wantAsset *event.Asset
		wantData  map[string]any
		// wantJSON is the event's event_data (MarshalData), "" for none.
		wantJSON string
		wantTags []string
		wantSvc  string
	}{
		{
			name:      "known host",
			event:     func() *event.Event { return newEvent(1, "web-01") },
			wantAsset: full,
			wantJSON:  `{` + fullJSON + `}`,
			wantTags:  []string{"env:production", "team:web", "criticality:high", "frontend"},
			wantSvc:   "nginx",
		},
		{
			name: "keeps the event's service and tags and data",
			event: func() *event.Event {
				e := newEvent(2, "web-01")
				e.SourceService = "php-fpm"
				e.Tags = []string{"frontend", "x"}
				e.Data = map[string]any{"cpu_usage": 97.5}
				return e
			},
			wantAsset: full,
			wantData:  map[string]any{"cpu_usage": 97.5},
			wantJSON:  `{` + fullJSON + `,"cpu_usage":97.5}`,
			wantTags:  []string{"frontend", "x", "env:production", "team:web", "criticality:high"},
			wantSvc:   "php-fpm",
		},
		{
			name:      "asset without fields",
			event:     func() *event.Event { return newEvent(3, "bare") },
			wantAsset: &event.Asset{},
			wantJSON:  `{"asset":{}}`,
		},
		{
			name:  "unknown host passes unchanged",
			event: func() *event.Event { return newEvent(4, "nowhere") },
		},
		{
			name:  "no host",
			event: func() *event.Event { return newEvent(5, "") },
		},
		{
			name:      "long tag cut to the column width",
			event:     func() *event.Event { return newEvent(6, "longtag") },
			wantAsset: &event.Asset{},
			wantJSON:  `{"asset":{}}`,
			wantTags:  []string{strings.Repeat("é", 50)},
		},
	}
	reg := prometheus.NewPedanticRegistry()
	en, err := New(inv, Options{Registerer: reg})
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event()
			b := &pipeline.Batch{Now: t0, Events: []*event.Event{e}}
			require.NoError(t, en.Process(context.Background(), b))
			require.Len(t, b.Events, 1)
			require.Equal(t, tt.wantAsset, e.Asset)
			require.Equal(t, tt.wantData, e.Data)
			data, err := e.MarshalData()
			require.NoError(t, err)
			require.Equal(t, tt.wantJSON, string(data))
			require.Equal(t, tt.wantTags, e.Tags)
			require.Equal(t, tt.wantSvc, e.SourceService)
		})
	}
	require.Equal(t, 4.0, counter(t, en.events.WithLabelValues("asset")))
	require.Equal(t, 2.0, counter(t, en.events.WithLabelValues("unknown_host")))

	// A second enricher on the same registry shares the counter.
	en2, err := New(inv, Options{Registerer: reg})
	require.NoError(t, err)
	require.Same(t, en.events, en2.events)
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func TestNewNilInventory(t *testing.T) {
	_, err := New(nil, Options{})
	require.EqualError(t, err, "enrich: new: nil inventory")
}

func TestInventory(t *testing.T) {
	inv := NewInventory()
	deps := []string{"DB-01"}
	inv.Set(store.Asset{Host: "Web-01", Criticality: "HIGH", Dependencies: deps})
	deps[0] = "changed"

	a, ok := inv.Get("web-01")
	require.True(t, ok)
	require.Equal(t, store.Asset{Host: "web-01", Criticality: "high", Dependencies: []string{"db-01"}}, a)
	_, ok = inv.Get("WEB-01")
	require.True(t, ok, "lookup ignores case")
	_, ok = inv.Get("")
	require.False(t, ok)

	inv.Delete("WEB-01")
	_, ok = inv.Get("web-01")
	require.False(t, ok)
	require.Equal(t, 0, inv.Len())
}

type lister struct {
	assets []store.Asset
	err    error
}

func (l lister) Assets(context.Context) ([]store.Asset, error) { return l.assets, l.err }

func TestInventoryLoad(t *testing.T) {
	inv := NewInventory()
	inv.Set(store.Asset{Host: "old"})
	require.NoError(t, inv.Load(context.Background(), lister{assets: []store.Asset{{Host: "A"}, {Host: "b"}}}))
	require.Equal(t, 2, inv.Len())
	_, ok := inv.Get("old")
	require.False(t, ok, "Load replaces the contents")
	_, ok = inv.Get("a")
	require.True(t, ok)

	boom := errors.New("boom")
	err := inv.Load(context.Background(), lister{err: boom})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 2, inv.Len(), "a failed Load changes nothing")
}

// TestEnricherConcurrent runs the stage on two goroutines over the same
// host while the inventory changes; run with -race.
func TestEnricherConcurrent(t *testing.T) {
	inv := NewInventory()
	en, err := New(inv, Options{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				e := newEvent(int64(g*1000+i), "web-01")
				require.NoError(t, en.Process(context.Background(), &pipeline.Batch{Now: t0, Events: []*event.Event{e}}))
				if e.Asset != nil {
					require.Equal(t, []string{"db"}, e.Asset.Dependencies)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			if i%2 == 0 {
				inv.Set(store.Asset{Host: "web-01", Team: fmt.Sprint(i), Dependencies: []string{"db"}})
			} else {
				inv.Delete("web-01")
			}
		}
	}()
	wg.Wait()
}

func TestInventoryHasDependents(t *testing.T) {
	inv := NewInventory()
	inv.Set(store.Asset{Host: "App-01", Dependencies: []string{"DB-01", "cache"}})
	inv.Set(store.Asset{Host: "app-02", Dependencies: []string{"db-01"}})
	require.True(t, inv.HasDependents("db-01"))
	require.True(t, inv.HasDependents("DB-01"), "without regard to case")
	require.False(t, inv.HasDependents("app-01"))
	inv.Set(store.Asset{Host: "app-01", Dependencies: []string{"db-01"}})
	require.False(t, inv.HasDependents("cache"), "a replaced asset no longer counts")
	inv.Delete("app-01")
	inv.Delete("app-02")
	require.False(t, inv.HasDependents("db-01"))
}
