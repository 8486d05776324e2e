package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

func TestEvalStorms(t *testing.T) {
	for _, tt := range []struct {
		mode, scenarios string
	}{
		{"sqlite", "flapping-service,storage-failure"},
		{"postgres", "switch-failure"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			args := []string{"--incident-group-wait", "1s"}
			if tt.mode == "postgres" {
				args = append(args, "--database-url", testutil.PostgresURL(t))
			}
			url := startInProcess(t, args...)
			t.Setenv("REFLEX_URL", url)
			t.Setenv("REFLEX_TOKEN", "rules-test-token")

			code, out, errOut := runCmd(t, "eval", "storms", "--scenario", tt.scenarios, "--seed", "3", "--json", "--quiet",
				"--min-compression", "0.95", "--min-purity", "0.95", "--min-top1", "0.8")
			require.Equal(t, 0, code, errOut)
			var res struct {
				Scenarios []struct {
					Scenario string `json:"scenario"`
				} `json:"scenarios"`
				Overall struct {
					Events      int     `json:"events"`
					Compression float64 `json:"compression"`
					Purity      float64 `json:"purity"`
					RootTop1    float64 `json:"root_top1"`
				} `json:"overall"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &res), out)
			require.NotEmpty(t, res.Scenarios)
			require.Positive(t, res.Overall.Events)
			require.GreaterOrEqual(t, res.Overall.Compression, 0.95, out)
			require.GreaterOrEqual(t, res.Overall.Purity, 0.95, out)
			require.GreaterOrEqual(t, res.Overall.RootTop1, 0.8, out)

			code, out, errOut = runCmd(t, "eval", "storms", "--scenario", "no-such-storm")
			require.Equal(t, 1, code)
			require.Contains(t, errOut, `unknown scenario "no-such-storm"`, out)
		})
	}
}

func TestLoadgenScenario(t *testing.T) {
	url := startInProcess(t)
	t.Setenv("REFLEX_URL", url)
	t.Setenv("REFLEX_TOKEN", "rules-test-token")
	truth := filepath.Join(t.TempDir(), "truth.json")
	code, out, errOut := runCmd(t, "loadgen", "--scenario", "dns-failure", "--seed", "5", "--truth", truth)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `scenario dns-failure \(seed 5\): \d+ assets loaded, \d+ events posted, \d+ true incidents`, out)
	b, err := os.ReadFile(truth)
	require.NoError(t, err)
	var doc struct {
		Events []struct {
			ID    int64  `json:"id"`
			Truth string `json:"truth"`
			Root  bool   `json:"root"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	roots := 0
	for _, e := range doc.Events {
		require.Positive(t, e.ID)
		if e.Root && e.Truth == "dns" {
			roots++
		}
	}
	require.Equal(t, 1, roots, "one root for the DNS incident")
}
