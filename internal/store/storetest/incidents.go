package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Incidents is the part of a store that RunIncidents checks: incidents
// link stored events, so it needs the events too.
type Incidents interface {
	store.Lifecycle
	store.EventStore
	store.IncidentStore
}

// RunIncidents runs the conformance suite of store.IncidentStore, as
// RunEvents.
func RunIncidents(t *testing.T, open func(t *testing.T) Incidents) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *incidentEnv)
	}{
		{"round trip", testIncidentRoundTrip},
		{"members, merges and parents", testIncidentMembers},
		{"list filters and cursor", testIncidentList},
		{"status", testIncidentStatus},
		{"prune", testIncidentPrune},
		{"alerts", testAlerts},
	} {
		t.Run("Incidents/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			tt.fn(t, &incidentEnv{env: env{s: s, ctx: ctx, base: base.Truncate(time.Microsecond)}, s: s})
		})
	}
}

type incidentEnv struct {
	env
	s Incidents
}

func (e *incidentEnv) incident(id int64, at time.Time, hosts ...string) store.Incident {
	return store.Incident{
		ID: id, CorrelationID: uuid.NewString(), Status: store.IncidentOpen, Title: "db-01: connection refused",
		CorrelationType: event.CorrelationCausal, RootEventID: id, EventCount: 1, Hosts: hosts,
		RootCauseRanking: []store.RootCandidate{{EventID: id, SourceHost: hosts[0], Score: 0.75, Reason: "upstream of 2 hosts", Signature: "type:x"}},
		OpenedAt:         at, UpdatedAt: at,
	}
}

func testIncidentRoundTrip(t *testing.T, e *incidentEnv) {
	s, ctx := e.s, e.ctx
	p := mk(e.base, "db-01", event.Critical, "down")
	e.write(t, batch(p))
	in := e.incident(p.ev.ID, e.base, "db-01", "app-01")
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Incidents: []store.Incident{in},
		Members: []store.IncidentMember{{IncidentID: in.ID, EventID: p.ev.ID, AddedAt: e.base}}}))
	got, err := s.Incident(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, in.CorrelationID, got.CorrelationID)
	require.Equal(t, in.RootCauseRanking, got.RootCauseRanking)
	require.Equal(t, in.Hosts, got.Hosts)
	require.Equal(t, event.CorrelationCausal, got.CorrelationType)
	require.True(t, in.OpenedAt.Equal(got.OpenedAt))
	require.True(t, got.AcknowledgedAt.IsZero())

	in.EventCount, in.Title = 7, "grown"
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Incidents: []store.Incident{in}}))
	got, err = s.Incident(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, 7, got.EventCount, "replaced by id")
	require.Equal(t, "grown", got.Title)

	_, err = s.Incident(ctx, in.ID+1)
	require.ErrorIs(t, err, store.ErrNotFound)

	ev, err := s.Event(ctx, p.ev.ID)
	require.NoError(t, err)
	require.Equal(t, event.NullID(in.ID), ev.IncidentID, "event reads carry the incident")
}

func testIncidentMembers(t *testing.T, e *incidentEnv) {
	s, ctx := e.s, e.ctx
	a, b, c := mk(e.base, "db-01", event.Critical, "down"), mk(e.base.Add(time.Second), "app-01", event.High, "errors"),
		mk(e.base.Add(2*time.Second), "lone", event.Info, "noise")
	e.write(t, batch(a, b, c))
	ia, ib := e.incident(a.ev.ID, e.base, "db-01"), e.incident(b.ev.ID, e.base, "app-01")
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Incidents: []store.Incident{ia, ib}, Members: []store.IncidentMember{
		{IncidentID: ia.ID, EventID: a.ev.ID}, {IncidentID: ib.ID, EventID: b.ev.ID},
	}}))
	// A second membership of an event is ignored: it stays in its first.
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Members: []store.IncidentMember{{IncidentID: ib.ID, EventID: a.ev.ID}}}))
	of, err := s.IncidentsOfEvents(ctx, []int64{a.ev.ID, b.ev.ID, c.ev.ID})
	require.NoError(t, err)
	require.Equal(t, map[int64]int64{a.ev.ID: ia.ID, b.ev.ID: ib.ID}, of)

	corr := event.Correlation{CorrelationID: ia.CorrelationID, Type: event.CorrelationCausal, PrimaryEventID: a.ev.ID,
		RelatedEventIDs: []int64{b.ev.ID}, Score: 0.8, Reason: "db-01 is upstream of app-01"}
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{
		Incidents:    []store.Incident{ia},
		Merges:       []store.IncidentMerge{{From: ib.ID, Into: ia.ID}},
		Parents:      []store.ParentLink{{EventID: b.ev.ID, OccurredAt: b.ev.OccurredAt, ParentID: a.ev.ID}},
		Correlations: []event.Correlation{corr},
	}))
	_, err = s.Incident(ctx, ib.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "merged away")
	ids, err := s.IncidentEventIDs(ctx, ia.ID, 0)
	require.NoError(t, err)
	require.ElementsMatch(t, []int64{a.ev.ID, b.ev.ID}, ids)
	one, err := s.IncidentEventIDs(ctx, ia.ID, 1)
	require.NoError(t, err)
	require.Len(t, one, 1)

	evs, err := s.EventsByID(ctx, []int64{b.ev.ID, c.ev.ID})
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, a.ev.ID, evs[0].ParentEventID, "parent link written")
	require.Equal(t, event.NullID(ia.ID), evs[0].IncidentID)
	require.Equal(t, event.NullID(0), evs[1].IncidentID, "an event in no incident")
	page, err := s.Events(ctx, store.EventQuery{Host: "app-01"})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.Equal(t, event.NullID(ia.ID), page.Events[0].IncidentID)

	rows, err := s.Correlations(ctx, a.ev.ID)
	require.NoError(t, err)
	var found bool
	for _, r := range rows {
		if r.CorrelationID == corr.CorrelationID {
			found = true
			require.Equal(t, corr.Reason, r.Reason)
			require.Equal(t, []int64{b.ev.ID}, r.RelatedEventIDs)
		}
	}
	require.True(t, found, "the incident's correlation row is listed for its primary event")
}

func testIncidentList(t *testing.T, e *incidentEnv) {
	s, ctx := e.s, e.ctx
	var all []store.Incident
	for i := range 5 {
		in := e.incident(int64(1000+i), e.base.Add(time.Duration(i)*time.Minute), []string{"db-01", "web_1", "app%1", "db-01", "x"}[i])
		if i == 3 {
			in.Status = store.IncidentResolved
			in.Hosts = append(in.Hosts, "app-02")
		}
		all = append(all, in)
	}
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Incidents: all}))

	page, err := s.ListIncidents(ctx, store.IncidentQuery{})
	require.NoError(t, err)
	require.Len(t, page.Incidents, 5)
	require.Equal(t, int64(1004), page.Incidents[0].ID, "newest opened first")
	require.False(t, page.More)

	page, err = s.ListIncidents(ctx, store.IncidentQuery{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []int64{1004, 1003}, incidentIDs(page.Incidents))
	require.True(t, page.More)
	page, err = s.ListIncidents(ctx, store.IncidentQuery{Limit: 2, CursorTime: page.NextTime, CursorID: page.NextID})
	require.NoError(t, err)
	require.Equal(t, []int64{1002, 1001}, incidentIDs(page.Incidents))

	page, err = s.ListIncidents(ctx, store.IncidentQuery{Status: []store.IncidentStatus{store.IncidentOpen}, Hosts: []string{"db-01", "app%1"}})
	require.NoError(t, err)
	require.Equal(t, []int64{1002, 1000}, incidentIDs(page.Incidents), "open ones on these hosts; no wildcard in a host")
	page, err = s.ListIncidents(ctx, store.IncidentQuery{Hosts: []string{"web_1"}})
	require.NoError(t, err)
	require.Equal(t, []int64{1001}, incidentIDs(page.Incidents))
	page, err = s.ListIncidents(ctx, store.IncidentQuery{Hosts: []string{"app-02"}})
	require.NoError(t, err)
	require.Equal(t, []int64{1003}, incidentIDs(page.Incidents))
	page, err = s.ListIncidents(ctx, store.IncidentQuery{Since: e.base.Add(3 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, []int64{1004, 1003}, incidentIDs(page.Incidents))
}

func testIncidentStatus(t *testing.T, e *incidentEnv) {
	s, ctx := e.s, e.ctx
	in := e.incident(77, e.base, "db-01")
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Incidents: []store.Incident{in}}))
	at := e.base.Add(time.Minute)
	got, err := s.SetIncidentStatus(ctx, 77, store.IncidentAcknowledged, at)
	require.NoError(t, err)
	require.Equal(t, store.IncidentAcknowledged, got.Status)
	require.True(t, at.Equal(got.AcknowledgedAt))
	got, err = s.SetIncidentStatus(ctx, 77, store.IncidentResolved, at.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, store.IncidentResolved, got.Status)
	require.True(t, at.Add(time.Minute).Equal(got.ResolvedAt))
	got, err = s.SetIncidentStatus(ctx, 77, store.IncidentOpen, at.Add(2*time.Minute))
	require.NoError(t, err)
	require.Equal(t, store.IncidentOpen, got.Status)
	require.True(t, got.ResolvedAt.IsZero(), "a reopen clears resolved_at")
	require.True(t, at.Add(2*time.Minute).Equal(got.UpdatedAt))
	_, err = s.SetIncidentStatus(ctx, 78, store.IncidentResolved, at)
	require.ErrorIs(t, err, store.ErrNotFound)

	// Many members in one write (more than one INSERT), a repeat among
	// them.
	var ms []store.IncidentMember
	for i := range 700 {
		ms = append(ms, store.IncidentMember{IncidentID: 77, EventID: int64(5000 + i), AddedAt: e.base.Add(time.Duration(i) * time.Millisecond)})
	}
	ms = append(ms, ms[0])
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Members: ms}))
	ids, err := s.IncidentEventIDs(ctx, 77, 0)
	require.NoError(t, err)
	require.Len(t, ids, 700)
	require.Equal(t, int64(5000), ids[0], "in the order added")
}

func incidentIDs(ins []store.Incident) []int64 {
	out := make([]int64, len(ins))
	for i, in := range ins {
		out[i] = in.ID
	}
	return out
}

func testIncidentPrune(t *testing.T, e *incidentEnv) {
	s, ctx := e.s, e.ctx
	old, recent, open := e.incident(1, e.base, "a"), e.incident(2, e.base, "b"), e.incident(3, e.base, "c")
	old.Status, old.ResolvedAt = store.IncidentResolved, e.base.Add(-48*time.Hour)
	recent.Status, recent.ResolvedAt = store.IncidentResolved, e.base
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Incidents: []store.Incident{old, recent, open}, Members: []store.IncidentMember{
		{IncidentID: 1, EventID: 11}, {IncidentID: 2, EventID: 12}, {IncidentID: 3, EventID: 13},
	}}))
	n, err := s.PruneIncidents(ctx, e.base.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = s.Incident(ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	of, err := s.IncidentsOfEvents(ctx, []int64{11, 12, 13})
	require.NoError(t, err)
	require.Equal(t, map[int64]int64{12: 2, 13: 3}, of, "the pruned incident's events are out of it")
}

func testAlerts(t *testing.T, e *incidentEnv) {
	s, ctx := e.s, e.ctx
	fire, other := mk(e.base, "web-01", event.High, "load high"), mk(e.base.Add(time.Second), "web-02", event.High, "load high")
	fire.ev.Alert = &event.Alert{Key: "fp-1", Status: event.AlertFiring}
	other.ev.Alert = &event.Alert{Key: "fp-2", Status: event.AlertFiring}
	e.write(t, batch(fire, other))
	resolvedAt := func(id int64) *time.Time {
		t.Helper()
		ev, err := s.Event(ctx, id)
		require.NoError(t, err)
		return ev.ResolvedAt
	}
	am := event.SourceAlertmanager
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Alerts: []store.AlertChange{
		{SourceType: am, Key: "fp-1", Status: event.AlertFiring, EventID: fire.ev.ID, At: e.base},
		{SourceType: am, Key: "fp-2", Status: event.AlertFiring, EventID: other.ev.ID, At: e.base},
	}}))
	require.Nil(t, resolvedAt(fire.ev.ID), "firing: no resolved_at")

	end := e.base.Add(time.Minute)
	res := fire.ev.ID + 1<<20
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Alerts: []store.AlertChange{
		{SourceType: am, Key: "fp-1", Status: event.AlertResolved, EventID: res, At: end},
		{SourceType: event.SourceGrafana, Key: "fp-2", Status: event.AlertResolved, EventID: res, At: end}, // another source's alert
	}}))
	require.NotNil(t, resolvedAt(fire.ev.ID))
	require.True(t, end.Equal(*resolvedAt(fire.ev.ID)))
	require.Nil(t, resolvedAt(other.ev.ID), "resolutions match by source type and key")

	// A redelivered firing (an older event id) does not reopen it.
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Alerts: []store.AlertChange{
		{SourceType: am, Key: "fp-1", Status: event.AlertFiring, EventID: fire.ev.ID, At: e.base},
	}}))
	require.NotNil(t, resolvedAt(fire.ev.ID))
	got, err := s.AlertsOfEvents(ctx, []int64{fire.ev.ID, other.ev.ID, 42})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, event.AlertResolved, got[fire.ev.ID].Status)
	require.Equal(t, res, got[fire.ev.ID].ResolvedBy)
	require.Equal(t, event.AlertFiring, got[other.ev.ID].Status)

	// A new episode (a later event) fires again.
	again := mk(e.base.Add(2*time.Minute), "web-01", event.High, "load high")
	again.ev.Alert = &event.Alert{Key: "fp-1", Status: event.AlertFiring}
	e.write(t, batch(again))
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Alerts: []store.AlertChange{
		{SourceType: am, Key: "fp-1", Status: event.AlertFiring, EventID: again.ev.ID, At: again.ev.OccurredAt},
	}}))
	require.Nil(t, resolvedAt(again.ev.ID))
	got, err = s.AlertsOfEvents(ctx, []int64{fire.ev.ID, again.ev.ID})
	require.NoError(t, err)
	require.Equal(t, map[int64]bool{again.ev.ID: true}, map[int64]bool{again.ev.ID: got[again.ev.ID].Status == event.AlertFiring})
	require.NotContains(t, got, fire.ev.ID, "the alert's current episode is the new event")

	// Retention prunes resolved alerts older than its horizon.
	require.NoError(t, s.WriteIncidents(ctx, store.IncidentWrite{Alerts: []store.AlertChange{
		{SourceType: am, Key: "fp-1", Status: event.AlertResolved, EventID: again.ev.ID + 1<<20, At: e.base.Add(-72 * time.Hour)},
	}}))
	_, err = s.PruneIncidents(ctx, e.base.Add(-24*time.Hour))
	require.NoError(t, err)
	got, err = s.AlertsOfEvents(ctx, []int64{again.ev.ID, other.ev.ID})
	require.NoError(t, err)
	require.NotContains(t, got, again.ev.ID, "resolved before the horizon: pruned")
	require.Contains(t, got, other.ev.ID, "firing and recent: kept")
}
