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

	// Floors: met, and not met (after printing the figures).
	code, _, stderr = runCmd(t, "eval", "loghub", dir, "--min-accuracy", "0.9")
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr = runCmd(t, "eval", "loghub", dir, "--min-accuracy", "0.9999")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "HDFS")
	require.Regexp(t, `mean accuracy 0\.\d+ is below --min-accuracy 0\.9999`, stderr)

	code, _, stderr = runCmd(t, "eval", "loghub")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "DIR is required")
	code, _, stderr = runCmd(t, "eval", "nope")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "unknown benchmark")
}

// TestEvalNAB runs eval nab on a temporary copy of a few NAB files.
func TestEvalNAB(t *testing.T) {
	src := "../../../shared/data/nab"
	dir := t.TempDir()
	files := []string{"realTraffic/speed_7578.csv", "artificialWithAnomaly/art_daily_jumpsup.csv"}
	for _, f := range append(files, "../labels/combined_windows.json", "../config/profiles.json") {
		b, err := os.ReadFile(filepath.Join(src, "data", f))
		require.NoError(t, err)
		dst := filepath.Join(dir, "data", f)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o750))
		require.NoError(t, os.WriteFile(dst, b, 0o600))
	}
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, "eval", "nab", dir, "--out", out)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^standard\s+\d+\.\d\s+\d\.\d{4}`, stdout)
	require.Contains(t, stdout, "reward_low_FP_rate")
	require.Contains(t, stdout, "reward_low_FN_rate")
	require.Regexp(t, `(?m)^realTraffic\s+1\s+`, stdout)
	require.Contains(t, stderr, "2/2 realTraffic/speed_7578.csv")

	f, err := os.Open(filepath.Join(out, "realTraffic", "speed_7578.csv"))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"timestamp", "value", "anomaly_score"}, rows[0])
	require.Len(t, rows, 1128)
	require.Equal(t, "2015-09-08 11:39:00", rows[1][0])

	code, stdout, stderr = runCmd(t, "eval", "nab", "--json", dir)
	require.Equal(t, 0, code, stderr)
	var res struct {
		Detector struct {
			Profiles []struct {
				Profile string  `json:"profile"`
				Score   float64 `json:"score"`
			} `json:"profiles"`
			Categories []struct {
				Category string `json:"category"`
			} `json:"categories"`
		} `json:"detector"`
		Rows int `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Len(t, res.Detector.Profiles, 3)
	require.Equal(t, "standard", res.Detector.Profiles[0].Profile)
	require.Greater(t, res.Detector.Profiles[0].Score, 20.0)
	require.Len(t, res.Detector.Categories, 2)
	require.Equal(t, 1127+4032, res.Rows)

	code, _, stderr = runCmd(t, "eval", "nab", dir, "--min-score", "99.9")
	require.Equal(t, 1, code)
	require.Regexp(t, `standard score [\d.]+ is below --min-score 99\.9`, stderr)

	code, _, stderr = runCmd(t, "eval", "nab")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "DIR is required")
	code, _, stderr = runCmd(t, "eval", "nab", t.TempDir())
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "nab:")
}

func TestFloors(t *testing.T) {
	require.NoError(t, floors("eval x", floor{"a", "min-a", 0.5, 0}, floor{"b", "min-b", 0.9, 0.9}))
	err := floors("eval x", floor{"a", "min-a", 0.5, 0.6}, floor{"b", "min-b", 0.9, 0.8}, floor{"c", "min-c", 0.1, 0.2})
	require.EqualError(t, err, "eval x: a 0.5 is below --min-a 0.6; c 0.1 is below --min-c 0.2")
}
