package incident

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// ErrTransition is a status change that the incident's state does not
// allow (acknowledging a resolved incident, reopening an open one).
var ErrTransition = errors.New("incident: status change not allowed")

// due adds to w what is due at now: the announcement of incidents whose
// GroupWait passed, the flush of announced ones that changed and whose
// GroupInterval passed (their parent links and correlation rows), and
// the resolution of quiet ones.
func (e *Engine) due(w *store.IncidentWrite, now time.Time) {
	var quiet []*state
	for _, st := range e.open {
		if now.Sub(st.seenAt) >= e.opts.ResolveAfter {
			quiet = append(quiet, st)
			continue
		}
		first := !st.announced && now.Sub(st.created) >= e.opts.GroupWait
		again := st.announced && st.changed && now.Sub(st.flushedAt) >= e.opts.GroupInterval
		if !first && !again {
			continue
		}
		if first {
			st.announced = true
			e.met.announced.Inc()
			e.log.Info("incident", "incident_id", st.row.ID, "title", st.row.Title, "events", st.row.EventCount,
				"hosts", len(st.row.Hosts), "root_event_id", st.row.RootEventID)
		}
		e.flush(st, w, now)
	}
	slices.SortFunc(quiet, func(a, b *state) int { return a.row.OpenedAt.Compare(b.row.OpenedAt) })
	for _, st := range quiet {
		if st.announced && st.changed {
			e.flush(st, w, now)
		}
		e.resolve(st, now, "timeout")
		w.Incidents = append(w.Incidents, st.row)
	}
}

// flush adds st's parent links and correlation row to w.
func (e *Engine) flush(st *state, w *store.IncidentWrite, now time.Time) {
	if len(st.ranked) == 0 {
		e.rank(st)
	}
	root := st.row.RootEventID
	related := make([]int64, 0, min(len(st.links), maxRelated))
	for _, l := range st.links {
		if l.id == root {
			continue
		}
		if len(related) < maxRelated {
			related = append(related, l.id)
		}
		if st.linked[l.id] != root {
			w.Parents = append(w.Parents, store.ParentLink{EventID: l.id, OccurredAt: l.at, ParentID: root})
			st.linked[l.id] = root
		}
	}
	score := 0.0
	if len(st.ranked) > 0 {
		score = st.ranked[0].Score
	}
	w.Correlations = append(w.Correlations, event.Correlation{
		CorrelationID: st.row.CorrelationID, Type: st.row.CorrelationType, PrimaryEventID: root,
		RelatedEventIDs: related, Score: score, Reason: reasonText(st.ranked), CreatedAt: st.row.OpenedAt,
	})
	// Written as rows of their own too, so that the incident's row and
	// its correlation agree.
	w.Incidents = append(w.Incidents, st.row)
	st.changed, st.flushedAt = false, now
}

// resolve marks st resolved, learns from it and drops it from memory.
func (e *Engine) resolve(st *state, now time.Time, reason string) {
	st.row.Status, st.row.ResolvedAt, st.row.UpdatedAt = store.IncidentResolved, now, now
	e.learn(st.row.RootCauseRanking, st.row.RootEventID)
	e.drop(st)
	e.met.resolved.WithLabelValues(reason).Inc()
}

// Tick writes what is due now (see Handle's announcements, flushes and
// resolutions). Run calls it every TickEvery.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opts.Now()
	var w store.IncidentWrite
	w.Incidents = append(w.Incidents, e.pendingResolved...)
	e.pendingResolved = nil
	e.due(&w, now)
	if w.Empty() {
		return nil
	}
	if err := e.opts.Store.WriteIncidents(ctx, w); err != nil {
		e.mu.Unlock()
		rerr := e.restore(ctx)
		e.mu.Lock()
		return fmt.Errorf("incident: %w", errors.Join(err, rerr))
	}
	e.met.open.Set(float64(len(e.open)))
	return nil
}

// Run ticks until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.opts.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("incident tick failed", "err", err)
			}
		}
	}
}

// SetStatus changes the status of incident id: acknowledged (from open),
// resolved (from open or acknowledged) or open (a reopen, from resolved).
// A reopened incident absorbs events again. It returns the incident as
// stored, store.ErrNotFound, or ErrTransition.
func (e *Engine) SetStatus(ctx context.Context, id int64, status store.IncidentStatus) (store.Incident, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opts.Now()
	row, err := e.opts.Store.Incident(ctx, id)
	if err != nil {
		return store.Incident{}, err
	}
	st := e.open[id]
	if st != nil {
		row = st.row
	}
	switch {
	case status == store.IncidentAcknowledged && row.Status != store.IncidentOpen,
		status == store.IncidentResolved && row.Status == store.IncidentResolved,
		status == store.IncidentOpen && row.Status != store.IncidentResolved:
		return row, fmt.Errorf("%w: incident %d is %s", ErrTransition, id, row.Status)
	}
	var w store.IncidentWrite
	switch status {
	case store.IncidentAcknowledged:
		row.Status, row.AcknowledgedAt, row.UpdatedAt = status, now, now
		if st != nil {
			st.row = row
		}
		w.Incidents = append(w.Incidents, row)
	case store.IncidentResolved:
		if st != nil {
			if st.changed {
				e.flush(st, &w, now)
			}
			e.resolve(st, now, "api")
			row = st.row
		} else {
			row.Status, row.ResolvedAt, row.UpdatedAt = status, now, now
			e.met.resolved.WithLabelValues("api").Inc()
		}
		w.Incidents = append(w.Incidents, row)
	case store.IncidentOpen:
		row.Status, row.ResolvedAt, row.UpdatedAt = status, time.Time{}, now
		w.Incidents = append(w.Incidents, row)
	}
	if err := e.opts.Store.WriteIncidents(ctx, w); err != nil {
		return store.Incident{}, fmt.Errorf("incident: %w", err)
	}
	if status == store.IncidentOpen {
		if err := e.hold(ctx, row, now); err != nil {
			return row, err
		}
	}
	e.met.open.Set(float64(len(e.open)))
	return row, nil
}

// hold takes the reopened incident row back into memory with its events.
func (e *Engine) hold(ctx context.Context, row store.Incident, now time.Time) error {
	ids, err := e.opts.Store.IncidentEventIDs(ctx, row.ID, e.opts.MaxEvents)
	if err != nil {
		return fmt.Errorf("incident: reopen %d: %w", row.ID, err)
	}
	evs, err := e.opts.Store.EventsByID(ctx, ids)
	if err != nil {
		return fmt.Errorf("incident: reopen %d: %w", row.ID, err)
	}
	st := e.held(row, evs, now)
	// A reopened incident absorbs events from now on, whatever their time.
	st.last = maxTime(st.last, now)
	e.index(st)
	if len(e.open) > e.opts.MaxOpen {
		e.evictQuietest(now)
	}
	return nil
}

// Open returns the number of incidents held open.
func (e *Engine) Open() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.open)
}

type metrics struct {
	opened, grouped, merged, announced prometheus.Counter
	resolved                           *prometheus.CounterVec
	open                               prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		opened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_incidents_opened_total",
			Help: "Incidents opened by the incident engine.",
		}),
		grouped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_incident_events_grouped_total",
			Help: "Events put in an incident (the one that opened it included).",
		}),
		merged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_incidents_merged_total",
			Help: "Incidents merged into an older one because an event connected them.",
		}),
		announced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_incidents_announced_total",
			Help: "Incidents announced after their group wait.",
		}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_incidents_resolved_total",
			Help: "Incidents resolved, by reason (api, timeout: no event for the resolve-after time, capacity: too many open, alerts_resolved: every alert of it resolved).",
		}, []string{"reason"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_incidents_open",
			Help: "Incidents open or acknowledged, held by the incident engine.",
		}),
	}
	for _, c := range []*prometheus.Counter{&m.opened, &m.grouped, &m.merged, &m.announced} {
		if err := promutil.Register(reg, c); err != nil {
			return m, fmt.Errorf("incident: %w", err)
		}
	}
	if err := promutil.Register(reg, &m.resolved); err != nil {
		return m, fmt.Errorf("incident: %w", err)
	}
	if err := promutil.Register(reg, &m.open); err != nil {
		return m, fmt.Errorf("incident: %w", err)
	}
	return m, nil
}
