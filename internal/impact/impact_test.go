package impact

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// inventory opens a SQLite store in a temporary directory holding a small
// inventory:
//
//	db-01 (critical) <- api-01, api-02 <- web-01, web-02 <- batch-01
//	cache-01 (high) <- worker-01
//	cyc-a -> cyc-b -> cyc-c -> cyc-a (a cycle)
//	chain-0 <- chain-1 <- ... <- chain-7
//	self-01 -> self-01; phantom-user -> ghost (not in the inventory)
func inventory(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	assets := []store.Asset{
		{Host: "db-01", Criticality: "critical", Service: "billing-db"},
		{Host: "api-01", Criticality: "medium", Service: "api", Dependencies: []string{"db-01"}},
		{Host: "api-02", Criticality: "medium", Service: "api", Dependencies: []string{"DB-01 "}},
		{Host: "web-01", Service: "web", Dependencies: []string{"api-01"}},
		{Host: "web-02", Service: "web", Dependencies: []string{"api-01", "api-02"}},
		{Host: "batch-01", Service: "batch", Dependencies: []string{"web-02"}},
		{Host: "cache-01", Criticality: "high", Service: "cache"},
		{Host: "worker-01", Criticality: "low", Dependencies: []string{"cache-01"}},
		{Host: "cyc-a", Dependencies: []string{"cyc-b"}},
		{Host: "cyc-b", Dependencies: []string{"cyc-c"}},
		{Host: "cyc-c", Dependencies: []string{"cyc-a"}},
		{Host: "self-01", Criticality: "high", Dependencies: []string{"self-01"}},
		{Host: "phantom-user", Dependencies: []string{"ghost"}},
		{Host: "lonely", Criticality: "low"},
	}
	for i := range 8 {
		a := store.Asset{Host: fmt.Sprintf("chain-%d", i)}
		if i > 0 {
			a.Dependencies = []string{fmt.Sprintf("chain-%d", i-1)}
		}
		assets = append(assets, a)
	}
	for _, a := range assets {
		require.NoError(t, s.PutAsset(t.Context(), a))
	}
	return s
}

func TestAnalyze(t *testing.T) {
	s := inventory(t)
	a, err := New(Options{Assets: s})
	require.NoError(t, err)

	cases := []struct {
		host        string
		criticality string
		dependents  []string
		direct      int
		services    []string
		approval    bool
		reason      string
	}{
		{"db-01", "critical", []string{"api-01", "api-02", "batch-01", "web-01", "web-02"}, 2, []string{"api", "batch", "web"}, true,
			"db-01 is critical; 5 hosts depend on it (2 directly; services api, batch, web); approval required: the host is critical, 5 hosts depend on it (approval from 5)"},
		{"DB-01", "critical", []string{"api-01", "api-02", "batch-01", "web-01", "web-02"}, 2, []string{"api", "batch", "web"}, true, ""},
		{"api-01", "medium", []string{"batch-01", "web-01", "web-02"}, 2, []string{"batch", "web"}, false,
			"api-01 is medium; 3 hosts depend on it (2 directly; services batch, web)"},
		{"cache-01", "high", []string{"worker-01"}, 1, []string{}, true,
			"cache-01 is high; 1 host depends on it (1 directly); approval required: the host is high and 1 host depends on it"},
		{"self-01", "high", []string{}, 0, []string{}, false, "self-01 is high; no host depends on it"},
		{"cyc-a", "", []string{"cyc-b", "cyc-c"}, 1, []string{}, false, "cyc-a has no criticality; 2 hosts depend on it (1 directly)"},
		{"chain-0", "", []string{"chain-1", "chain-2", "chain-3", "chain-4", "chain-5"}, 1, []string{}, true, ""},
		{"ghost", "", []string{"phantom-user"}, 1, []string{}, false, "ghost is not in the asset inventory; 1 host depends on it (1 directly)"},
		{"lonely", "low", []string{}, 0, []string{}, false, "lonely is low; no host depends on it"},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			r, err := a.Analyze(t.Context(), tc.host)
			require.NoError(t, err)
			require.Equal(t, tc.criticality, r.Criticality)
			require.Equal(t, tc.dependents, r.Dependents)
			require.Equal(t, tc.direct, r.Direct)
			require.Equal(t, tc.services, r.Services)
			require.Equal(t, tc.approval, r.RequiresApproval, r.Reason)
			require.False(t, r.Truncated)
			if tc.reason != "" {
				require.Equal(t, tc.reason, r.Reason)
			}
		})
	}

	r, err := a.Analyze(t.Context(), "db-01")
	require.NoError(t, err)
	require.True(t, r.Known)
	require.Equal(t, "billing-db", r.Service)
	_, err = a.Analyze(t.Context(), "  ")
	require.Error(t, err)
}

func TestOptions(t *testing.T) {
	s := inventory(t)
	ctx := t.Context()
	_, err := New(Options{})
	require.Error(t, err)

	t.Run("depth", func(t *testing.T) {
		a, err := New(Options{Assets: s, MaxDepth: 2})
		require.NoError(t, err)
		r, err := a.Analyze(ctx, "chain-0")
		require.NoError(t, err)
		require.Equal(t, []string{"chain-1", "chain-2"}, r.Dependents)
		r, err = a.Analyze(ctx, "db-01")
		require.NoError(t, err)
		require.Equal(t, []string{"api-01", "api-02", "web-01", "web-02"}, r.Dependents, "batch-01 is three hops away")
	})
	t.Run("bound", func(t *testing.T) {
		a, err := New(Options{Assets: s, MaxAssets: 2, Rules: Rules{MaxDependents: 2}})
		require.NoError(t, err)
		r, err := a.Analyze(ctx, "db-01")
		require.NoError(t, err)
		require.Len(t, r.Dependents, 2)
		require.True(t, r.Truncated)
		require.True(t, r.RequiresApproval)
		require.Contains(t, r.Reason, "at least 2 hosts depend on it")
	})
	t.Run("rules", func(t *testing.T) {
		a, err := New(Options{Assets: s, Rules: Rules{MaxDependents: 3, Criticalities: []string{" High "}}})
		require.NoError(t, err)
		r, err := a.Analyze(ctx, "api-01")
		require.NoError(t, err)
		require.True(t, r.RequiresApproval, "3 dependents reach the bound of 3")
		r, err = a.Analyze(ctx, "self-01")
		require.NoError(t, err)
		require.True(t, r.RequiresApproval, "high is configured as always requiring approval")
		require.Contains(t, r.Reason, "approval required: the host is high")
		r, err = a.Analyze(ctx, "lonely")
		require.NoError(t, err)
		require.False(t, r.RequiresApproval)
	})
	t.Run("rules off", func(t *testing.T) {
		a, err := New(Options{Assets: s, Rules: Rules{MaxDependents: -1, HighDependents: -1, Criticalities: []string{"none"}}})
		require.NoError(t, err)
		for _, h := range []string{"db-01", "cache-01", "chain-0"} {
			r, err := a.Analyze(ctx, h)
			require.NoError(t, err)
			require.False(t, r.RequiresApproval, "%s: %s", h, r.Reason)
		}
	})
}

type failingAssets struct{}

func (failingAssets) Assets(context.Context) ([]store.Asset, error) {
	return nil, errors.New("db down")
}

func TestAssetsFailure(t *testing.T) {
	a, err := New(Options{Assets: failingAssets{}})
	require.NoError(t, err)
	_, err = a.Analyze(t.Context(), "db-01")
	require.ErrorContains(t, err, "db down")
}

// A large cycle-rich inventory terminates and stays within its bounds.
func TestDenseGraph(t *testing.T) {
	var list []store.Asset
	const n = 300
	for i := range n {
		list = append(list, store.Asset{Host: fmt.Sprintf("h%03d", i), Dependencies: []string{
			fmt.Sprintf("h%03d", (i+1)%n), fmt.Sprintf("h%03d", (i*7)%n), fmt.Sprintf("h%03d", (i+n-1)%n),
		}})
	}
	a, err := New(Options{Assets: staticAssets(list), MaxDepth: 1000, MaxAssets: 100})
	require.NoError(t, err)
	r, err := a.Analyze(t.Context(), "h000")
	require.NoError(t, err)
	require.Len(t, r.Dependents, 100)
	require.True(t, r.Truncated)
	require.NotContains(t, r.Dependents, "h000")

	a, err = New(Options{Assets: staticAssets(list), MaxDepth: 1000, MaxAssets: 10_000})
	require.NoError(t, err)
	r, err = a.Analyze(t.Context(), "h000")
	require.NoError(t, err)
	require.Len(t, r.Dependents, n-1, "every other host, once")
	require.False(t, r.Truncated)
}

type staticAssets []store.Asset

func (s staticAssets) Assets(context.Context) ([]store.Asset, error) { return s, nil }
