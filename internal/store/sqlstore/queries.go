package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// Options configures New. The zero value is a safe default.
type Options struct {
	// Logger receives the logs of unreadable rows; nil discards them.
	Logger *slog.Logger
	// Registerer receives reflex_store_unreadable_rows_total; nil means
	// do not register.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now. It stamps rows whose time is
	// unset.
	Now func() time.Time
	// Begin runs fn in a write transaction, committed when fn returns nil
	// (SQLBegin for database/sql). Required by the writes that span
	// several statements (RecordFirings); nil makes them fail.
	Begin func(ctx context.Context, fn func(tx DB) error) error
}

// Queries runs the queries of every part of store.Store except the ones
// whose mechanism differs between the databases (WriteBatch,
// EnforceRetention, Migrate, Ping, Close), which each store implements
// itself. A store embeds *Queries. It is safe for concurrent use.
type Queries struct {
	d     *Dialect
	r     DB // reads
	w     DB // single-statement writes (assets, keys)
	log   *slog.Logger
	now   func() time.Time
	begin func(ctx context.Context, fn func(tx DB) error) error

	unreadable *prometheus.CounterVec
	mu         sync.Mutex
	logged     map[rowKey]struct{} // unreadable rows logged already
}

type rowKey struct {
	table string
	id    int64
}

// maxLogged bounds the set of unreadable rows remembered as logged; past
// it the set starts again (and a row may be logged once more).
const maxLogged = 4096

// New returns the queries of dialect d, reading through r and writing
// through w (which may be the same pool).
func New(d *Dialect, r, w DB, o Options) (*Queries, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	q := &Queries{
		d: d, r: r, w: w, log: o.Logger, now: o.Now, begin: o.Begin,
		unreadable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_store_unreadable_rows_total",
			Help: "Rows that a read skipped because they cannot be decoded, by table.",
		}, []string{"table"}),
		logged: map[rowKey]struct{}{},
	}
	if err := promutil.Register(o.Registerer, &q.unreadable); err != nil {
		return nil, err
	}
	return q, nil
}

// inTx runs fn with queries that read and write through one write
// transaction, committed when fn returns nil.
func (q *Queries) inTx(ctx context.Context, fn func(tx *Queries) error) error {
	if q.begin == nil {
		return fmt.Errorf("%s: this store runs no transactions (Options.Begin is nil)", q.d.Name)
	}
	return q.begin(ctx, func(tx DB) error {
		return fn(&Queries{d: q.d, r: tx, w: tx, log: q.log, now: q.now, unreadable: q.unreadable, logged: map[rowKey]struct{}{}})
	})
}

// Dialect returns the dialect of q.
func (q *Queries) Dialect() *Dialect { return q.d }

// skipped counts an unreadable row of table and logs it the first time,
// with its id only: never its data.
func (q *Queries) skipped(table string, id int64) {
	q.unreadable.WithLabelValues(table).Inc()
	k := rowKey{table, id}
	q.mu.Lock()
	_, seen := q.logged[k]
	if !seen {
		if len(q.logged) >= maxLogged {
			clear(q.logged)
		}
		q.logged[k] = struct{}{}
	}
	q.mu.Unlock()
	if !seen {
		q.log.Warn("skipped a row that cannot be decoded", "table", table, "id", id)
	}
}

var (
	_ store.AssetStore = (*Queries)(nil)
	_ store.KeyStore   = (*Queries)(nil)
)
