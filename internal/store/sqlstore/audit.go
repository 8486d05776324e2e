package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
)

// AuditTable holds the audit log, in the autonomous schema.
const AuditTable = "audit_log"

const auditSelect = `seq, recorded_at, actor, action, subject, parameters, key_id, prev_hash, hash`

func (q *Queries) auditTable() string { return q.d.Table("autonomous", AuditTable) }

// auditLockKey is the pg_advisory_xact_lock key that serializes the
// appends of every process sharing a PostgreSQL database ("reflexau" in
// ASCII).
const auditLockKey int64 = 0x7265666c65786175

// auditAttempts bounds how often AppendAudit starts again when another
// writer took the number it was about to insert.
const auditAttempts = 8

// maxAuditRead bounds one AuditRecords.
const maxAuditRead = 10000

// errAuditConflict: the number build chose was inserted meanwhile.
var errAuditConflict = errors.New("the record's number was taken meanwhile")

// AppendAudit appends the record build makes from the newest one, in one
// transaction. PostgreSQL takes a transaction advisory lock first, so
// that processes sharing the database append one at a time; SQLite's
// write transactions are exclusive already. The primary key on seq is
// the backstop: an insert of a number taken meanwhile changes nothing,
// and the append starts again with the new newest record.
func (q *Queries) AppendAudit(ctx context.Context, build func(last *audit.Record) (audit.Record, error)) (audit.Record, error) {
	for attempt := 1; ; attempt++ {
		var out audit.Record
		err := q.inTx(ctx, func(tx *Queries) error {
			if tx.d.pg {
				if _, err := tx.w.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLockKey); err != nil {
					return fmt.Errorf("lock: %w", err)
				}
			}
			last, err := tx.lastAudit(ctx)
			if err != nil {
				return err
			}
			r, err := build(last)
			if err != nil {
				return err
			}
			want := int64(1)
			if last != nil {
				want = last.Seq + 1
			}
			if r.Seq != want {
				return fmt.Errorf("record %d does not follow the newest record (%d)", r.Seq, want-1)
			}
			n, err := tx.w.Exec(ctx, tx.d.Rebind(`INSERT INTO `+tx.auditTable()+` (`+auditSelect+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`),
				r.Seq, tx.d.Time(r.Time), r.Actor, string(r.Action), r.Subject, string(r.Parameters), r.KeyID, r.PrevHash, r.Hash)
			if err != nil {
				return fmt.Errorf("insert record %d: %w", r.Seq, err)
			}
			if n == 0 {
				return errAuditConflict
			}
			out = r
			return nil
		})
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, errAuditConflict) && attempt < auditAttempts && ctx.Err() == nil:
			continue
		case errors.Is(err, errAuditConflict):
			return audit.Record{}, fmt.Errorf("%s: append audit record: %w: %w", q.d.Name, err, store.ErrConflict)
		}
		return audit.Record{}, fmt.Errorf("%s: append audit record: %w", q.d.Name, err)
	}
}

// lastAudit is the newest record, nil when there is none.
func (q *Queries) lastAudit(ctx context.Context) (*audit.Record, error) {
	r, err := scanAudit(q.r.QueryRow(ctx, `SELECT `+auditSelect+` FROM `+q.auditTable()+` ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the newest record: %w", err)
	}
	return &r, nil
}

// scanAudit reads a row of auditSelect. The fields are as stored: a time
// that is neither of the stores' encodings reads as the zero time, and
// such a record fails verification instead of failing the read.
func scanAudit(row Row) (audit.Record, error) {
	var (
		r              audit.Record
		at             any
		action, params string
	)
	if err := row.Scan(&r.Seq, &at, &r.Actor, &action, &r.Subject, &params, &r.KeyID, &r.PrevHash, &r.Hash); err != nil {
		return r, err
	}
	switch v := at.(type) {
	case int64:
		r.Time = time.UnixMicro(v).UTC()
	case time.Time:
		r.Time = v.UTC()
	}
	r.Action, r.Parameters = audit.Action(action), json.RawMessage(params)
	return r, nil
}

// AuditRecords returns at most limit records after after, in seq order.
func (q *Queries) AuditRecords(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	limit = min(max(limit, 1), maxAuditRead)
	return collect(ctx, q, "audit records", scanAudit,
		`SELECT `+auditSelect+` FROM `+q.auditTable()+` WHERE seq > ? ORDER BY seq LIMIT `+strconv.Itoa(limit), after)
}

// ListAudit returns the records aq selects, newest first.
func (q *Queries) ListAudit(ctx context.Context, aq audit.Query) ([]audit.Record, error) {
	var w Where
	if !aq.Since.IsZero() {
		w.Add("recorded_at >= ?", q.d.Time(aq.Since))
	}
	if !aq.Until.IsZero() {
		w.Add("recorded_at < ?", q.d.Time(aq.Until))
	}
	if aq.Action != "" {
		w.Add("action = ?", string(aq.Action))
	}
	if aq.Actor != "" {
		w.Add("actor = ?", aq.Actor)
	}
	if aq.Subject != "" {
		prefix := aq.Subject + "/"
		w.Add("(subject = ? OR substr(subject, 1, ?) = ?)", aq.Subject, utf8.RuneCountInString(prefix), prefix)
	}
	if aq.Before > 0 {
		w.Add("seq < ?", aq.Before)
	}
	limit := aq.Limit
	switch {
	case limit <= 0:
		limit = audit.DefaultLimit
	case limit > audit.MaxLimit+1:
		limit = audit.MaxLimit + 1
	}
	return collect(ctx, q, "audit log", scanAudit,
		`SELECT `+auditSelect+` FROM `+q.auditTable()+w.Clause()+` ORDER BY seq DESC LIMIT `+strconv.Itoa(limit), w.Args()...)
}

var _ store.AuditStore = (*Queries)(nil)
