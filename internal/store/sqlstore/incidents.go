package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// The tables of the incident engine (events schema).
const (
	IncidentTable      = "incidents"
	IncidentEventTable = "incident_events"
	AlertTable         = "alerts"
)

var incidentColumns = []string{"id", "correlation_id", "status", "title", "correlation_type", "root_event_id",
	"root_cause_ranking", "event_count", "hosts", "opened_at", "updated_at", "acknowledged_at", "resolved_at"}

var incidentSelect = selectList(incidentColumns...)

// memberChunk is how many incident_events rows one INSERT writes (three
// parameters each, far below either database's limit).
const memberChunk = 300

var memberCols = []string{"event_id", "incident_id", "added_at"}

// maxIncidentTitle bounds a stored incident title.
const maxIncidentTitle = 500

func (q *Queries) incidents() string      { return q.d.Table("events", IncidentTable) }
func (q *Queries) incidentEvents() string { return q.d.Table("events", IncidentEventTable) }
func (q *Queries) alerts() string         { return q.d.Table("events", AlertTable) }

func (q *Queries) incidentArgs(in store.Incident) ([]any, error) {
	ranking := in.RootCauseRanking
	if ranking == nil {
		ranking = []store.RootCandidate{}
	}
	rb, err := json.Marshal(ranking)
	if err != nil {
		return nil, fmt.Errorf("encode ranking of incident %d: %w", in.ID, err)
	}
	hosts := make([]string, len(in.Hosts))
	for i, h := range in.Hosts {
		hosts[i] = store.CleanText(h, 0)
	}
	hb, _ := json.Marshal(hosts) // strings always encode
	typ := in.CorrelationType
	if typ == "" {
		typ = event.CorrelationTimeBased
	}
	return []any{in.ID, store.CorrelationKey(in.CorrelationID), string(in.Status), store.CleanText(in.Title, maxIncidentTitle),
		string(typ), nullID(in.RootEventID), string(store.CleanJSON(rb)), in.EventCount, string(hb),
		q.d.Time(in.OpenedAt), q.d.Time(in.UpdatedAt), q.d.NullTime(in.AcknowledgedAt), q.d.NullTime(in.ResolvedAt)}, nil
}

func (q *Queries) scanIncident(row Row) (store.Incident, error) {
	var (
		in             store.Incident
		status, typ    string
		root           *int64
		ranking, hosts string
		ackAt, resAt   time.Time
	)
	if err := row.Scan(&in.ID, &in.CorrelationID, &status, &in.Title, &typ, &root, &ranking, &in.EventCount, &hosts,
		Time(&in.OpenedAt), Time(&in.UpdatedAt), Time(&ackAt), Time(&resAt)); err != nil {
		return in, err
	}
	in.Status, in.CorrelationType, in.RootEventID = store.IncidentStatus(status), event.CorrelationType(typ), deref(root)
	in.AcknowledgedAt, in.ResolvedAt = ackAt, resAt
	if err := json.Unmarshal([]byte(ranking), &in.RootCauseRanking); err != nil {
		return in, fmt.Errorf("decode ranking of incident %d: %w", in.ID, err)
	}
	if err := json.Unmarshal([]byte(hosts), &in.Hosts); err != nil {
		return in, fmt.Errorf("decode hosts of incident %d: %w", in.ID, err)
	}
	if in.RootCauseRanking == nil {
		in.RootCauseRanking = []store.RootCandidate{}
	}
	if in.Hosts == nil {
		in.Hosts = []string{}
	}
	return in, nil
}

// WriteIncidents writes w in one transaction.
func (q *Queries) WriteIncidents(ctx context.Context, w store.IncidentWrite) error {
	if w.Empty() {
		return nil
	}
	upsert := q.d.Rebind(`INSERT INTO ` + q.incidents() + ` (` + strings.Join(incidentColumns, ", ") + `) VALUES (` +
		marks(len(incidentColumns)) + `) ON CONFLICT (id) DO UPDATE SET ` + excludedSet(incidentColumns[1:]))
	err := q.inTx(ctx, func(tx *Queries) error {
		for _, in := range w.Incidents {
			args, err := tx.incidentArgs(in)
			if err != nil {
				return err
			}
			if _, err := tx.w.Exec(ctx, upsert, args...); err != nil {
				return fmt.Errorf("incident %d: %w", in.ID, err)
			}
		}
		for start := 0; start < len(w.Members); start += memberChunk {
			chunk := w.Members[start:min(start+memberChunk, len(w.Members))]
			args := make([]any, 0, 3*len(chunk))
			for _, m := range chunk {
				at := m.AddedAt
				if at.IsZero() {
					at = tx.now()
				}
				args = append(args, m.EventID, m.IncidentID, tx.d.Time(at))
			}
			if _, err := tx.w.Exec(ctx, tx.d.ValuesSQL(tx.incidentEvents(), memberCols, len(chunk))+" ON CONFLICT (event_id) DO NOTHING", args...); err != nil {
				return fmt.Errorf("events of incidents: %w", err)
			}
		}
		for _, m := range w.Merges {
			if _, err := tx.w.Exec(ctx, tx.d.Rebind(`UPDATE `+tx.incidentEvents()+` SET incident_id = ? WHERE incident_id = ?`), m.Into, m.From); err != nil {
				return fmt.Errorf("merge incident %d into %d: %w", m.From, m.Into, err)
			}
			if _, err := tx.w.Exec(ctx, tx.d.Rebind(`DELETE FROM `+tx.incidents()+` WHERE id = ?`), m.From); err != nil {
				return fmt.Errorf("merge incident %d into %d: %w", m.From, m.Into, err)
			}
		}
		if err := tx.writeAlerts(ctx, w.Alerts); err != nil {
			return err
		}
		parent := tx.d.Rebind(`UPDATE ` + tx.table(ProcessedTable) + ` SET parent_event_id = ? WHERE id = ? AND occurred_at = ?`)
		for _, p := range w.Parents {
			if _, err := tx.w.Exec(ctx, parent, nullID(p.ParentID), p.EventID, tx.d.Time(p.OccurredAt)); err != nil {
				return fmt.Errorf("parent of event %d: %w", p.EventID, err)
			}
		}
		if len(w.Correlations) > 0 {
			up := UpsertCorrelationSQL(tx.d)
			now := tx.now()
			for _, c := range w.Correlations {
				created := c.CreatedAt
				if created.IsZero() {
					created = now
				}
				if _, err := tx.w.Exec(ctx, up, correlationKey(c.CorrelationID),
					store.CleanText(string(c.Type), store.MaxCorrelationType), nullID(c.PrimaryEventID), tx.d.Ints(c.RelatedEventIDs),
					store.CleanScore(c.Score), nullText(c.Reason, 0), tx.d.Time(created)); err != nil {
					return fmt.Errorf("correlation %s: %w", c.CorrelationID, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: write incidents: %w", q.d.Name, err)
	}
	return nil
}

// excludedSet is "c = excluded.c, ..." for cols.
func excludedSet(cols []string) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = excluded." + c
	}
	return strings.Join(set, ", ")
}

// Incident returns the incident id.
func (q *Queries) Incident(ctx context.Context, id int64) (store.Incident, error) {
	in, err := q.scanIncident(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+incidentSelect+` FROM `+q.incidents()+` WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%s: incident %d: %w", q.d.Name, id, store.ErrNotFound)
	}
	if err != nil {
		return in, fmt.Errorf("%s: incident %d: %w", q.d.Name, id, err)
	}
	return in, nil
}

// ListIncidents lists the incidents iq selects, newest opened first.
func (q *Queries) ListIncidents(ctx context.Context, iq store.IncidentQuery) (store.IncidentPage, error) {
	var w Where
	if len(iq.Status) > 0 {
		args := make([]any, len(iq.Status))
		for i, s := range iq.Status {
			args[i] = string(s)
		}
		w.Add("status IN ("+marks(len(args))+")", args...)
	}
	if len(iq.Hosts) > 0 {
		conds := make([]string, len(iq.Hosts))
		args := make([]any, len(iq.Hosts))
		for i, h := range iq.Hosts {
			b, _ := json.Marshal(store.CleanText(h, 0))
			conds[i] = `hosts LIKE ? ESCAPE '\'`
			args[i] = "%" + escapeLike(string(b)) + "%"
		}
		w.Add("("+strings.Join(conds, " OR ")+")", args...)
	}
	if !iq.Since.IsZero() {
		w.Add("updated_at >= ?", q.d.Time(iq.Since))
	}
	if !iq.CursorTime.IsZero() {
		ct := q.d.Time(iq.CursorTime)
		w.Add("opened_at <= ? AND (opened_at < ? OR id < ?)", ct, ct, iq.CursorID)
	}
	limit := iq.PageSize()
	rows, err := collect(ctx, q, "incidents", q.scanIncident, `SELECT `+incidentSelect+` FROM `+q.incidents()+w.Clause()+
		` ORDER BY opened_at DESC, id DESC LIMIT ?`, append(w.Args(), limit+1)...)
	if err != nil {
		return store.IncidentPage{}, err
	}
	p := store.IncidentPage{Incidents: rows}
	if len(rows) > limit {
		p.Incidents, p.More = rows[:limit], true
		last := rows[limit-1]
		p.NextTime, p.NextID = last.OpenedAt, last.ID
	}
	if p.Incidents == nil {
		p.Incidents = []store.Incident{}
	}
	return p, nil
}

// IncidentEventIDs returns the event ids of incident id, in the order
// they were added.
func (q *Queries) IncidentEventIDs(ctx context.Context, id int64, limit int) ([]int64, error) {
	text := `SELECT event_id FROM ` + q.incidentEvents() + ` WHERE incident_id = ? ORDER BY added_at, event_id`
	if limit > 0 {
		text += fmt.Sprintf(" LIMIT %d", limit)
	}
	ids, err := collect(ctx, q, "incident events", func(r Row) (int64, error) {
		var v int64
		return v, r.Scan(&v)
	}, text, id)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []int64{}
	}
	return ids, nil
}

// IncidentsOfEvents returns the incident of each of ids that is in one.
func (q *Queries) IncidentsOfEvents(ctx context.Context, ids []int64) (map[int64]int64, error) {
	out := make(map[int64]int64)
	if len(ids) == 0 {
		return out, nil
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	rs, err := q.r.Query(ctx, q.d.Rebind(`SELECT event_id, incident_id FROM `+q.incidentEvents()+` WHERE `+q.d.InList("event_id")), q.d.Ints(ids))
	if err != nil {
		return nil, fmt.Errorf("%s: incidents of events: %w", q.d.Name, err)
	}
	defer rs.Close()
	for rs.Next() {
		var ev, in int64
		if err := rs.Scan(&ev, &in); err != nil {
			return nil, fmt.Errorf("%s: incidents of events: %w", q.d.Name, err)
		}
		out[ev] = in
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: incidents of events: %w", q.d.Name, err)
	}
	return out, nil
}

// SetIncidentStatus sets the status of incident id.
func (q *Queries) SetIncidentStatus(ctx context.Context, id int64, status store.IncidentStatus, at time.Time) (store.Incident, error) {
	if !status.Valid() {
		return store.Incident{}, fmt.Errorf("%s: incident %d: unknown status %q", q.d.Name, id, status)
	}
	if at.IsZero() {
		at = q.now()
	}
	set := "status = ?, updated_at = ?"
	args := []any{string(status), q.d.Time(at)}
	switch status {
	case store.IncidentAcknowledged:
		set += ", acknowledged_at = ?"
		args = append(args, q.d.Time(at))
	case store.IncidentResolved:
		set += ", resolved_at = ?"
		args = append(args, q.d.Time(at))
	case store.IncidentOpen:
		set += ", resolved_at = NULL"
	}
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.incidents()+` SET `+set+` WHERE id = ?`), append(args, id)...)
	if err != nil {
		return store.Incident{}, fmt.Errorf("%s: set status of incident %d: %w", q.d.Name, id, err)
	}
	if n == 0 {
		return store.Incident{}, fmt.Errorf("%s: incident %d: %w", q.d.Name, id, store.ErrNotFound)
	}
	return q.Incident(ctx, id)
}

// PruneIncidents deletes the incidents resolved before before and their
// events' rows.
func (q *Queries) PruneIncidents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := q.inTx(ctx, func(tx *Queries) error {
		old := `SELECT id FROM ` + tx.incidents() + ` WHERE status = ? AND resolved_at < ?`
		args := []any{string(store.IncidentResolved), tx.d.Time(before)}
		if _, err := tx.w.Exec(ctx, tx.d.Rebind(`DELETE FROM `+tx.incidentEvents()+` WHERE incident_id IN (`+old+`)`), args...); err != nil {
			return err
		}
		// Alerts resolved before before, and alerts firing that have
		// changed nothing since (their events are gone with retention).
		if _, err := tx.w.Exec(ctx, tx.d.Rebind(`DELETE FROM `+tx.alerts()+` WHERE status = ? AND resolved_at < ? OR updated_at < ?`),
			string(event.AlertResolved), tx.d.Time(before), tx.d.Time(before)); err != nil {
			return err
		}
		var err error
		n, err = tx.w.Exec(ctx, tx.d.Rebind(`DELETE FROM `+tx.incidents()+` WHERE status = ? AND resolved_at < ?`), args...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%s: prune incidents: %w", q.d.Name, err)
	}
	return n, nil
}

// withIncidents sets IncidentID of each of es that is in an incident, and
// ResolvedAt of each that is a resolved alert.
func (q *Queries) withIncidents(ctx context.Context, es []event.Event) error {
	if len(es) == 0 {
		return nil
	}
	ids := make([]int64, len(es))
	var alerting []int64
	for i := range es {
		ids[i] = es[i].ID
		if es[i].Alert != nil && es[i].Alert.Status == event.AlertFiring {
			alerting = append(alerting, es[i].ID)
		}
	}
	of, err := q.IncidentsOfEvents(ctx, ids)
	if err != nil {
		return err
	}
	alerts, err := q.AlertsOfEvents(ctx, alerting)
	if err != nil {
		return err
	}
	for i := range es {
		es[i].IncidentID = event.NullID(of[es[i].ID])
		if a, ok := alerts[es[i].ID]; ok && a.Status == event.AlertResolved {
			at := a.ResolvedAt
			es[i].ResolvedAt = &at
		}
	}
	return nil
}

// alertColumns are the columns of events.alerts a firing writes.
var alertColumns = []string{"source_type", "alert_key", "event_id", "status", "started_at", "last_event_id", "updated_at"}

// writeAlerts applies the firings and resolutions of a batch, in order.
func (q *Queries) writeAlerts(ctx context.Context, changes []store.AlertChange) error {
	if len(changes) == 0 {
		return nil
	}
	t := q.alerts()
	fire := q.d.Rebind(`INSERT INTO ` + t + ` (` + strings.Join(alertColumns, ", ") + `) VALUES (` + marks(len(alertColumns)) + `)` +
		` ON CONFLICT (source_type, alert_key) DO UPDATE SET event_id = excluded.event_id, status = excluded.status,` +
		` started_at = excluded.started_at, resolved_at = NULL, resolved_by = NULL, last_event_id = excluded.last_event_id,` +
		` updated_at = excluded.updated_at WHERE ` + t + `.last_event_id < excluded.last_event_id`)
	resolve := q.d.Rebind(`UPDATE ` + t + ` SET status = ?, resolved_at = ?, resolved_by = ?, last_event_id = ?, updated_at = ?` +
		` WHERE source_type = ? AND alert_key = ? AND status = ? AND last_event_id < ?`)
	now := q.d.Time(q.now())
	for _, c := range changes {
		at := c.At
		if at.IsZero() {
			at = event.TimeOfID(c.EventID)
		}
		var err error
		switch c.Status {
		case event.AlertFiring:
			_, err = q.w.Exec(ctx, fire, string(c.SourceType), c.Key, c.EventID, string(event.AlertFiring), q.d.Time(at), c.EventID, now)
		case event.AlertResolved:
			_, err = q.w.Exec(ctx, resolve, string(event.AlertResolved), q.d.Time(at), c.EventID, c.EventID, now,
				string(c.SourceType), c.Key, string(event.AlertFiring), c.EventID)
		default:
			err = fmt.Errorf("unknown status %q", c.Status)
		}
		if err != nil {
			return fmt.Errorf("alert %s %q: %w", c.SourceType, c.Key, err)
		}
	}
	return nil
}

// AlertsOfEvents returns the alert whose current episode is each of ids.
func (q *Queries) AlertsOfEvents(ctx context.Context, ids []int64) (map[int64]store.AlertState, error) {
	out := make(map[int64]store.AlertState)
	if len(ids) == 0 {
		return out, nil
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	rs, err := q.r.Query(ctx, q.d.Rebind(`SELECT source_type, alert_key, event_id, status, started_at, resolved_at, resolved_by FROM `+
		q.alerts()+` WHERE `+q.d.InList("event_id")), q.d.Ints(ids))
	if err != nil {
		return nil, fmt.Errorf("%s: alerts of events: %w", q.d.Name, err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			a           store.AlertState
			typ, status string
			by          *int64
		)
		if err := rs.Scan(&typ, &a.Key, &a.EventID, &status, Time(&a.StartedAt), Time(&a.ResolvedAt), &by); err != nil {
			return nil, fmt.Errorf("%s: alerts of events: %w", q.d.Name, err)
		}
		a.SourceType, a.Status, a.ResolvedBy = event.SourceType(typ), event.AlertStatus(status), deref(by)
		out[a.EventID] = a
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: alerts of events: %w", q.d.Name, err)
	}
	return out, nil
}

var _ store.IncidentStore = (*Queries)(nil)
