package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reflex-ops/reflex/internal/store"
)

// PutAsset creates or replaces the asset of a.Host. A zero UpdatedAt is
// set to now.
func (s *Store) PutAsset(ctx context.Context, a store.Asset) error {
	if a.Host == "" {
		return errors.New("postgres: put asset: empty host")
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = s.now()
	}
	a.UpdatedAt = store.CleanTime(a.UpdatedAt).Truncate(time.Microsecond)
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("postgres: put asset %s: %w", a.Host, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO events.assets (host, data, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (host) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at`,
		store.CleanText(a.Host, 0), store.CleanJSON(doc), a.UpdatedAt)
	if err != nil {
		return fmt.Errorf("postgres: put asset %s: %w", a.Host, err)
	}
	return nil
}

func scanAsset(row pgx.Row) (store.Asset, error) {
	var (
		a       store.Asset
		host    string
		doc     []byte
		updated time.Time
	)
	if err := row.Scan(&host, &doc, &updated); err != nil {
		return a, err
	}
	if err := json.Unmarshal(doc, &a); err != nil {
		return a, fmt.Errorf("decode asset %s: %w", host, err)
	}
	a.Host, a.UpdatedAt = host, updated.UTC()
	return a, nil
}

// Asset returns the asset of host.
func (s *Store) Asset(ctx context.Context, host string) (store.Asset, error) {
	a, err := scanAsset(s.pool.QueryRow(ctx, `SELECT host, data, updated_at FROM events.assets WHERE host = $1`, store.CleanText(host, 0)))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("postgres: asset %s: %w", host, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("postgres: asset %s: %w", host, err)
	}
	return a, nil
}

// DeleteAsset deletes the asset of host.
func (s *Store) DeleteAsset(ctx context.Context, host string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM events.assets WHERE host = $1`, store.CleanText(host, 0))
	if err != nil {
		return fmt.Errorf("postgres: delete asset %s: %w", host, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete asset %s: %w", host, store.ErrNotFound)
	}
	return nil
}

// Assets lists every asset by host.
func (s *Store) Assets(ctx context.Context) ([]store.Asset, error) {
	rows, err := s.pool.Query(ctx, `SELECT host, data, updated_at FROM events.assets ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("postgres: assets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Asset, error) { return scanAsset(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: assets: %w", err)
	}
	if out == nil {
		out = []store.Asset{}
	}
	return out, nil
}

// CreateKey stores a new API key; ErrConflict if its id exists. A zero
// CreatedAt is set to now.
func (s *Store) CreateKey(ctx context.Context, k store.APIKey) error {
	if k.ID == "" {
		return errors.New("postgres: create key: empty id")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	var revoked any
	if k.RevokedAt != nil {
		revoked = store.CleanTime(*k.RevokedAt)
	}
	if k.Hash == nil {
		k.Hash = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO auth.api_keys (id, name, hash, scopes, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, store.CleanText(k.ID, 0), store.CleanText(k.Name, 0), k.Hash, cleanStringsSlice(scopes), store.CleanTime(k.CreatedAt), revoked)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("postgres: create key %s: %w", k.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: create key %s: %w", k.ID, err)
	}
	return nil
}

func cleanStringsSlice(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = store.CleanText(s, 0)
	}
	return out
}

const keyColumns = `id, name, hash, scopes, created_at, revoked_at`

func scanKey(row pgx.Row) (store.APIKey, error) {
	var (
		k       store.APIKey
		revoked *time.Time
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &k.Scopes, &k.CreatedAt, &revoked); err != nil {
		return k, err
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.Hash == nil {
		k.Hash = []byte{}
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if revoked != nil {
		t := revoked.UTC()
		k.RevokedAt = &t
	}
	return k, nil
}

// Key returns the key with this id, revoked or not.
func (s *Store) Key(ctx context.Context, id string) (store.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM auth.api_keys WHERE id = $1`, store.CleanText(id, 0)))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, fmt.Errorf("postgres: key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("postgres: key %s: %w", id, err)
	}
	return k, nil
}

// Keys lists every key, oldest first.
func (s *Store) Keys(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM auth.api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.APIKey, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	if out == nil {
		out = []store.APIKey{}
	}
	return out, nil
}

// RevokeKey marks the key revoked at at. Revoking a revoked key keeps its
// first revocation time.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE auth.api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`,
		store.CleanText(id, 0), store.CleanTime(at))
	if err != nil {
		return fmt.Errorf("postgres: revoke key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: revoke key %s: %w", id, store.ErrNotFound)
	}
	return nil
}
