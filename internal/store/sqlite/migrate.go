package sqlite

import (
	"context"
	"embed"
	"fmt"

	"github.com/reflex-ops/reflex/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFS, "migrations")
}

// Migrate applies the embedded migrations that schema_migrations does not
// list, each in its own (immediate, so exclusive of other writers)
// transaction, in version order, then prepares the write statements.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		applied, err := s.apply(ctx, m)
		if err != nil {
			return fmt.Errorf("sqlite: migrate: apply %s: %w", m.Name, err)
		}
		if applied {
			s.log.Info("applied migration", "version", m.Version, "name", m.Name)
		}
	}
	return s.prepare(ctx)
}

// apply runs m unless it is recorded as applied; the check and the change
// are one transaction, so concurrent processes apply it once.
func (s *Store) apply(ctx context.Context, m store.Migration) (bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n)
	if err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, s.now().UnixMicro()); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
