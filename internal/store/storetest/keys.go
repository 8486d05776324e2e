package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// Keys is the part of a store that RunKeys checks.
type Keys interface {
	store.Lifecycle
	store.KeyStore
}

// RunKeys runs the conformance suite of store.KeyStore, as RunAssets.
func RunKeys(t *testing.T, open func(t *testing.T) Keys) {
	t.Run("Keys", func(t *testing.T) {
		s := open(t)
		ctx, base := setUp(t, s)
		testKeys(t, &keyEnv{s: s, ctx: ctx, base: base})
	})
}

type keyEnv struct {
	s    Keys
	ctx  context.Context
	base time.Time
}

func testKeys(t *testing.T, e *keyEnv) {
	at := e.base.Truncate(time.Microsecond)
	h1, h2 := sha256.Sum256([]byte("rfx_k1.secret")), sha256.Sum256([]byte("rfx_k2.secret"))
	k1 := store.APIKey{ID: "k1", Name: "admin", Hash: h1[:], Scopes: []string{"admin"}, CreatedAt: at}
	k2 := store.APIKey{ID: "k2", Name: "nagios", Hash: h2[:], Scopes: []string{"events:write", "events:read"}, CreatedAt: at.Add(time.Second)}

	keys, err := e.s.Keys(e.ctx)
	require.NoError(t, err)
	require.Empty(t, keys)
	_, err = e.s.Key(e.ctx, "k1")
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, e.s.CreateKey(e.ctx, k2))
	require.NoError(t, e.s.CreateKey(e.ctx, k1))
	require.ErrorIs(t, e.s.CreateKey(e.ctx, store.APIKey{ID: "k1", Name: "again", Hash: h2[:], CreatedAt: at}), store.ErrConflict)

	got, err := e.s.Key(e.ctx, "k2")
	require.NoError(t, err)
	require.Equal(t, k2, got)
	keys, err = e.s.Keys(e.ctx)
	require.NoError(t, err)
	require.Equal(t, []store.APIKey{k1, k2}, keys, "oldest first")

	t.Run("revoke", func(t *testing.T) {
		rev := at.Add(time.Hour)
		require.NoError(t, e.s.RevokeKey(e.ctx, "k2", rev))
		got, err := e.s.Key(e.ctx, "k2")
		require.NoError(t, err)
		require.NotNil(t, got.RevokedAt)
		require.True(t, rev.Equal(*got.RevokedAt))
		// Revoking again keeps the first time.
		require.NoError(t, e.s.RevokeKey(e.ctx, "k2", rev.Add(time.Hour)))
		got, err = e.s.Key(e.ctx, "k2")
		require.NoError(t, err)
		require.True(t, rev.Equal(*got.RevokedAt))
		keys, err := e.s.Keys(e.ctx)
		require.NoError(t, err)
		require.Len(t, keys, 2, "revoked keys are listed")
		require.Nil(t, keys[0].RevokedAt)
		require.ErrorIs(t, e.s.RevokeKey(e.ctx, "nope", rev), store.ErrNotFound)
	})
	t.Run("no scopes", func(t *testing.T) {
		require.NoError(t, e.s.CreateKey(e.ctx, store.APIKey{ID: "k3", Name: "none", Hash: h1[:]}))
		got, err := e.s.Key(e.ctx, "k3")
		require.NoError(t, err)
		require.Empty(t, got.Scopes)
		require.False(t, got.CreatedAt.IsZero())
	})
	t.Run("empty id", func(t *testing.T) {
		require.Error(t, e.s.CreateKey(e.ctx, store.APIKey{Name: "x"}))
	})
}
