package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// KeyTable holds the API keys, in the auth schema.
const KeyTable = "api_keys"

const keySelect = `id, name, hash, scopes, created_at, revoked_at`

func (q *Queries) keys() string { return q.d.Table("auth", KeyTable) }

// CreateKey stores a new API key; ErrConflict if its id exists. A zero
// CreatedAt is set to now.
func (q *Queries) CreateKey(ctx context.Context, k store.APIKey) error {
	if k.ID == "" {
		return fmt.Errorf("%s: create key: empty id", q.d.Name)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = q.now()
	}
	var revoked any
	if k.RevokedAt != nil {
		revoked = q.d.Time(*k.RevokedAt)
	}
	if k.Hash == nil {
		k.Hash = []byte{}
	}
	n, err := q.w.Exec(ctx, q.d.Rebind(`INSERT INTO `+q.keys()+` (id, name, hash, scopes, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
		store.CleanText(k.ID, 0), store.CleanText(k.Name, 0), k.Hash, q.d.Strings(k.Scopes, 0), q.d.Time(k.CreatedAt), revoked)
	if err != nil {
		return fmt.Errorf("%s: create key %s: %w", q.d.Name, k.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: create key %s: %w", q.d.Name, k.ID, store.ErrConflict)
	}
	return nil
}

func (q *Queries) scanKey(row Row) (store.APIKey, error) {
	var (
		k                store.APIKey
		created, revoked time.Time
		bad              error
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, q.d.StringsDest(&k.Scopes, &bad), Time(&created), Time(&revoked)); err != nil {
		return k, err
	}
	if bad != nil {
		return k, fmt.Errorf("decode scopes of key %s: %w", k.ID, bad)
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.Hash == nil {
		k.Hash = []byte{}
	}
	k.CreatedAt = created
	if !revoked.IsZero() {
		k.RevokedAt = &revoked
	}
	return k, nil
}

// Key returns the key with this id, revoked or not.
func (q *Queries) Key(ctx context.Context, id string) (store.APIKey, error) {
	k, err := q.scanKey(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+keySelect+` FROM `+q.keys()+` WHERE id = ?`), store.CleanText(id, 0)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("%s: key %s: %w", q.d.Name, id, store.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("%s: key %s: %w", q.d.Name, id, err)
	}
	return k, nil
}

// Keys lists every key, oldest first.
func (q *Queries) Keys(ctx context.Context) ([]store.APIKey, error) {
	return collect(ctx, q, "keys", q.scanKey, `SELECT `+keySelect+` FROM `+q.keys()+` ORDER BY created_at, id`)
}

// RevokeKey marks the key revoked at at. Revoking a revoked key keeps its
// first revocation time.
func (q *Queries) RevokeKey(ctx context.Context, id string, at time.Time) error {
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.keys()+` SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`),
		q.d.Time(at), store.CleanText(id, 0))
	if err != nil {
		return fmt.Errorf("%s: revoke key %s: %w", q.d.Name, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: revoke key %s: %w", q.d.Name, id, store.ErrNotFound)
	}
	return nil
}
