package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/reflex-ops/reflex/internal/loadgen"
)

const killToken = "kill-test-admin-token-0123456789"

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reflex")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	done chan error
}

func startReflex(t *testing.T, bin, dataDir, eventsAddr, autoAddr string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "server", "--data-dir", dataDir, "--events-addr", eventsAddr,
		"--autonomous-addr", autoAddr, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "REFLEX_ADMIN_TOKEN="+killToken)
	log, err := os.OpenFile(filepath.Join(dataDir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + eventsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			data, _ := os.ReadFile(filepath.Join(dataDir, "server.log"))
			t.Fatalf("reflex exited before it was ready: %v\n%s", err, data)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("reflex was not ready within 60s")
	return nil
}

// TestKill9LosesNoAcknowledgedEvent posts events with the load generator,
// kills the server with SIGKILL while it posts, restarts it, and checks that
// every event whose id the webhook returned is stored exactly once and
// processed.
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	eventsAddr, autoAddr := freePort(t), freePort(t)

	var mu sync.Mutex
	acked := map[int64]bool{}
	record := func(ids []int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			require.False(t, acked[id], "id %d returned twice", id)
			acked[id] = true
		}
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	const cycles = 3
	for cycle := 0; cycle < cycles; cycle++ {
		p := startReflex(t, bin, dataDir, eventsAddr, autoAddr)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = loadgen.Run(ctx, loadgen.Options{
				URL: "http://" + eventsAddr, Token: killToken, Batch: 50, Concurrency: 4,
				Duration: time.Minute, Hosts: 200, Drain: time.Millisecond, OnAccepted: record,
			})
		}()
		// Kill it mid-stream once it has acknowledged a few thousand events.
		target := count() + 10000
		deadline := time.Now().Add(60 * time.Second)
		for count() < target && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		require.GreaterOrEqual(t, count(), target, "the load generator got too few events accepted")
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
		<-p.done
		cancel()
		wg.Wait()
		t.Logf("cycle %d: killed with %d events acknowledged so far", cycle, count())
	}

	// Restart and let it work off the intake log.
	p := startReflex(t, bin, dataDir, eventsAddr, autoAddr)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "reflex.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()

	mu.Lock()
	ids := make([]int64, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	mu.Unlock()

	var stored, processed int
	deadline := time.Now().Add(120 * time.Second)
	for {
		stored, processed = countStored(t, db, ids)
		if processed == len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, len(ids), stored, "every acknowledged event is in raw_events")
	require.Equal(t, len(ids), processed, "every acknowledged event is processed")

	// Exactly once: no acknowledged id has two processed events, and every
	// raw event points at a processed event that exists.
	var dangling int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM raw_events r WHERE r.processed_event_id IS NOT NULL AND r.processed_event_id != 0
		AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.id = r.processed_event_id)`).Scan(&dangling))
	require.Zero(t, dangling)
	var dupRaw int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM (SELECT raw_event_id FROM processed_events GROUP BY raw_event_id HAVING count(*) > 1)`).Scan(&dupRaw))
	require.Zero(t, dupRaw)

	// A graceful stop exits 0.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("reflex did not stop within 60s of SIGTERM")
	}
	t.Logf("%d acknowledged events, all stored once and processed", len(ids))
}

// countStored counts how many of ids are in raw_events, and how many of
// those are marked processed.
func countStored(t *testing.T, db *sql.DB, ids []int64) (stored, processed int) {
	t.Helper()
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		ph := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		var s, p sql.NullInt64
		err := db.QueryRow(fmt.Sprintf(`SELECT count(*), sum(processed) FROM raw_events WHERE id IN (%s)`, ph), args...).Scan(&s, &p)
		if err != nil {
			return 0, 0 // the database may not exist yet right after start
		}
		stored += int(s.Int64)
		processed += int(p.Int64)
	}
	return stored, processed
}
