package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEvalLoghub(t *testing.T) {
	dir := "../../../shared/data/loghub"
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, "eval", "loghub", dir, "--out", out)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "HDFS")
	require.Regexp(t, `(?m)^mean\s+24000\s+0\.\d{4}`, stdout)

	f, err := os.Open(filepath.Join(out, "HDFS.csv"))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"LineId", "TemplateId", "Template"}, rows[0])
	require.Len(t, rows, 2001)
	require.Equal(t, "1", rows[1][0])
	require.True(t, strings.HasPrefix(rows[1][1], "T"))

	code, stdout, stderr = runCmd(t, "eval", "loghub", "--json", dir)
	require.Equal(t, 0, code, stderr)
	var res struct {
		Systems []struct {
			System   string  `json:"system"`
			Accuracy float64 `json:"accuracy"`
		} `json:"systems"`
		Mean float64 `json:"mean_accuracy"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Len(t, res.Systems, 12)
	require.Greater(t, res.Mean, 0.8)

	code, _, stderr = runCmd(t, "eval", "loghub")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "DIR is required")
	code, _, stderr = runCmd(t, "eval", "nope")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "unknown benchmark")
}
