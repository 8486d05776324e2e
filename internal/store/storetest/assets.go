package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// Assets is the part of a store that RunAssets checks.
type Assets interface {
	store.Lifecycle
	store.AssetStore
}

// RunAssets runs the conformance suite of store.AssetStore. open must
// return a new, empty store for each call; RunAssets migrates it and
// closes it when the subtest ends.
func RunAssets(t *testing.T, open func(t *testing.T) Assets) {
	t.Run("Assets", func(t *testing.T) {
		s := open(t)
		ctx, base := setUp(t, s)
		testAssets(t, &assetEnv{s: s, ctx: ctx, base: base})
	})
}

type assetEnv struct {
	s    Assets
	ctx  context.Context
	base time.Time
}

func testAssets(t *testing.T, e *assetEnv) {
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
