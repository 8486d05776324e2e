package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
)

// Maintenance is the part of a store that RunMaintenance checks.
type Maintenance interface {
	store.Lifecycle
	store.MaintenanceStore
}

// RunMaintenance runs the conformance suite of store.MaintenanceStore, as
// RunAssets.
func RunMaintenance(t *testing.T, open func(t *testing.T) Maintenance) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *maintenanceEnv)
	}{
		{"CRUD", testMaintenanceCRUD},
		{"Query and match", testMaintenanceQuery},
		{"Prune", testMaintenancePrune},
	} {
		t.Run("Maintenance/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			tt.fn(t, &maintenanceEnv{s: s, ctx: ctx, base: base.Truncate(time.Microsecond)})
		})
	}
}

type maintenanceEnv struct {
	s    Maintenance
	ctx  context.Context
	base time.Time
}

func mustRegexp(t *testing.T, expr string) maintenance.Matcher {
	t.Helper()
	m, err := maintenance.Regexp(expr)
	require.NoError(t, err)
	return m
}

func testMaintenanceCRUD(t *testing.T, e *maintenanceEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	_, err := s.MaintenanceWindow(ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.EndMaintenance(ctx, 1, base), store.ErrNotFound)

	in := maintenance.Window{
		Matchers: maintenance.Matchers{
			"host":       mustRegexp(t, "db-[0-9]+"),
			"service":    maintenance.Equal("postgres", "pgbouncer"),
			"event_type": maintenance.Equal("backup"),
			"tags":       maintenance.Equal("env:prod"),
		},
		StartsAt: base.Add(-time.Hour), EndsAt: base.Add(time.Hour),
		CreatedBy: "ops", Comment: "upgrade to 17 \u00e9",
	}
	w, err := s.CreateMaintenance(ctx, in)
	require.NoError(t, err)
	require.NotZero(t, w.ID)
	require.False(t, w.CreatedAt.IsZero())
	got, err := s.MaintenanceWindow(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, w.ID, got.ID)
	require.True(t, in.StartsAt.Equal(got.StartsAt) && in.EndsAt.Equal(got.EndsAt), "%v %v", got.StartsAt, got.EndsAt)
	require.Equal(t, "ops", got.CreatedBy)
	require.Equal(t, in.Comment, got.Comment)
	require.True(t, w.CreatedAt.Equal(got.CreatedAt))
	require.Equal(t, "db-[0-9]+", got.Matchers["host"].Regex)
	require.Equal(t, []string{"postgres", "pgbouncer"}, got.Matchers["service"].Values)
	require.Equal(t, []string{"backup"}, got.Matchers["event_type"].Values)

	// The matchers read back work: the regex is compiled again.
	ev := maintenance.Target{Host: "DB-12", Service: "postgres", EventType: "backup", Tags: []string{"team:dba", "env:prod"}}
	require.True(t, got.Covers(ev, base))
	ev.Host = "db-x"
	require.False(t, got.Covers(ev, base))

	// Ending it now: ends_at becomes now; ending again keeps it.
	require.NoError(t, s.EndMaintenance(ctx, w.ID, base))
	got, err = s.MaintenanceWindow(ctx, w.ID)
	require.NoError(t, err)
	require.True(t, base.Equal(got.EndsAt), "%v", got.EndsAt)
	require.NoError(t, s.EndMaintenance(ctx, w.ID, base.Add(time.Minute)))
	got, err = s.MaintenanceWindow(ctx, w.ID)
	require.NoError(t, err)
	require.True(t, base.Equal(got.EndsAt), "an ended window keeps its end")

	// Ending one still to come: it starts and ends at the end.
	later, err := s.CreateMaintenance(ctx, maintenance.Window{Matchers: maintenance.Matchers{"host": maintenance.Equal("web-01")},
		StartsAt: base.Add(time.Hour), EndsAt: base.Add(2 * time.Hour)})
	require.NoError(t, err)
	require.NoError(t, s.EndMaintenance(ctx, later.ID, base))
	got, err = s.MaintenanceWindow(ctx, later.ID)
	require.NoError(t, err)
	require.True(t, base.Equal(got.StartsAt) && base.Equal(got.EndsAt))
}

func testMaintenanceQuery(t *testing.T, e *maintenanceEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	mk := func(host string, from, to time.Duration) int64 {
		w, err := s.CreateMaintenance(ctx, maintenance.Window{Matchers: maintenance.Matchers{"host": maintenance.Equal(host)},
			StartsAt: base.Add(from), EndsAt: base.Add(to)})
		require.NoError(t, err)
		return w.ID
	}
	past := mk("a", -3*time.Hour, -2*time.Hour)
	active := mk("b", -time.Hour, time.Hour)
	soon := mk("c", time.Hour, 2*time.Hour)
	edge := mk("d", 0, time.Hour)   // starts now: active
	ended := mk("e", -time.Hour, 0) // ends now: not active

	ids := func(q store.MaintenanceQuery) []int64 {
		list, err := s.MaintenanceWindows(ctx, q)
		require.NoError(t, err)
		out := []int64{}
		for _, w := range list {
			out = append(out, w.ID)
		}
		return out
	}
	require.Equal(t, []int64{past, active, ended, edge, soon}, ids(store.MaintenanceQuery{}), "by start, then id")
	require.Equal(t, []int64{active, edge}, ids(store.MaintenanceQuery{EndsAfter: base, StartsBy: base}), "in force now")
	require.Equal(t, []int64{soon}, ids(store.MaintenanceQuery{StartsAfter: base}), "upcoming")
	require.Equal(t, []int64{active, edge, soon}, ids(store.MaintenanceQuery{EndsAfter: base}), "in force or upcoming")
	require.Equal(t, []int64{past, ended}, ids(store.MaintenanceQuery{EndedBy: base}), "ended")
	require.Equal(t, []int64{past, active}, ids(store.MaintenanceQuery{Limit: 2}))
}

func testMaintenancePrune(t *testing.T, e *maintenanceEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	old, err := s.CreateMaintenance(ctx, maintenance.Window{Matchers: maintenance.Matchers{"host": maintenance.Equal("a")},
		StartsAt: base.Add(-48 * time.Hour), EndsAt: base.Add(-47 * time.Hour)})
	require.NoError(t, err)
	keep, err := s.CreateMaintenance(ctx, maintenance.Window{Matchers: maintenance.Matchers{"host": maintenance.Equal("a")},
		StartsAt: base.Add(-48 * time.Hour), EndsAt: base.Add(time.Hour)})
	require.NoError(t, err)
	n, err := s.PruneMaintenance(ctx, base.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = s.MaintenanceWindow(ctx, old.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.MaintenanceWindow(ctx, keep.ID)
	require.NoError(t, err)
}
