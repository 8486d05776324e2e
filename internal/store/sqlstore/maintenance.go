package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
)

// MaintenanceTable holds the maintenance windows, in the events schema.
const MaintenanceTable = "maintenance_windows"

const maintenanceSelect = `id, matchers, starts_at, ends_at, created_by, comment, created_at`

func (q *Queries) maintenanceTable() string { return q.d.Table("events", MaintenanceTable) }

// CreateMaintenance stores w under a new id.
func (q *Queries) CreateMaintenance(ctx context.Context, w maintenance.Window) (maintenance.Window, error) {
	if w.Matchers == nil {
		w.Matchers = maintenance.Matchers{}
	}
	doc, err := json.Marshal(w.Matchers)
	if err != nil {
		return w, fmt.Errorf("%s: create maintenance window: matchers: %w", q.d.Name, err)
	}
	w.StartsAt, w.EndsAt, w.CreatedAt = micro(w.StartsAt), micro(w.EndsAt), q.microNow()
	w.CreatedBy, w.Comment = store.CleanText(w.CreatedBy, 0), store.CleanText(w.Comment, 0)
	err = q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.maintenanceTable()+` (matchers, starts_at, ends_at, created_by, comment, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		q.d.JSON(store.CleanJSON(doc)), q.d.Time(w.StartsAt), q.d.Time(w.EndsAt), w.CreatedBy, w.Comment, q.d.Time(w.CreatedAt)).Scan(&w.ID)
	if err != nil {
		return w, fmt.Errorf("%s: create maintenance window: %w", q.d.Name, err)
	}
	// Read the matchers back as a list would (JSON cleaned of bad text).
	var m maintenance.Matchers
	if err := json.Unmarshal(store.CleanJSON(doc), &m); err == nil {
		w.Matchers = m
	}
	return w, nil
}

func scanMaintenance(row Row) (maintenance.Window, error) {
	var (
		w                   maintenance.Window
		doc                 []byte
		start, end, created time.Time
	)
	if err := row.Scan(&w.ID, &doc, Time(&start), Time(&end), &w.CreatedBy, &w.Comment, Time(&created)); err != nil {
		return w, err
	}
	if err := json.Unmarshal(doc, &w.Matchers); err != nil {
		return w, fmt.Errorf("decode matchers of maintenance window %d: %w", w.ID, err)
	}
	w.StartsAt, w.EndsAt, w.CreatedAt = start, end, created
	return w, nil
}

// MaintenanceWindow returns the window with this id.
func (q *Queries) MaintenanceWindow(ctx context.Context, id int64) (maintenance.Window, error) {
	return byID(ctx, q, "maintenance window", maintenanceSelect, q.maintenanceTable(), id, scanMaintenance)
}

// MaintenanceWindows lists the windows mq selects, by start time, then id.
func (q *Queries) MaintenanceWindows(ctx context.Context, mq store.MaintenanceQuery) ([]maintenance.Window, error) {
	var w Where
	if !mq.EndsAfter.IsZero() {
		w.Add("ends_at > ?", q.d.Time(mq.EndsAfter))
	}
	if !mq.StartsBy.IsZero() {
		w.Add("starts_at <= ?", q.d.Time(mq.StartsBy))
	}
	if !mq.EndedBy.IsZero() {
		w.Add("ends_at <= ?", q.d.Time(mq.EndedBy))
	}
	if !mq.StartsAfter.IsZero() {
		w.Add("starts_at > ?", q.d.Time(mq.StartsAfter))
	}
	text := `SELECT ` + maintenanceSelect + ` FROM ` + q.maintenanceTable() + w.Clause() + ` ORDER BY starts_at, id`
	if mq.Limit > 0 {
		text += fmt.Sprintf(" LIMIT %d", mq.Limit)
	}
	return collect(ctx, q, "maintenance windows", scanMaintenance, text, w.Args()...)
}

// EndMaintenance ends the window at at, unless it ended before.
func (q *Queries) EndMaintenance(ctx context.Context, id int64, at time.Time) error {
	t := q.d.Time(micro(at))
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.maintenanceTable()+`
		SET ends_at = CASE WHEN ends_at > ? THEN ? ELSE ends_at END,
		    starts_at = CASE WHEN starts_at > ? THEN ? ELSE starts_at END
		WHERE id = ?`), t, t, t, t, id)
	if err != nil {
		return fmt.Errorf("%s: end maintenance window %d: %w", q.d.Name, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: end maintenance window %d: %w", q.d.Name, id, store.ErrNotFound)
	}
	return nil
}

// PruneMaintenance deletes the windows that ended before before.
func (q *Queries) PruneMaintenance(ctx context.Context, before time.Time) (int64, error) {
	n, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.maintenanceTable()+` WHERE ends_at < ?`), q.d.Time(before))
	if err != nil {
		return 0, fmt.Errorf("%s: prune maintenance windows: %w", q.d.Name, err)
	}
	return n, nil
}

var _ store.MaintenanceStore = (*Queries)(nil)
