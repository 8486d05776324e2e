// Package sqlite is the embedded implementation of store.Store: one SQLite
// file in WAL mode, through the pure-Go driver modernc.org/sqlite (no cgo).
// Writes go through one connection, grouped into few transactions; reads
// use a pool of read-only connections that never block the writer.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"modernc.org/sqlite"

	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// Options configures Open. The zero value of every field but Path is a
// safe default.
type Options struct {
	// Path is the database file (required); its directory is created if
	// needed. The WAL and shared-memory files live beside it.
	Path string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. It stamps rows whose time is
	// unset.
	Now func() time.Time
	// Registerer receives the store's metrics
	// (reflex_store_unreadable_rows_total); nil means do not register.
	Registerer prometheus.Registerer
}

// Store is the SQLite store. It is safe for concurrent use. Its queries
// are the shared ones of sqlstore; what is its own is the single writer
// (group commit, the urgent lane), retention and migrations.
type Store struct {
	*sqlstore.Queries

	w   *sql.DB // the single writer connection
	r   *sql.DB // read-only connections
	c   *sql.DB // the checkpointer's connection
	log *slog.Logger
	now func() time.Time

	stmts   writeStmts
	queue   chan *writeReq
	urgent  chan *writeReq // batches of the critical lane
	quit    chan struct{}
	stopped chan struct{}
	ckptd   chan struct{} // closed when the checkpointer stopped
	close   sync.Once
	err     error
}

// Pragmas of every connection: WAL, commits durable before WriteBatch
// returns (synchronous=FULL: the pipeline acknowledges the intake log after
// it), waits instead of failing on a lock, no foreign keys (raw and
// processed events reference each other loosely, as in PostgreSQL where
// partitioning forbids the constraints).
const commonPragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(0)&_pragma=temp_store(memory)"

func init() {
	// reflex_icontains(haystack, lowered needle) is a Unicode-aware
	// case-insensitive substring test: SQLite's LIKE folds ASCII only.
	sqlite.MustRegisterDeterministicScalarFunction("reflex_icontains", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		h, ok := args[0].(string)
		if !ok {
			return int64(0), nil
		}
		n, _ := args[1].(string)
		if strings.Contains(strings.ToLower(h), n) {
			return int64(1), nil
		}
		return int64(0), nil
	})
}

// Open opens (creating if needed) the database at o.Path. It does not
// change the schema: call Migrate for that (it is safe at every start).
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("sqlite: Options.Path is required")
	}
	if strings.ContainsAny(o.Path, "?#") {
		return nil, fmt.Errorf("sqlite: path %q: must not contain '?' or '#'", o.Path)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if dir := filepath.Dir(o.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: create directory: %w", err)
		}
	}
	w, err := sql.Open("sqlite", o.Path+"?"+commonPragmas+
		"&_pragma=journal_mode(wal)&_pragma=synchronous(full)&_pragma=cache_size(-65536)"+
		"&_pragma=wal_autocheckpoint(16384)&_pragma=journal_size_limit(67108864)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", o.Path, err)
	}
	r, err := sql.Open("sqlite", o.Path+"?"+commonPragmas+"&_pragma=query_only(1)&_pragma=cache_size(-16384)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	c, err := sql.Open("sqlite", o.Path+"?"+commonPragmas+"&_pragma=synchronous(full)")
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	c.SetMaxOpenConns(1)
	log := o.Logger.With("component", "store", "store", "sqlite")
	q, err := sqlstore.New(sqlstore.SQLite, sqlstore.SQLDB{DB: r}, sqlstore.SQLDB{DB: w},
		sqlstore.Options{Logger: log, Registerer: o.Registerer, Now: o.Now, Begin: sqlstore.SQLBegin(w)})
	if err != nil {
		w.Close()
		r.Close()
		c.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s := &Store{
		Queries: q,
		w:       w,
		r:       r,
		c:       c,
		ckptd:   make(chan struct{}),
		log:     log,
		now:     o.Now,
		queue:   make(chan *writeReq, 64),
		urgent:  make(chan *writeReq, 64),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// checkpointInterval is how often the checkpointer copies the WAL into the
// database file.
const checkpointInterval = 250 * time.Millisecond

// checkpointer runs passive WAL checkpoints on its own connection, so that
// copying the WAL into the database file runs beside the writer instead of
// inside its commits (measured in docs/benchmarks.md). The writer keeps a
// large wal_autocheckpoint as a backstop should this fall behind.
func (s *Store) checkpointer() {
	defer close(s.ckptd)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		if _, err := s.c.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			s.log.Warn("wal checkpoint", "err", err)
		}
	}
}

// DB returns the read-only connection pool, for components that query the
// database directly.
func (s *Store) DB() *sql.DB { return s.r }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close stops the writer, waiting for the batch it is writing, and closes
// the connections. It is idempotent.
func (s *Store) Close() error {
	s.close.Do(func() {
		close(s.quit)
		<-s.stopped
		<-s.ckptd
		s.stmts.close()
		s.err = errors.Join(s.r.Close(), s.c.Close(), s.w.Close())
		if s.err != nil {
			s.err = fmt.Errorf("sqlite: close: %w", s.err)
		}
	})
	return s.err
}
