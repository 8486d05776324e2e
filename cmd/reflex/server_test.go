package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSecondProcessOnTheSameDataDirFails runs two reflex processes on one
// data dir: the second exits at once, naming the first, and the first stays
// ready.
func TestSecondProcessOnTheSameDataDirFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	events := freePort(t)
	first := startReflex(t, bin, dir, events, freePort(t), freePort(t))

	cmd := exec.Command(bin, "server", "--data-dir", dir, "--events-addr", freePort(t),
		"--autonomous-addr", freePort(t), "--log-level", "warn") //nolint:gosec // the test's own binary
	cmd.Env = append(os.Environ(), "REFLEX_ADMIN_TOKEN="+killToken)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "the second server must not start")
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the second server is still running:\n%s", out.String())
	}
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	require.Contains(t, out.String(), fmt.Sprintf("%s is locked by another reflex server (pid %d", abs, first.cmd.Process.Pid))

	// `reflex migrate` does not touch it either.
	code, _, errOut := runCmd(t, "migrate", "--data-dir", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "is locked by another reflex server")

	// The first is still ready.
	resp, err := http.Get("http://" + events + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
