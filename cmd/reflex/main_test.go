package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	t.Setenv("REFLEX_TOKEN", "")
	code, out, _ := runCmd(t, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "reflex "))

	code, _, errOut := runCmd(t)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "reflex server")

	code, _, errOut = runCmd(t, "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "frobnicate"`)

	code, _, errOut = runCmd(t, "server", "--check-config")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "configuration is valid")

	code, _, errOut = runCmd(t, "server", "--check-config", "--log-format", "xml")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "log-format")

	code, _, errOut = runCmd(t, "server", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "REFLEX_DATA_DIR")

	dir := t.TempDir()
	code, _, errOut = runCmd(t, "migrate", "--data-dir", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "migrations applied")
	_, err := os.Stat(filepath.Join(dir, "reflex.db"))
	require.NoError(t, err, "migrate created the SQLite database")

	code, _, errOut = runCmd(t, "send", "--url", "http://127.0.0.1:1", "--token", "x")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--message is required")

	code, _, errOut = runCmd(t, "loadgen")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "token")
}
