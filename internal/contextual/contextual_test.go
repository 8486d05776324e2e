package contextual

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/calendar"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(context.Background()))
	return st
}

var seq atomic.Int64

// write stores events of host: one per time, of event type typ.
func write(t *testing.T, st store.Store, host, typ string, times ...time.Time) []int64 {
	t.Helper()
	b := &store.Batch{}
	var ids []int64
	for _, at := range times {
		at = at.UTC().Truncate(time.Microsecond)
		id := event.IDAt(at) + seq.Add(1)%4096
		ids = append(ids, id)
		b.Raw = append(b.Raw, event.Raw{ID: id, SourceSystem: "ci", SourceType: event.SourceWebhook, Data: []byte(`{}`), ReceivedAt: at, Processed: true, ProcessedEventID: id})
		b.New = append(b.New, event.Event{
			ID: id, RawEventID: id, EventType: typ, Severity: event.Info, SourceSystem: "ci", SourceType: event.SourceWebhook,
			SourceHost: host, SourceService: "api", Title: typ + " on " + host, OccurredAt: at, ReceivedAt: at, ProcessedAt: at,
			OccurrenceCount: 1, LastSeenAt: at,
		})
	}
	require.NoError(t, st.WriteBatch(context.Background(), b))
	return ids
}

type inventory map[string]store.Asset

func (i inventory) Get(h string) (store.Asset, bool) { a, ok := i[h]; return a, ok }

func TestContext(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	// Friday 2026-12-04 10:00 in Paris.
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	cal, err := calendar.Parse("Mon-Fri 09:00-18:00", "Europe/Paris", nil)
	require.NoError(t, err)

	require.NoError(t, st.PutAsset(ctx, store.Asset{Host: "app-01", Criticality: "high", Owner: "web", Service: "shop", Dependencies: []string{"db-01"}, Tags: []string{"env:prod"}}))
	inv := inventory{"db-01": {Host: "db-01", Service: "postgres"}}

	mk := func(m maintenance.Matchers, from, to time.Duration) maintenance.Window {
		w, err := st.CreateMaintenance(ctx, maintenance.Window{Matchers: m, StartsAt: now.Add(from), EndsAt: now.Add(to), CreatedBy: "ops"})
		require.NoError(t, err)
		return w
	}
	onTag := mk(maintenance.Matchers{"tags": maintenance.Equal("env:prod")}, -time.Hour, time.Hour)
	mk(maintenance.Matchers{"host": maintenance.Equal("app-01")}, -3*time.Hour, -2*time.Hour) // over
	soon := mk(maintenance.Matchers{"service": maintenance.Equal("shop")}, 2*time.Hour, 3*time.Hour)
	mk(maintenance.Matchers{"host": maintenance.Equal("app-01")}, 10*24*time.Hour, 11*24*time.Hour) // beyond the horizon
	mk(maintenance.Matchers{"service": maintenance.Equal("postgres")}, -time.Minute, time.Hour)     // the dependency
	mk(maintenance.Matchers{"event_type": maintenance.Equal("backup"), "host": maintenance.Equal("app-01")}, -time.Hour, time.Hour)

	changes := write(t, st, "app-01", ChangeEventType, now.Add(-30*time.Hour), now.Add(-3*time.Hour), now.Add(-time.Hour))
	write(t, st, "app-02", ChangeEventType, now.Add(-time.Hour))
	// Rate: 12 events in the last 5 minutes, 2 at this time on each of the
	// previous 7 days.
	var recent []time.Time
	for i := range 12 {
		recent = append(recent, now.Add(-time.Duration(i+1)*10*time.Second))
	}
	write(t, st, "app-01", "log", recent...)
	for k := 1; k <= 7; k++ {
		day := now.Add(-time.Duration(k) * 24 * time.Hour)
		write(t, st, "app-01", "log", day.Add(-time.Minute), day.Add(-2*time.Minute))
	}

	var asked []string
	a, err := New(Options{
		Store: st, Assets: inv, Calendar: cal,
		OpenIncidents: func(_ context.Context, hosts []string) ([]IncidentRef, error) {
			asked = hosts
			return []IncidentRef{
				{ID: 1, Title: "shop down", Status: "open", Hosts: []string{"lb-01", "APP-01"}},
				{ID: 2, Title: "db slow", Status: "acknowledged", Hosts: []string{"db-01"}},
				{ID: 3, Title: "other", Status: "open", Hosts: []string{"x"}},
			}, nil
		},
	})
	require.NoError(t, err)
	c, err := a.Context(ctx, "app-01", now)
	require.NoError(t, err)

	require.Equal(t, "app-01", c.Host)
	require.NotNil(t, c.Asset)
	require.Equal(t, "high", c.Asset.Criticality)
	require.Equal(t, []string{"db-01"}, c.Asset.Dependencies)

	require.True(t, c.BusinessHours.Configured)
	require.True(t, c.BusinessHours.Inside)
	require.Equal(t, "Europe/Paris", c.BusinessHours.Timezone)
	require.Equal(t, time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC), *c.BusinessHours.NextChange)

	require.True(t, c.Maintenance.Active)
	require.Len(t, c.Maintenance.Windows, 1, "the backup window covers only backup events")
	require.Equal(t, onTag.ID, c.Maintenance.Windows[0].ID)
	require.Len(t, c.Maintenance.Upcoming, 1)
	require.Equal(t, soon.ID, c.Maintenance.Upcoming[0].ID)
	require.Equal(t, []string{"db-01"}, c.Maintenance.DependenciesInMaintenance)

	require.Equal(t, now.Add(-24*time.Hour), c.Changes.Since)
	require.Len(t, c.Changes.Events, 2)
	require.Equal(t, changes[2], c.Changes.Events[0].EventID, "newest first")
	require.Equal(t, changes[1], c.Changes.Events[1].EventID)

	require.Equal(t, []string{"app-01", "db-01"}, asked)
	require.True(t, c.Incidents.Available)
	require.Len(t, c.Incidents.OnHost, 1)
	require.Equal(t, int64(1), c.Incidents.OnHost[0].ID)
	require.Len(t, c.Incidents.OnDependencies, 1)
	require.Equal(t, int64(2), c.Incidents.OnDependencies[0].ID)

	r := c.EventRate
	require.Equal(t, RateFromStore, r.Source)
	require.Equal(t, "5m", r.Interval)
	require.Equal(t, 12.0, r.Current)
	require.InDelta(t, 2.0, *r.Baseline, 1e-9)
	// σ = max(0, √2, 1) = √2: expected 2 ± 3√2.
	require.InDelta(t, 2+3*math.Sqrt2, r.ExpectedHigh, 1e-9)
	require.Equal(t, 0.0, r.ExpectedLow)
	require.True(t, r.Anomalous)
	require.Greater(t, r.Score, 0.99)

	// Without the inventory, the dependency's asset comes from the store.
	require.NoError(t, st.PutAsset(ctx, store.Asset{Host: "db-01", Service: "postgres"}))
	bare, err := New(Options{Store: st})
	require.NoError(t, err)
	c, err = bare.Context(ctx, "app-01", now)
	require.NoError(t, err)
	require.Equal(t, []string{"db-01"}, c.Maintenance.DependenciesInMaintenance)

	// The decision engine's question, for one event.
	ws, err := a.Maintenance(ctx, maintenance.Target{Host: "app-01", EventType: "backup"}, now)
	require.NoError(t, err)
	require.Len(t, ws, 1)
	ws, err = a.Maintenance(ctx, maintenance.Target{Host: "app-01", EventType: "log"}, now)
	require.NoError(t, err)
	require.Empty(t, ws)
}

func TestContextHooksAndUnknownHost(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

	a, err := New(Options{Store: st})
	require.NoError(t, err)
	c, err := a.Context(ctx, "ghost", now)
	require.NoError(t, err)
	require.Nil(t, c.Asset)
	require.False(t, c.BusinessHours.Configured)
	require.False(t, c.Maintenance.Active)
	require.NotNil(t, c.Maintenance.Windows)
	require.False(t, c.Incidents.Available, "no hook: not available")
	require.NotNil(t, c.Incidents.OnHost)
	require.Equal(t, RateFromStore, c.EventRate.Source)
	require.Equal(t, 0.0, c.EventRate.Current)
	require.False(t, c.EventRate.Anomalous)

	at := now.Add(-time.Second)
	a, err = New(Options{
		Store: st,
		Rate: func(host string) (RateState, bool) {
			if host != "ghost" {
				return RateState{}, false
			}
			return RateState{Interval: time.Minute, Current: 50, ExpectedLow: 1, ExpectedHigh: 10, Score: 0.97, At: at}, true
		},
		OpenIncidents: func(context.Context, []string) ([]IncidentRef, error) { return nil, errors.New("incident store down") },
	})
	require.NoError(t, err)
	c, err = a.Context(ctx, "ghost", now)
	require.NoError(t, err)
	require.Equal(t, EventRate{Source: RateFromAnomaly, Interval: "1m", Current: 50, ExpectedLow: 1, ExpectedHigh: 10, Score: 0.97, Anomalous: true, At: at}, c.EventRate)
	require.False(t, c.Incidents.Available)
	require.Contains(t, c.Incidents.Error, "incident store down")

	// A host the detector does not know falls back to the store.
	c, err = a.Context(ctx, "other", now)
	require.NoError(t, err)
	require.Equal(t, RateFromStore, c.EventRate.Source)

	_, err = a.Context(ctx, " ", now)
	require.Error(t, err)
	_, err = New(Options{})
	require.Error(t, err)
}

func TestBaselineRate(t *testing.T) {
	r := BaselineRate(10, []float64{10, 12, 8, 10, 11, 9, 10})
	require.False(t, r.Anomalous)
	require.Less(t, r.Score, 0.5)
	require.InDelta(t, 10.0, *r.Baseline, 1e-9)

	r = BaselineRate(0, []float64{100, 110, 90, 100, 105, 95, 100})
	require.True(t, r.Anomalous, "a silent host that is usually busy")
	require.Greater(t, r.ExpectedLow, 0.0)

	r = BaselineRate(0, nil)
	require.False(t, r.Anomalous)
	require.Equal(t, 0.0, r.Score)
}
