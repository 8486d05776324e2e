package store

import (
	"context"
	"time"
)

// KeyStore holds the API keys (the auth schema in PostgreSQL).
type KeyStore interface {
	// CreateKey stores a new API key (its hash, never the secret).
	// ErrConflict if k.ID exists.
	CreateKey(ctx context.Context, k APIKey) error
	// Key returns the key with this id, revoked or not, or ErrNotFound.
	Key(ctx context.Context, id string) (APIKey, error)
	// Keys lists every key, revoked ones included, oldest first.
	Keys(ctx context.Context) ([]APIKey, error)
	// RevokeKey marks the key revoked at the given time, or returns
	// ErrNotFound.
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// APIKey is a stored API key. The secret itself is never stored: Hash is
// SHA-256 of the full key string.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Hash      []byte     `json:"-"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}
