package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
)

// Reader reads the log in append order: all Verify needs.
type Reader interface {
	// AuditRecords returns at most limit records whose Seq is greater
	// than after, in Seq order, exactly as stored.
	AuditRecords(ctx context.Context, after int64, limit int) ([]Record, error)
}

// Store is where a Log keeps its records; store.Store (SQLite and
// PostgreSQL) implements it. Implementations are safe for concurrent use
// and store every field exactly as given: a store that cleaned or
// reformatted a value would break its hash.
type Store interface {
	Reader
	// AppendAudit appends one record in one transaction: it reads the
	// newest record (nil when the log is empty), calls build with it and
	// inserts the record build returns, whose Seq must follow the
	// newest one's (1 for the first). It is safe across processes that
	// share the database: PostgreSQL serializes appends with an advisory
	// lock, SQLite has one writer at a time; should another process have
	// inserted the same Seq anyway, it calls build again with the new
	// newest record. build may thus run more than once and must have no
	// other effect. An error of build is returned, wrapped, and nothing
	// is appended.
	AppendAudit(ctx context.Context, build func(last *Record) (Record, error)) (Record, error)
	// ListAudit returns the records q selects, newest (highest Seq)
	// first.
	ListAudit(ctx context.Context, q Query) ([]Record, error)
}

// Query selects records for Store.ListAudit. Zero fields do not filter.
type Query struct {
	// Since and Until keep the records appended at or after Since and
	// before Until.
	Since, Until time.Time
	Action       Action
	Actor        string
	// Subject keeps the records whose subject is Subject or starts with
	// Subject followed by "/": "execution:7" selects
	// "execution:7/step:restart" too, not "execution:70".
	Subject string
	// Before keeps the records whose Seq is less than it.
	Before int64
	// Limit bounds the answer: 1..MaxLimit+1, 0 means DefaultLimit.
	Limit int
}

// Bounds of a listing.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Options configures New. Store and Key are required; the zero value of
// every other field is a safe default.
type Options struct {
	// Store keeps the records.
	Store Store
	// Key authenticates them (LoadKey, LoadOrCreateKey).
	Key Key
	// Now is the clock that stamps records; nil means time.Now.
	Now func() time.Time
	// Logger receives the failures to append (never a record's
	// parameters, never the key); nil discards them.
	Logger *slog.Logger
	// Registerer receives reflex_audit_records_total{action} and
	// reflex_audit_append_failures_total; nil means do not register.
	Registerer prometheus.Registerer
}

// Log is the audit log: it appends records, chained and authenticated,
// lists them and verifies them. It is safe for concurrent use; appends
// are serialized.
type Log struct {
	store Store
	key   Key
	now   func() time.Time
	log   *slog.Logger
	sem   chan struct{} // one append at a time, abandoned with its ctx

	records  *prometheus.CounterVec
	failures prometheus.Counter
}

// New returns the log kept in o.Store under o.Key.
func New(o Options) (*Log, error) {
	if o.Store == nil {
		return nil, errors.New("audit: Options.Store is required")
	}
	if !o.Key.Valid() {
		return nil, errors.New("audit: Options.Key is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		store: o.Store,
		key:   o.Key,
		now:   o.Now,
		log:   o.Logger.With("component", "audit"),
		sem:   make(chan struct{}, 1),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_audit_records_total",
			Help: "Records appended to the audit log, by action (\"other\" for an action that is not one of reflex's).",
		}, []string{"action"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_audit_append_failures_total",
			Help: "Appends to the audit log that failed; the action they recorded was refused.",
		}),
	}
	if err := promutil.Register(o.Registerer, &l.records); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := promutil.Register(o.Registerer, &l.failures); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return l, nil
}

// KeyID is the ID of the log's key.
func (l *Log) KeyID() string { return l.key.ID() }

// Append records e and returns the record as stored. Appends are
// serialized, in this process and, through the store, across processes
// sharing a database. When it returns an error nothing was recorded, and
// the caller must refuse the action it was about to record (fail
// closed): nothing happens that the log does not show. Errors wrap
// ErrInvalid for an entry that cannot be recorded as given and
// ErrKeyMismatch when the log's newest record was made with another key.
func (l *Log) Append(ctx context.Context, e Entry) (Record, error) {
	r, err := l.append(ctx, e)
	if err != nil {
		l.failures.Inc()
		if ctx.Err() == nil {
			l.log.Error("audit append failed; the action is refused",
				"action", cleanText(string(e.Action), MaxAction), "subject", cleanText(e.Subject, MaxSubject), "err", err)
		}
		return Record{}, err
	}
	l.records.WithLabelValues(actionLabel(r.Action)).Inc()
	return r, nil
}

func (l *Log) append(ctx context.Context, e Entry) (Record, error) {
	if !validAction(e.Action) {
		return Record{}, fmt.Errorf("%w: action %q: want 1 to %d characters a-z, 0-9 and _, starting with a letter",
			ErrInvalid, cleanText(string(e.Action), MaxAction), MaxAction)
	}
	actor := cleanText(e.Actor, MaxActor)
	if actor == "" {
		return Record{}, fmt.Errorf("%w: %s: no actor (use %q for reflex itself)", ErrInvalid, e.Action, ActorSystem)
	}
	params, err := CanonicalParameters(e.Parameters)
	if err != nil {
		return Record{}, fmt.Errorf("%w (action %s)", err, e.Action)
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return Record{}, fmt.Errorf("audit: append %s: %w", e.Action, ctx.Err())
	}
	defer func() { <-l.sem }()
	subject := cleanText(e.Subject, MaxSubject)
	r, err := l.store.AppendAudit(ctx, func(last *Record) (Record, error) {
		r := Record{
			Seq: 1, Actor: actor, Action: e.Action, Subject: subject,
			Parameters: params, KeyID: l.key.ID(), PrevHash: Genesis,
		}
		if last != nil {
			if last.KeyID != l.key.ID() {
				return Record{}, fmt.Errorf("%w: record %d was made with key %s and this process has key %s: every reflex process that shares the database needs the same audit key",
					ErrKeyMismatch, last.Seq, last.KeyID, l.key.ID())
			}
			r.Seq, r.PrevHash = last.Seq+1, last.Hash
		}
		r.Time = cleanTime(l.now())
		r.Hash = l.key.sum(r)
		return r, nil
	})
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return r, nil
}

func actionLabel(a Action) string {
	if a.Known() {
		return string(a)
	}
	return "other"
}

// ErrBadFilter is the error of List for a Filter that cannot be used (a
// cursor that List did not make, Until before Since, a bad action).
var ErrBadFilter = errors.New("audit: bad filter")

// Filter selects records for List, for GET /api/v1/audit. Zero fields do
// not filter.
type Filter struct {
	// Since and Until keep the records appended at or after Since and
	// before Until.
	Since, Until time.Time
	// Action keeps the records of this action.
	Action Action
	// Actor keeps the records of this actor.
	Actor string
	// Subject keeps the records whose subject is Subject or starts with
	// Subject followed by "/" ("execution:7" selects its steps too).
	Subject string
	// Limit bounds the page: 1..MaxLimit, 0 means DefaultLimit.
	Limit int
	// Cursor continues a listing: the Next of the page before.
	Cursor string
}

// Page is one page of List, newest first. Next, when not empty, is the
// Cursor of the following page.
type Page struct {
	Records []Record `json:"records"`
	Next    string   `json:"next_cursor,omitempty"`
}

// List returns the records f selects, newest first, one page at a time.
// A record whose stored parameters are not JSON (the database was
// written by hand) is shown with them as a JSON string, so that a page
// always encodes; Verify reports such a record.
func (l *Log) List(ctx context.Context, f Filter) (Page, error) {
	q := Query{Since: f.Since, Until: f.Until, Action: f.Action, Actor: f.Actor, Subject: f.Subject}
	if f.Action != "" && !validAction(f.Action) {
		return Page{}, fmt.Errorf("%w: action %q", ErrBadFilter, cleanText(string(f.Action), MaxAction))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return Page{}, fmt.Errorf("%w: until is before since", ErrBadFilter)
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || seq < 1 {
			return Page{}, fmt.Errorf("%w: cursor %q", ErrBadFilter, cleanText(f.Cursor, 40))
		}
		q.Before = seq
	}
	size := f.Limit
	switch {
	case size <= 0:
		size = DefaultLimit
	case size > MaxLimit:
		size = MaxLimit
	}
	q.Limit = size + 1
	rs, err := l.store.ListAudit(ctx, q)
	if err != nil {
		return Page{}, fmt.Errorf("audit: list: %w", err)
	}
	p := Page{Records: rs}
	if len(rs) > size {
		p.Records = rs[:size]
		p.Next = strconv.FormatInt(rs[size-1].Seq, 10)
	}
	for i := range p.Records {
		if !json.Valid(p.Records[i].Parameters) {
			b, _ := json.Marshal(strings.ToValidUTF8(string(p.Records[i].Parameters), "\uFFFD"))
			p.Records[i].Parameters = b
		}
	}
	return p, nil
}

// Head is the newest record of a log: its Seq and Hash. Noted outside
// the database (a ticket, a log shipped elsewhere, a printout) and given
// to Verify later, it shows whether the records up to it are all still
// there: Verify alone cannot tell that the newest records were removed.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// String is "seq:hash", the form ParseHead reads.
func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// ParseHead reads a Head written by String.
func ParseHead(s string) (Head, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 || !isHash(hash) {
		return Head{}, fmt.Errorf("audit: head %q: want SEQ:HASH (a record number and 64 hex digits)", cleanText(s, 100))
	}
	return Head{Seq: n, Hash: strings.ToLower(hash)}, nil
}

func isHash(s string) bool {
	if len(s) != len(Genesis) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// Head returns the log's newest record's Seq and Hash; for an empty log,
// Seq 0 and Genesis.
func (l *Log) Head(ctx context.Context) (Head, error) {
	rs, err := l.store.ListAudit(ctx, Query{Limit: 1})
	if err != nil {
		return Head{}, fmt.Errorf("audit: head: %w", err)
	}
	if len(rs) == 0 {
		return Head{Hash: Genesis}, nil
	}
	return Head{Seq: rs[0].Seq, Hash: rs[0].Hash}, nil
}

// Verify verifies the whole log with its own key (see the function
// Verify).
func (l *Log) Verify(ctx context.Context, noted ...Head) (Report, error) {
	return Verify(ctx, l.store, l.key, noted...)
}
