package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// PutAsset creates or replaces the asset of a.Host. A zero UpdatedAt is
// set to now.
func (s *Store) PutAsset(ctx context.Context, a store.Asset) error {
	if a.Host == "" {
		return errors.New("sqlite: put asset: empty host")
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = s.now()
	}
	a.UpdatedAt = store.CleanTime(a.UpdatedAt).Truncate(time.Microsecond)
	a.Host = store.CleanText(a.Host, 0)
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("sqlite: put asset %s: %w", a.Host, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO assets (host, data, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (host) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
		a.Host, string(store.CleanJSON(doc)), micros(a.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put asset %s: %w", a.Host, err)
	}
	return nil
}

func scanAsset(row scanner) (store.Asset, error) {
	var (
		a         store.Asset
		host, doc string
		updated   int64
	)
	if err := row.Scan(&host, &doc, &updated); err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(doc), &a); err != nil {
		return a, fmt.Errorf("decode asset %s: %w", host, err)
	}
	a.Host, a.UpdatedAt = host, time.UnixMicro(updated).UTC()
	return a, nil
}

// Asset returns the asset of host.
func (s *Store) Asset(ctx context.Context, host string) (store.Asset, error) {
	a, err := scanAsset(s.r.QueryRowContext(ctx, `SELECT host, data, updated_at FROM assets WHERE host = ?`, store.CleanText(host, 0)))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("sqlite: asset %s: %w", host, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("sqlite: asset %s: %w", host, err)
	}
	return a, nil
}

// DeleteAsset deletes the asset of host.
func (s *Store) DeleteAsset(ctx context.Context, host string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM assets WHERE host = ?`, store.CleanText(host, 0))
	if err != nil {
		return fmt.Errorf("sqlite: delete asset %s: %w", host, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: delete asset %s: %w", host, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: delete asset %s: %w", host, store.ErrNotFound)
	}
	return nil
}

// Assets lists every asset by host.
func (s *Store) Assets(ctx context.Context) ([]store.Asset, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT host, data, updated_at FROM assets ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: assets: %w", err)
	}
	defer rs.Close()
	out := []store.Asset{}
	for rs.Next() {
		a, err := scanAsset(rs)
		if err != nil {
			return nil, fmt.Errorf("sqlite: assets: %w", err)
		}
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: assets: %w", err)
	}
	return out, nil
}

// CreateKey stores a new API key; ErrConflict if its id exists. A zero
// CreatedAt is set to now.
func (s *Store) CreateKey(ctx context.Context, k store.APIKey) error {
	if k.ID == "" {
		return errors.New("sqlite: create key: empty id")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	scopes := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		scopes[i] = store.CleanText(sc, 0)
	}
	sj, err := json.Marshal(scopes)
	if err != nil {
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, err)
	}
	var revoked any
	if k.RevokedAt != nil {
		revoked = micros(*k.RevokedAt)
	}
	hash := k.Hash
	if hash == nil {
		hash = []byte{}
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO api_keys (id, name, hash, scopes, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		store.CleanText(k.ID, 0), store.CleanText(k.Name, 0), hash, string(sj), micros(k.CreatedAt), revoked)
	if err != nil {
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, store.ErrConflict)
	}
	return nil
}

const keyColumns = `id, name, hash, scopes, created_at, revoked_at`

func scanKey(row scanner) (store.APIKey, error) {
	var (
		k       store.APIKey
		scopes  string
		created int64
		revoked *int64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &scopes, &created, &revoked); err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return k, fmt.Errorf("decode scopes of key %s: %w", k.ID, err)
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.Hash == nil {
		k.Hash = []byte{}
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	if revoked != nil {
		t := time.UnixMicro(*revoked).UTC()
		k.RevokedAt = &t
	}
	return k, nil
}

// Key returns the key with this id, revoked or not.
func (s *Store) Key(ctx context.Context, id string) (store.APIKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, store.CleanText(id, 0)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("sqlite: key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("sqlite: key %s: %w", id, err)
	}
	return k, nil
}

// Keys lists every key, oldest first.
func (s *Store) Keys(ctx context.Context) ([]store.APIKey, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	defer rs.Close()
	out := []store.APIKey{}
	for rs.Next() {
		k, err := scanKey(rs)
		if err != nil {
			return nil, fmt.Errorf("sqlite: keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	return out, nil
}

// RevokeKey marks the key revoked at at. Revoking a revoked key keeps its
// first revocation time.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`,
		micros(at), store.CleanText(id, 0))
	if err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, store.ErrNotFound)
	}
	return nil
}
