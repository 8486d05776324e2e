package bus

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readAll consumes the messages of a lane until it has want of them (0:
// until none comes for two seconds) and returns their ids.
func readAll(t *testing.T, b *Bus, lane Lane, want int) map[string]bool {
	t.Helper()
	c := consume(t, b, lane, ConsumeOptions{MaxBatch: 256})
	ids := map[string]bool{}
	for want == 0 || len(ids) < want {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		msgs, err := c.Next(ctx)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return ids
		}
		for _, m := range msgs {
			ids[m.MsgID] = true
			require.NoError(t, m.Ack())
		}
	}
	return ids
}

func TestDurableAcrossRestart(t *testing.T) {
	const n = 200
	tests := []struct {
		name string
		stop func(t *testing.T, b *Bus)
	}{
		{"clean close", func(t *testing.T, b *Bus) { require.NoError(t, b.Close()) }},
		{"server stopped without drain", func(_ *testing.T, b *Bus) {
			// No drain of the connection, no Close: the server goes
			// away under the client.
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
			b.nc.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Open(ctxT(t), Options{DataDir: dir})
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			ctx := ctxT(t)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lane := LaneLo
					if i%5 == 0 {
						lane = LaneHi
					}
					errs <- b.Publish(ctx, lane, strconv.Itoa(i), []byte(fmt.Sprintf(`{"i":%d}`, i)))
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			tt.stop(t, b)

			b2 := openBus(t, Options{DataDir: dir})
			got := readAll(t, b2, LaneHi, n/5)
			for id := range readAll(t, b2, LaneLo, n-n/5) {
				got[id] = true
			}
			require.Len(t, got, n)
			for i := 0; i < n; i++ {
				require.True(t, got[strconv.Itoa(i)], "message %d", i)
			}
		})
	}
}

const killHelperEnv = "REFLEX_BUS_KILL_HELPER_DIR"

// TestKillHelper is not a test: TestAckedSurvivesKill9 runs the test binary
// with this test selected and killHelperEnv set. It publishes until killed
// and prints the id of each acknowledged message.
func TestKillHelper(t *testing.T) {
	dir := os.Getenv(killHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestAckedSurvivesKill9")
	}
	b, err := Open(context.Background(), Options{DataDir: dir})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	data := make([]byte, 2048)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("%d-%d", w, i)
				if err := b.Publish(context.Background(), LaneLo, id, data); err != nil {
					fmt.Println("publish failed:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Println("acked", id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestAckedSurvivesKill9 kills a process that is publishing to the embedded
// bus with SIGKILL and checks that every message it saw acknowledged is in
// the store when the data dir is opened again. (A kill keeps what the
// kernel has; that the data also survives power loss rests on the fsync
// before each acknowledgement, which TestEmbeddedSyncsEveryWrite checks is
// configured.)
func TestAckedSurvivesKill9(t *testing.T) {
	if os.Getenv(killHelperEnv) != "" {
		t.Skip("in the helper process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())

	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "acked "); ok {
			acked[id] = true
		} else if strings.Contains(line, "failed") {
			t.Fatalf("helper: %s", line)
		}
		if !killed && len(acked) >= 300 {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
		}
	}
	require.True(t, killed, "the helper acknowledged only %d messages", len(acked))
	_ = cmd.Wait()

	b := openBus(t, Options{DataDir: dir})
	stored := readAll(t, b, LaneLo, 0)
	missing := 0
	for id := range acked {
		if !stored[id] {
			missing++
		}
	}
	require.Zero(t, missing, "%d of %d acknowledged messages lost (stored %d)", missing, len(acked), len(stored))
	t.Logf("%d acknowledged before the kill, %d stored", len(acked), len(stored))
}

func TestRestartRedeliversUnacknowledgedAtOnce(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(ctxT(t), Options{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	ctx := ctxT(t)
	for i := 0; i < 5; i++ {
		require.NoError(t, b.Publish(ctx, LaneHi, strconv.Itoa(i), []byte("x")))
	}
	c, err := b.Consume(ctx, LaneHi, ConsumeOptions{MaxBatch: 5})
	require.NoError(t, err)
	require.Len(t, collect(t, c, 5, 10*time.Second), 5) // never acknowledged
	// Crash: the server stops under the consumer.
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
	b.nc.Close()

	// AckWait is 60s; the reopened bus delivers them at once.
	b2 := openBus(t, Options{DataDir: dir})
	got := collect(t, consume(t, b2, LaneHi, ConsumeOptions{}), 5, 10*time.Second)
	require.Len(t, got, 5)
	for i, m := range got {
		require.Equal(t, strconv.Itoa(i), m.MsgID)
		require.NoError(t, m.Ack())
	}
}
