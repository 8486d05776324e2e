package storetest

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

func testAssets(t *testing.T, e *env) {
	at := e.base.Truncate(time.Microsecond)
	web := store.Asset{Host: "web-01", Environment: "production", Criticality: "high", Owner: "alice",
		Team: "web", Service: "nginx", Dependencies: []string{"db-01", "cache-01"}, Tags: []string{"dmz"}, UpdatedAt: at}
	db := store.Asset{Host: "db-01", Environment: "production", Criticality: "critical", UpdatedAt: at}

	_, err := e.s.Asset(e.ctx, "web-01")
	require.ErrorIs(t, err, store.ErrNotFound)
	all, err := e.s.Assets(e.ctx)
	require.NoError(t, err)
	require.Empty(t, all)

	require.NoError(t, e.s.PutAsset(e.ctx, web))
	require.NoError(t, e.s.PutAsset(e.ctx, db))
	got, err := e.s.Asset(e.ctx, "web-01")
	require.NoError(t, err)
	require.Equal(t, web, got)

	t.Run("replace", func(t *testing.T) {
		web2 := web
		web2.Criticality, web2.Dependencies, web2.Tags = "medium", nil, nil
		web2.UpdatedAt = at.Add(time.Minute)
		require.NoError(t, e.s.PutAsset(e.ctx, web2))
		got, err := e.s.Asset(e.ctx, "web-01")
		require.NoError(t, err)
		require.Equal(t, web2, got)
		web = web2
	})
	t.Run("list by host", func(t *testing.T) {
		all, err := e.s.Assets(e.ctx)
		require.NoError(t, err)
		require.Equal(t, []store.Asset{db, web}, all)
	})
	t.Run("zero UpdatedAt is stamped", func(t *testing.T) {
		require.NoError(t, e.s.PutAsset(e.ctx, store.Asset{Host: "cache-01"}))
		got, err := e.s.Asset(e.ctx, "cache-01")
		require.NoError(t, err)
		require.False(t, got.UpdatedAt.IsZero())
	})
	t.Run("delete", func(t *testing.T) {
		require.NoError(t, e.s.DeleteAsset(e.ctx, "web-01"))
		_, err := e.s.Asset(e.ctx, "web-01")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, e.s.DeleteAsset(e.ctx, "web-01"), store.ErrNotFound)
		require.ErrorIs(t, e.s.DeleteAsset(e.ctx, "never"), store.ErrNotFound)
	})
	t.Run("empty host", func(t *testing.T) {
		require.Error(t, e.s.PutAsset(e.ctx, store.Asset{}))
	})
}

func testKeys(t *testing.T, e *env) {
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
