package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/loadgen"
	"github.com/reflex-ops/reflex/internal/processed"
)

const (
	killToken = "kill-test-admin-token-0123456789"
	natsToken = "kill-test-nats-token-0123456789"
)

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

func startReflex(t *testing.T, bin, dataDir, eventsAddr, autoAddr, natsAddr string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "server", "--data-dir", dataDir, "--events-addr", eventsAddr,
		"--autonomous-addr", autoAddr, "--log-level", "warn", "--nats-listen", natsAddr, "--nats-token", natsToken)
	cmd.Env = append(append(os.Environ(), "REFLEX_ADMIN_TOKEN="+killToken), env...)
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
// processed, and reaches a downstream consumer of the processed stream.
// Besides the random kills, one cycle arms the server's crash hook
// (REFLEX_TEST_CRASH_AFTER_COMMITS), so that it kills itself between a store
// commit and the publish and acknowledgement of that batch: the restart
// must republish what the consumer had not seen. Cycles 1 and 3 (the crash
// hook's) run the low lane pipelined (--pipeline-depth 3).
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	eventsAddr, autoAddr, natsAddr := freePort(t), freePort(t), freePort(t)

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

	// The downstream consumer: it runs in the test process for the whole
	// test, across the server's deaths, and records each record it sees.
	p := startReflex(t, bin, dataDir, eventsAddr, autoAddr, natsAddr)
	down := startDownstream(t, "nats://"+natsAddr)

	const cycles = 3
	for cycle := 0; cycle <= cycles; cycle++ {
		crash := cycle == cycles // the last cycle crashes by itself
		if cycle > 0 {
			var env []string
			if cycle%2 == 1 {
				// The pipelined low lane: batches in flight past their
				// stages when the kill comes.
				env = append(env, "REFLEX_PIPELINE_DEPTH=3")
			}
			if crash {
				env = append(env, "REFLEX_TEST_CRASH_AFTER_COMMITS=20")
			}
			p = startReflex(t, bin, dataDir, eventsAddr, autoAddr, natsAddr, env...)
		}
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
		if crash {
			select {
			case err := <-p.done:
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee)
				ws, ok := ee.Sys().(syscall.WaitStatus)
				require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the crash hook kills with SIGKILL: %v", err)
			case <-time.After(90 * time.Second):
				t.Fatal("the crash hook did not fire")
			}
		} else {
			// Kill it mid-stream once it has acknowledged a few thousand events.
			target := count() + 10000
			deadline := time.Now().Add(60 * time.Second)
			for count() < target && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			require.GreaterOrEqual(t, count(), target, "the load generator got too few events accepted")
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
			<-p.done
		}
		cancel()
		wg.Wait()
		t.Logf("cycle %d: killed with %d events acknowledged so far (crash hook: %v)", cycle, count(), crash)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "reflex.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	mu.Lock()
	ids := make([]int64, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	mu.Unlock()

	// What the crash left stored but unpublished: stored with a processed
	// event, not seen downstream (nothing can reach the consumer while the
	// embedded NATS server is down with the process).
	var missing []int64
	for id, pid := range storedTargets(t, db, ids) {
		if pid != 0 && !down.saw(id) {
			missing = append(missing, id)
		}
	}
	require.NotEmpty(t, missing, "the crash hook left a committed batch unpublished")
	t.Logf("after the crash: %d stored events not yet seen downstream", len(missing))

	// Restart and let it work off the intake log.
	p = startReflex(t, bin, dataDir, eventsAddr, autoAddr, natsAddr)
	var stored, nproc int
	deadline := time.Now().Add(120 * time.Second)
	for {
		stored, nproc = countStored(t, db, ids)
		if nproc == len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, len(ids), stored, "every acknowledged event is in raw_events")
	require.Equal(t, len(ids), nproc, "every acknowledged event is processed")

	// Exactly once: no acknowledged id has two processed events, and every
	// raw event points at a processed event that exists.
	var dangling int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM raw_events r WHERE r.processed_event_id IS NOT NULL AND r.processed_event_id != 0
		AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.id = r.processed_event_id)`).Scan(&dangling))
	require.Zero(t, dangling)
	var dupRaw int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM (SELECT raw_event_id FROM processed_events GROUP BY raw_event_id HAVING count(*) > 1)`).Scan(&dupRaw))
	require.Zero(t, dupRaw)

	// At least once downstream: every acknowledged event that became or
	// was folded into a processed event reaches the consumer, naming the
	// processed event the store has for it.
	targets := storedTargets(t, db, ids)
	want := 0
	for _, pid := range targets {
		if pid != 0 {
			want++
		}
	}
	require.Greater(t, want, len(ids)/2, "most acknowledged events have a processed event")
	deadline = time.Now().Add(120 * time.Second)
	for down.count() < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	lost := 0
	for id, pid := range targets {
		if pid == 0 {
			continue
		}
		r, ok := down.get(id)
		if !ok {
			lost++
			continue
		}
		require.Equal(t, pid, r.EventID, "record of raw event %d names its processed event", id)
		if pid == id {
			require.Equal(t, processed.KindNew, r.Kind)
		} else {
			require.Equal(t, processed.KindRepeat, r.Kind)
		}
	}
	require.Zero(t, lost, "acknowledged events never seen downstream")
	for _, id := range missing {
		require.True(t, down.saw(id), "event %d, committed before the crash, republished", id)
	}
	republished := metricValue(t, "http://"+eventsAddr+"/metrics", "reflex_processed_republished_records_total")
	require.Positive(t, republished, "the restart republished from the store")
	t.Logf("downstream: %d events seen, %d deliveries in all (%d duplicates, harmless); %.0f records republished after the crash",
		down.count(), down.deliveries(), down.deliveries()-down.count(), republished)

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

// downstream is a consumer of the processed stream in the test process. Its
// effect (recording a record by raw event id) is idempotent, as the
// consumer contract asks.
type downstream struct {
	mu    sync.Mutex
	seen  map[int64]processed.Record
	total int
}

func startDownstream(t *testing.T, url string) *downstream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := bus.DialProcessed(ctx, bus.DialOptions{URL: url, Token: natsToken})
	require.NoError(t, err)
	cons, err := processed.Consume(ctx, src, processed.ConsumerOptions{
		Name: "kill-test", AckWait: 5 * time.Second, Wait: 200 * time.Millisecond,
		RetryMin: 100 * time.Millisecond, RetryMax: time.Second,
	})
	require.NoError(t, err)
	d := &downstream{seen: map[int64]processed.Record{}}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(runCtx, func(_ context.Context, recs []processed.Record) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			for _, r := range recs {
				d.total++
				if _, ok := d.seen[r.Key()]; !ok {
					r.Event = nil // keep the test's memory small
					d.seen[r.Key()] = r
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		stop()
		<-done
		_ = src.Close()
	})
	return d
}

func (d *downstream) saw(id int64) bool { _, ok := d.get(id); return ok }

func (d *downstream) get(id int64) (processed.Record, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.seen[id]
	return r, ok
}

func (d *downstream) count() int      { d.mu.Lock(); defer d.mu.Unlock(); return len(d.seen) }
func (d *downstream) deliveries() int { d.mu.Lock(); defer d.mu.Unlock(); return d.total }

// storedTargets returns, for each of ids stored in raw_events, its
// processed_event_id (0 when none).
func storedTargets(t *testing.T, db *sql.DB, ids []int64) map[int64]int64 {
	t.Helper()
	out := make(map[int64]int64, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		ph := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		func() {
			rows, err := db.Query(fmt.Sprintf(`SELECT id, coalesce(processed_event_id, 0) FROM raw_events WHERE id IN (%s)`, ph), args...)
			require.NoError(t, err)
			defer rows.Close()
			for rows.Next() {
				var id, pid int64
				require.NoError(t, rows.Scan(&id, &pid))
				out[id] = pid
			}
			require.NoError(t, rows.Err())
		}()
	}
	return out
}

// metricValue reads the sum of a metric's samples from a /metrics page.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		require.NoError(t, err, line)
		sum += v
	}
	return sum
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
