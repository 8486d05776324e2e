package incident

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// alert makes ev an alert of key with status st, stored as such.
func (e *env) alert(host string, at time.Duration, sev event.Severity, key string, st event.AlertStatus) event.Event {
	e.t.Helper()
	e.next += 1 << 12
	ts := t0.Add(at)
	ev := event.Event{ID: e.next, RawEventID: e.next, EventType: "HighLoad", Severity: sev, SourceSystem: "am",
		SourceType: event.SourceAlertmanager, SourceHost: host, Title: "load", OccurredAt: ts, ReceivedAt: ts, ProcessedAt: ts,
		OccurrenceCount: 1, LastSeenAt: ts, Alert: &event.Alert{Key: key, Status: st}}
	raw := event.Raw{ID: ev.ID, SourceSystem: "am", SourceType: event.SourceAlertmanager, Data: []byte(`{}`), ReceivedAt: ts, Processed: true, ProcessedEventID: ev.ID}
	require.NoError(e.t, e.store.WriteBatch(e.ctx, &store.Batch{Raw: []event.Raw{raw}, New: []event.Event{ev}}))
	return ev
}

func (e *env) status(id int64) store.IncidentStatus {
	e.t.Helper()
	in, err := e.store.Incident(e.ctx, id)
	require.NoError(e.t, err)
	return in.Status
}

func (e *env) resolvedAt(id int64) *time.Time {
	e.t.Helper()
	ev, err := e.store.Event(e.ctx, id)
	require.NoError(e.t, err)
	return ev.ResolvedAt
}

func TestResolutionResolvesItsEventAndTheIncidentOnceEveryAlertIs(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	db := e.alert("db-01", 0, event.Critical, "fp-db", event.AlertFiring)
	app := e.alert("app-01", time.Second, event.High, "fp-app", event.AlertFiring)
	logline := e.ev("app-01", 2*time.Second, event.High, "app_error", "errors") // not an alert
	e.handle(db, app, logline)
	require.Equal(t, db.ID, e.incidentOf(app.ID))
	require.Nil(t, e.resolvedAt(db.ID), "firing")

	// One of two alerts resolves: its event is resolved, the incident stays open.
	r1 := e.alert("db-01", time.Minute, event.Info, "fp-db", event.AlertResolved)
	e.handle(r1)
	require.NotNil(t, e.resolvedAt(db.ID))
	require.Equal(t, t0.Add(time.Minute), e.resolvedAt(db.ID).UTC())
	require.Nil(t, e.resolvedAt(app.ID))
	require.Equal(t, store.IncidentOpen, e.status(db.ID))
	require.Zero(t, e.incidentOf(r1.ID), "a resolution joins no incident")

	// Across a restart, the last one resolves it.
	e.restart()
	r2 := e.alert("app-01", 2*time.Minute, event.Info, "fp-app", event.AlertResolved)
	e.handle(r2)
	require.NotNil(t, e.resolvedAt(app.ID))
	require.Equal(t, store.IncidentResolved, e.status(db.ID))
	require.Zero(t, e.eng.Open())

	// Redelivered, nothing changes; a resolution of an unknown alert is harmless.
	e.handle(db, app, r1, r2, e.alert("x-01", 3*time.Minute, event.Info, "nope", event.AlertResolved))
	require.Len(t, e.incidents(), 1)
	require.Equal(t, t0.Add(time.Minute), e.resolvedAt(db.ID).UTC(), "a redelivered firing does not reopen a resolved alert")

	// A new episode of the alert fires again: a new event, firing, in a new incident.
	again := e.alert("db-01", 5*time.Minute, event.Critical, "fp-db", event.AlertFiring)
	e.handle(again)
	require.Nil(t, e.resolvedAt(again.ID))
	require.Equal(t, again.ID, e.incidentOf(again.ID))
	require.Equal(t, store.IncidentOpen, e.status(again.ID))
}

func TestIncidentsWithoutAlertsIgnoreResolutions(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	db := e.ev("db-01", 0, event.Critical, "db_down", "down")
	e.handle(db)
	e.handle(e.alert("db-01", time.Second, event.Info, "fp-db", event.AlertResolved))
	require.Equal(t, store.IncidentOpen, e.status(db.ID))
}
