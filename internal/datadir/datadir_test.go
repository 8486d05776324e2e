package datadir

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var start = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func fixed() time.Time { return start }

func TestSecondLockFailsAndNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, fixed)
	require.NoError(t, err)

	_, err = Acquire(dir, fixed)
	require.ErrorIs(t, err, ErrLocked)
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d", os.Getpid()))
	require.Contains(t, err.Error(), "started 2026-12-01T10:00:00Z")
	require.Contains(t, err.Error(), dir)

	require.NoError(t, l.Unlock())
	require.NoError(t, l.Unlock(), "Unlock is idempotent")
	l2, err := Acquire(dir, fixed)
	require.NoError(t, err, "a released lock can be taken again")
	require.NoError(t, l2.Unlock())
}

func TestStaleLockFileDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte("pid 1 on gone, started long ago\n"), 0o600))
	l, err := Acquire(dir, fixed)
	require.NoError(t, err)
	data, err := os.ReadFile(l.Path())
	require.NoError(t, err)
	require.Contains(t, string(data), fmt.Sprintf("pid %d", os.Getpid()))
	require.NoError(t, l.Unlock())
}

// TestHelperHoldLock is run as a child process by TestLockAcrossProcesses.
func TestHelperHoldLock(t *testing.T) {
	dir := os.Getenv("REFLEX_DATADIR_HELPER")
	if dir == "" {
		t.Skip("helper process")
	}
	l, err := Acquire(dir, nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	_ = l.Unlock()
	os.Exit(0)
}

func TestLockAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$") //nolint:gosec // the test binary itself
	cmd.Env = append(os.Environ(), "REFLEX_DATADIR_HELPER="+dir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked", strings.TrimSpace(line))

	_, err = Acquire(dir, nil)
	require.ErrorIs(t, err, ErrLocked)
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid))

	// The lock goes with the process, also when it is killed.
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	l, err := Acquire(dir, nil)
	require.NoError(t, err)
	require.NoError(t, l.Unlock())
}
