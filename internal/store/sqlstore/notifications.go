package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/store"
)

// The tables of the notification router, in the notify schema.
const (
	PolicyTable       = "notification_policy"
	SilenceTable      = "silences"
	NotificationTable = "notifications"
)

const (
	silenceSelect      = `id, matchers, starts_at, ends_at, created_by, comment`
	notificationSelect = `id, receiver, group_key, status, attempt, error, alerts, at, event_ids, rule_ids`
	// maxErrorText bounds a stored attempt's error (the router cuts it at
	// 512 bytes already).
	maxErrorText = 1024
)

func (q *Queries) policyTable() string  { return q.d.Table("notify", PolicyTable) }
func (q *Queries) silenceTable() string { return q.d.Table("notify", SilenceTable) }
func (q *Queries) notifyTable() string  { return q.d.Table("notify", NotificationTable) }
func (q *Queries) microNow() time.Time  { return store.CleanTime(q.now()).Truncate(time.Microsecond) }
func micro(t time.Time) time.Time       { return store.CleanTime(t).Truncate(time.Microsecond) }

// PutPolicy stores the policy document, replacing the stored one.
func (q *Queries) PutPolicy(ctx context.Context, p store.StoredPolicy) error {
	if len(p.Document) == 0 {
		return fmt.Errorf("%s: put policy: empty document", q.d.Name)
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = q.now()
	}
	_, err := q.w.Exec(ctx, q.d.Rebind(`INSERT INTO `+q.policyTable()+` (id, document, media_type, updated_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET document = excluded.document, media_type = excluded.media_type, updated_at = excluded.updated_at`),
		p.Document, store.CleanText(p.MediaType, 0), q.d.Time(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("%s: put policy: %w", q.d.Name, err)
	}
	return nil
}

// Policy returns the stored policy document.
func (q *Queries) Policy(ctx context.Context) (store.StoredPolicy, error) {
	var (
		p       store.StoredPolicy
		updated time.Time
	)
	err := q.r.QueryRow(ctx, `SELECT document, media_type, updated_at FROM `+q.policyTable()+` WHERE id = 1`).
		Scan(&p.Document, &p.MediaType, Time(&updated))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%s: policy: %w", q.d.Name, store.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("%s: policy: %w", q.d.Name, err)
	}
	p.UpdatedAt = updated
	return p, nil
}

// CreateSilence stores s under a new id.
func (q *Queries) CreateSilence(ctx context.Context, s notify.Silence) (notify.Silence, error) {
	if s.Matchers == nil {
		s.Matchers = map[string]any{}
	}
	doc, err := json.Marshal(s.Matchers)
	if err != nil {
		return s, fmt.Errorf("%s: create silence: matchers: %w", q.d.Name, err)
	}
	s.StartsAt, s.EndsAt = micro(s.StartsAt), micro(s.EndsAt)
	s.CreatedBy, s.Comment = store.CleanText(s.CreatedBy, 0), store.CleanText(s.Comment, 0)
	err = q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.silenceTable()+` (matchers, starts_at, ends_at, created_by, comment, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		q.d.JSON(store.CleanJSON(doc)), q.d.Time(s.StartsAt), q.d.Time(s.EndsAt), s.CreatedBy, s.Comment, q.d.Time(q.microNow())).Scan(&s.ID)
	if err != nil {
		return s, fmt.Errorf("%s: create silence: %w", q.d.Name, err)
	}
	// Read it back as a list would: matchers as JSON decodes them.
	var m map[string]any
	if err := json.Unmarshal(store.CleanJSON(doc), &m); err == nil {
		s.Matchers = m
	}
	return s, nil
}

func scanSilence(row Row) (notify.Silence, error) {
	var (
		s          notify.Silence
		doc        []byte
		start, end time.Time
	)
	if err := row.Scan(&s.ID, &doc, Time(&start), Time(&end), &s.CreatedBy, &s.Comment); err != nil {
		return s, err
	}
	if err := json.Unmarshal(doc, &s.Matchers); err != nil {
		return s, fmt.Errorf("decode matchers of silence %d: %w", s.ID, err)
	}
	s.StartsAt, s.EndsAt = start, end
	return s, nil
}

// Silence returns the silence with this id.
func (q *Queries) Silence(ctx context.Context, id int64) (notify.Silence, error) {
	return byID(ctx, q, "silence", silenceSelect, q.silenceTable(), id, scanSilence)
}

// Silences lists the silences qs selects, newest first.
func (q *Queries) Silences(ctx context.Context, qs store.SilenceQuery) ([]notify.Silence, error) {
	var w Where
	if !qs.EndsAfter.IsZero() {
		w.Add("ends_at > ?", q.d.Time(qs.EndsAfter))
	}
	if !qs.EndedBy.IsZero() {
		w.Add("ends_at <= ?", q.d.Time(qs.EndedBy))
	}
	text := `SELECT ` + silenceSelect + ` FROM ` + q.silenceTable() + w.Clause() + ` ORDER BY id DESC`
	if qs.Limit > 0 {
		text += fmt.Sprintf(" LIMIT %d", qs.Limit)
	}
	return collect(ctx, q, "silences", scanSilence, text, w.Args()...)
}

// ExpireSilence ends the silence at at, unless it ended before.
func (q *Queries) ExpireSilence(ctx context.Context, id int64, at time.Time) error {
	t := q.d.Time(micro(at))
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.silenceTable()+`
		SET ends_at = CASE WHEN ends_at > ? THEN ? ELSE ends_at END,
		    starts_at = CASE WHEN starts_at > ? THEN ? ELSE starts_at END
		WHERE id = ?`), t, t, t, t, id)
	if err != nil {
		return fmt.Errorf("%s: expire silence %d: %w", q.d.Name, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: expire silence %d: %w", q.d.Name, id, store.ErrNotFound)
	}
	return nil
}

// InsertNotification records one attempt. A zero At is set to now.
func (q *Queries) InsertNotification(ctx context.Context, a notify.Attempt) (int64, error) {
	if a.At.IsZero() {
		a.At = q.now()
	}
	events, rules := a.EventIDs, a.RuleIDs
	if events == nil {
		events = []int64{}
	}
	if rules == nil {
		rules = []int64{}
	}
	var id int64
	err := q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.notifyTable()+` (receiver, group_key, status, attempt, error, alerts, at, event_ids, rule_ids)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		store.CleanText(a.Receiver, 0), store.CleanText(a.GroupKey, 0), store.CleanText(a.Status, 0), a.Attempt,
		store.CleanText(a.Error, maxErrorText), a.Alerts, q.d.Time(a.At), q.d.Ints(events), q.d.Ints(rules)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("%s: insert notification: %w", q.d.Name, err)
	}
	return id, nil
}

func (q *Queries) scanNotification(row Row) (store.NotificationRecord, error) {
	var (
		r   store.NotificationRecord
		at  time.Time
		bad error
	)
	if err := row.Scan(&r.ID, &r.Receiver, &r.GroupKey, &r.Status, &r.Attempt.Attempt, &r.Error, &r.Alerts, Time(&at),
		q.d.IntsDest(&r.EventIDs, &bad), q.d.IntsDest(&r.RuleIDs, &bad)); err != nil {
		return r, err
	}
	if bad != nil {
		return r, fmt.Errorf("decode ids of notification %d: %w", r.ID, bad)
	}
	if r.EventIDs == nil {
		r.EventIDs = []int64{}
	}
	if r.RuleIDs == nil {
		r.RuleIDs = []int64{}
	}
	r.At = at
	return r, nil
}

// Notifications lists the records nq selects, newest first.
func (q *Queries) Notifications(ctx context.Context, nq store.NotificationQuery) ([]store.NotificationRecord, error) {
	var w Where
	if nq.Receiver != "" {
		w.Add("receiver = ?", store.CleanText(nq.Receiver, 0))
	}
	if nq.Status != "" {
		w.Add("status = ?", store.CleanText(nq.Status, 0))
	}
	if !nq.Since.IsZero() {
		w.Add("at >= ?", q.d.Time(nq.Since))
	}
	text := `SELECT ` + notificationSelect + ` FROM ` + q.notifyTable() + w.Clause() + ` ORDER BY at DESC, id DESC`
	if nq.Limit > 0 {
		text += fmt.Sprintf(" LIMIT %d", nq.Limit)
	}
	return collect(ctx, q, "notifications", q.scanNotification, text, w.Args()...)
}

var _ store.NotificationStore = (*Queries)(nil)

// PruneNotifications deletes the records and the silences older than
// before.
func (q *Queries) PruneNotifications(ctx context.Context, before time.Time) (int64, error) {
	n, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.notifyTable()+` WHERE at < ?`), q.d.Time(before))
	if err != nil {
		return 0, fmt.Errorf("%s: prune notification records: %w", q.d.Name, err)
	}
	m, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.silenceTable()+` WHERE ends_at < ?`), q.d.Time(before))
	if err != nil {
		return n, fmt.Errorf("%s: prune silences: %w", q.d.Name, err)
	}
	return n + m, nil
}
