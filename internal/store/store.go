// Package store is reflex's storage interface. Two implementations live in
// its subpackages: sqlite (the embedded default) and postgres. Both pass the
// conformance suite in storetest.
package store

import (
	"context"
	"errors"
)

// Errors returned by every Store.
var (
	// ErrNotFound: the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a row with the same unique key exists.
	ErrConflict = errors.New("store: conflict")
	// ErrUnreadable: the requested row exists but cannot be decoded (for
	// example event_data holding a number that does not fit a float64).
	// The row is kept as it is; reads that list rows skip it, report its id
	// where the answer has room for it (EventPage.Unreadable) and count it
	// in reflex_store_unreadable_rows_total. A single-row read returns this
	// error, wrapped with the row's id.
	ErrUnreadable = errors.New("store: row cannot be decoded")
)

// Store is the persistence of reflex: the union of one part per schema.
// Implementations are safe for concurrent use. The parts are declared in
// their own files (events.go, assets.go, keys.go, rules.go, notifications.go,
// maintenance.go, history.go, incidents.go, actions.go, audit.go); a new schema adds a file
// with its interface, its SQL (internal/store/sqlstore) and its conformance
// suite (internal/store/storetest), and one line here.
type Store interface {
	Lifecycle
	EventStore
	AssetStore
	KeyStore
	RuleStore
	NotificationStore
	MaintenanceStore
	HistoryStore
	IncidentStore
	TemplateStore
	PatternStore
	ActionStore
	AuditStore
	AutonomousStore
}

// Lifecycle opens, checks and closes a store.
type Lifecycle interface {
	// Migrate applies the embedded schema migrations that are not yet
	// applied. It is idempotent and safe to call at every start.
	Migrate(ctx context.Context) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections. It is idempotent.
	Close() error
}
