package server

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/loadgen"
)

// TestStormScenarios posts generated storms to a server (embedded NATS,
// SQLite) and checks the incident engine's compression, purity and
// root-cause accuracy against their ground truth, above floors set a
// little below the targets.
func TestStormScenarios(t *testing.T) {
	cfg := testConfig(t)
	cfg.IncidentGroupWait = config.Duration(time.Second)
	ts := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rs, err := loadgen.RunStorms(ctx, loadgen.StormOptions{URL: ts.events, Token: testToken, Settle: 2 * time.Second, Progress: &progress},
		[]string{"db-cascade", "twin-failures"}, 7)
	require.NoError(t, err, progress.String())
	var report bytes.Buffer
	loadgen.ReportStorms(&report, rs)
	t.Log("\n" + report.String())
	for _, r := range append(rs, loadgen.Overall(rs)) {
		require.Zero(t, r.Missing, r.Scenario)
		require.GreaterOrEqual(t, r.Compression, 0.95, r.Scenario)
		require.GreaterOrEqual(t, r.Purity, 0.95, r.Scenario)
		require.GreaterOrEqual(t, r.RootTop1, 0.8, r.Scenario)
	}
}
