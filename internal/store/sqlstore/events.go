package sqlstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// The tables of the events schema.
const (
	RawTable         = "raw_events"         // PostgreSQL: partitioned by received_at
	ProcessedTable   = "processed_events"   // PostgreSQL: partitioned by occurred_at
	CorrelationTable = "event_correlations" // not partitioned
)

// Column lists, in the order Encode produces their values and the scan
// functions read them.
var (
	RawColumns = []string{"id", "source_system", "source_type", "received_at", "processed",
		"processing_errors", "processed_event_id", "raw_data"}
	ProcessedColumns = []string{"id", "raw_event_id", "event_type", "severity", "source_host",
		"source_service", "occurred_at", "processed_at", "correlation_id", "parent_event_id",
		"source_system", "source_type", "received_at", "fingerprint", "occurrence_count",
		"last_seen_at", "priority", "title", "tags", "description", "event_data"}
	CorrelationColumns = []string{"correlation_id", "correlation_type", "primary_event_id",
		"related_event_ids", "correlation_score", "correlation_reason", "created_at"}
)

// Positions of the partition keys in the rows of Encode.
const (
	RawReceivedAt       = 3 // in RawColumns
	ProcessedOccurredAt = 6 // in ProcessedColumns
)

// readExpr is how a column is selected when its stored type is not what
// the scan reads (UUID and DECIMAL in PostgreSQL); the expressions mean
// the same in SQLite.
var readExpr = map[string]string{
	"correlation_id":    "CAST(correlation_id AS TEXT)",
	"correlation_score": "CAST(correlation_score AS DOUBLE PRECISION)",
}

func selectList(cols ...string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		if e, ok := readExpr[c]; ok {
			c = e
		}
		out[i] = c
	}
	return strings.Join(out, ", ")
}

var (
	rawSelect         = selectList(RawColumns...)
	processedSelect   = selectList(ProcessedColumns...)
	correlationSelect = selectList(append([]string{"id"}, CorrelationColumns...)...)
)

// decodeError is a row that was read but whose content cannot be
// decoded: the read skips it (store.ErrUnreadable).
type decodeError struct{ err error }

func (e *decodeError) Error() string { return "decode: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func isDecode(err error) bool {
	var de *decodeError
	return errors.As(err, &de)
}

// scanEvent reads one row of processedSelect. A row that cannot be
// decoded returns a *decodeError, with ID and OccurredAt set.
func (d *Dialect) scanEvent(row Row) (event.Event, error) {
	var (
		e                                       event.Event
		rawID, parentID, prio                   *int64
		severity                                string
		host, service, desc, corr, sys, typ, fp *string
		data                                    []byte
		bad                                     error
	)
	err := row.Scan(&e.ID, &rawID, &e.EventType, &severity, &host, &service, Time(&e.OccurredAt),
		Time(&e.ProcessedAt), &corr, &parentID, &sys, &typ, Time(&e.ReceivedAt), &fp,
		&e.OccurrenceCount, Time(&e.LastSeenAt), &prio, &e.Title, d.StringsDest(&e.Tags, &bad), &desc, &data)
	if err != nil {
		return e, err
	}
	e.Severity = event.Severity(severity)
	e.RawEventID, e.ParentEventID = deref(rawID), deref(parentID)
	e.SourceHost, e.SourceService, e.Description = deref(host), deref(service), deref(desc)
	e.CorrelationID, e.SourceSystem, e.SourceType = deref(corr), deref(sys), event.SourceType(deref(typ))
	e.Fingerprint = deref(fp)
	e.Priority = int(deref(prio))
	if bad != nil {
		return e, &decodeError{fmt.Errorf("tags of event %d: %w", e.ID, bad)}
	}
	if err := e.UnmarshalData(data); err != nil {
		e.Data = nil
		return e, &decodeError{err}
	}
	return e, nil
}

// scanRaw reads one row of rawSelect.
func (d *Dialect) scanRaw(row Row) (event.Raw, error) {
	var (
		r         event.Raw
		typ       string
		processed *bool
		pid       *int64
		data      []byte
		bad       error
	)
	err := row.Scan(&r.ID, &r.SourceSystem, &typ, Time(&r.ReceivedAt), &processed,
		d.StringsDest(&r.ProcessingErrors, &bad), &pid, &data)
	if err != nil {
		return r, err
	}
	if bad != nil {
		return r, &decodeError{fmt.Errorf("processing_errors of raw event %d: %w", r.ID, bad)}
	}
	r.SourceType = event.SourceType(typ)
	r.Processed = deref(processed)
	r.ProcessedEventID = deref(pid)
	r.Data = json.RawMessage(data)
	return r, nil
}

// scanCorrelation reads one row of correlationSelect.
func (d *Dialect) scanCorrelation(row Row) (event.Correlation, error) {
	var (
		c       event.Correlation
		typ     string
		primary *int64
		score   *float64
		reason  *string
		bad     error
	)
	err := row.Scan(&c.ID, &c.CorrelationID, &typ, &primary, d.IntsDest(&c.RelatedEventIDs, &bad),
		&score, &reason, Time(&c.CreatedAt))
	if err != nil {
		return c, err
	}
	if bad != nil {
		return c, &decodeError{fmt.Errorf("related_event_ids of correlation %d: %w", c.ID, bad)}
	}
	c.Type = event.CorrelationType(typ)
	c.PrimaryEventID, c.Score, c.Reason = deref(primary), deref(score), deref(reason)
	return c, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Encoded is a batch encoded as column values of the dialect, once, outside
// any transaction; a store's writer (and its retries) only send them.
type Encoded struct {
	Raw          [][]any // RawColumns
	Processed    [][]any // ProcessedColumns
	Repeats      [][]any // the arguments of RepeatSQL(located=true)
	Correlations [][]any // CorrelationColumns
}

// Size is the number of rows.
func (r *Encoded) Size() int {
	return len(r.Raw) + len(r.Processed) + len(r.Repeats) + len(r.Correlations)
}

// Encode cleans the values of b (store.Clean*) and encodes them for d.
// now stamps rows whose processing or creation time is unset. Repeats and
// correlations are sorted by key, so that concurrent batches lock rows in
// one order.
func Encode(d *Dialect, b *store.Batch, now time.Time) (*Encoded, error) {
	r := &Encoded{Raw: make([][]any, len(b.Raw)), Processed: make([][]any, len(b.New))}
	for i := range b.Raw {
		e := &b.Raw[i]
		recv := e.ReceivedAt
		if recv.IsZero() {
			recv = event.TimeOfID(e.ID)
		}
		r.Raw[i] = []any{e.ID, store.CleanText(e.SourceSystem, store.MaxSourceSystem),
			store.CleanText(string(e.SourceType), store.MaxSourceType), d.Time(recv), e.Processed,
			d.NullStrings(e.ProcessingErrors, 0), nullID(e.ProcessedEventID), d.JSON(store.CleanJSON(e.Data))}
	}
	for i := range b.New {
		e := &b.New[i]
		data, err := b.EventData(i)
		if err != nil {
			return nil, fmt.Errorf("%s: encode event_data of event %d: %w", d.Name, e.ID, err)
		}
		if data != nil && (bytes.Contains(data, []byte(`\u0000`)) || !utf8.Valid(data)) {
			data = store.CleanJSON(data)
		}
		proc := e.ProcessedAt
		if proc.IsZero() {
			proc = now
		}
		last := e.LastSeenAt
		if last.IsZero() {
			last = e.ReceivedAt
		}
		r.Processed[i] = []any{e.ID, nullID(e.RawEventID), store.CleanText(e.EventType, store.MaxEventType),
			store.CleanText(string(e.Severity), store.MaxSeverity), nullText(e.SourceHost, store.MaxHost),
			nullText(e.SourceService, store.MaxService), d.Time(occurredAt(e)), d.Time(proc),
			correlationKey(e.CorrelationID), nullID(e.ParentEventID),
			nullText(e.SourceSystem, store.MaxSourceSystem), nullText(string(e.SourceType), store.MaxSourceType),
			d.NullTime(e.ReceivedAt), nullText(e.Fingerprint, store.MaxFingerprint),
			int64(min(max(e.OccurrenceCount, 1), 1<<31-1)), d.NullTime(last), int64(max(min(e.Priority, 32767), -32768)),
			store.CleanText(e.Title, store.MaxTitle), d.NullStrings(e.Tags, store.MaxTag), nullText(e.Description, 0),
			d.JSON(data)}
	}
	reps := slices.Clone(b.Repeats)
	slices.SortFunc(reps, func(a, b store.Repeat) int { return cmpInt64(a.EventID, b.EventID) })
	for _, rp := range reps {
		r.Repeats = append(r.Repeats, []any{int64(min(max(rp.OccurrenceCount, 1), 1<<31-1)),
			d.NullTime(rp.LastSeenAt), rp.EventID, d.Time(rp.OccurredAt)})
	}
	cs := slices.Clone(b.Correlations)
	slices.SortStableFunc(cs, func(a, b event.Correlation) int {
		return strings.Compare(store.CorrelationKey(a.CorrelationID), store.CorrelationKey(b.CorrelationID))
	})
	for _, c := range cs {
		created := c.CreatedAt
		if created.IsZero() {
			created = now
		}
		r.Correlations = append(r.Correlations, []any{correlationKey(c.CorrelationID),
			store.CleanText(string(c.Type), store.MaxCorrelationType), nullID(c.PrimaryEventID), d.Ints(c.RelatedEventIDs),
			store.CleanScore(c.Score), nullText(c.Reason, 0), d.Time(created)})
	}
	return r, nil
}

// RepeatSQL is the update of a deduplication hit, with the arguments of
// Encoded.Repeats: (count, last seen, id, occurred_at). located also matches
// occurred_at, which lets PostgreSQL look in one partition; without it
// the fourth argument is not used. Both columns only grow, so that lanes
// racing on one event keep the largest values.
func RepeatSQL(d *Dialect, located bool) string {
	q := "UPDATE " + d.Table("events", ProcessedTable) + " SET occurrence_count = " +
		d.Greatest("occurrence_count", d.Arg(1)) + ", last_seen_at = " + d.Greatest("last_seen_at", d.Arg(2)) +
		" WHERE id = " + d.Arg(3)
	if located {
		q += " AND occurred_at = " + d.Arg(4)
	}
	return q
}

// UpsertCorrelationSQL inserts a correlation row, or replaces the stored
// one of the same correlation id unless that one lists more events (a
// late batch never shrinks a group).
func UpsertCorrelationSQL(d *Dialect) string {
	t := d.Table("events", CorrelationTable)
	set := make([]string, 0, len(CorrelationColumns)-2)
	for _, c := range CorrelationColumns[1 : len(CorrelationColumns)-1] { // not the key, not created_at
		set = append(set, c+" = excluded."+c)
	}
	return d.Rebind("INSERT INTO " + t + " (" + strings.Join(CorrelationColumns, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(CorrelationColumns)), ", ") + ")" +
		" ON CONFLICT (correlation_id) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE coalesce(" + d.Len(t+".related_event_ids") + ", 0) <= coalesce(" + d.Len("excluded.related_event_ids") + ", 0)")
}

// Arg is the placeholder of the n-th argument (from 1), for a query that
// uses an argument more than once; such a query is not passed to Rebind.
func (d *Dialect) Arg(n int) string {
	if d.pg {
		return "$" + strconv.Itoa(n)
	}
	return "?" + strconv.Itoa(n)
}

// occurredAt is the stored occurred_at of e (NOT NULL, the partition key
// in PostgreSQL): an event without one takes its receipt time.
func occurredAt(e *event.Event) time.Time {
	switch {
	case !e.OccurredAt.IsZero():
		return e.OccurredAt
	case !e.ReceivedAt.IsZero():
		return e.ReceivedAt
	}
	return event.TimeOfID(e.ID)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// nullText is store.CleanText, with "" stored as NULL.
func nullText(s string, maxLen int) any {
	if s == "" {
		return nil
	}
	return store.CleanText(s, maxLen)
}

// correlationKey is store.CorrelationKey, with "" stored as NULL.
func correlationKey(s string) any {
	if s == "" {
		return nil
	}
	return store.CorrelationKey(s)
}
