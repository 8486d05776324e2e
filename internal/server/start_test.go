package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/datadir"
	"github.com/reflex-ops/reflex/internal/testutil"
)

func TestSecondServerOnTheSameDataDirFails(t *testing.T) {
	cfg := testConfig(t)
	first := start(t, cfg)

	second, err := New(Options{Config: cfg, Stderr: io.Discard})
	require.NoError(t, err)
	err = second.Start(context.Background())
	require.ErrorIs(t, err, datadir.ErrLocked)
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d", os.Getpid()), "names the other process")
	require.Contains(t, err.Error(), cfg.DataDir)
	require.NoError(t, second.Shutdown(context.Background()))

	// The first goes on undisturbed.
	require.NoError(t, first.srv.Ready())
	ids := first.post(seedPayload)
	first.waitEvent(ids[0])
}

// occupied returns an address that something else listens on.
func occupied(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func TestBusyPortFailsBeforeAnythingElse(t *testing.T) {
	for _, which := range []string{"events", "autonomous", "pprof", "nats-listen"} {
		t.Run(which, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.AdminToken = "" // a start that got far would generate and print a key
			busy := occupied(t)
			switch which {
			case "events":
				cfg.EventsAddr = busy
			case "autonomous":
				cfg.AutonomousAddr = busy
			case "pprof":
				cfg.PprofAddr = busy
			case "nats-listen":
				cfg.NATSListen, cfg.NATSToken = busy, "nats-token-0123456789abcdef"
			}
			var stderr bytes.Buffer
			srv, err := New(Options{Config: cfg, Stderr: &stderr})
			require.NoError(t, err)
			err = srv.Start(context.Background())
			require.ErrorContains(t, err, busy, "the error names the address")
			require.ErrorContains(t, err, "address already in use")
			require.Empty(t, stderr.String(), "no admin key was generated")
			_, statErr := os.Stat(filepath.Join(cfg.DataDir, "reflex.db"))
			require.ErrorIs(t, statErr, os.ErrNotExist, "nothing was migrated")
			// The data dir lock was released.
			l, err := datadir.Acquire(cfg.DataDir, nil)
			require.NoError(t, err)
			require.NoError(t, l.Unlock())
		})
	}
}

func TestStartFailureUnwindsWhatStarted(t *testing.T) {
	cfg := testConfig(t)
	cfg.EventsAddr = freeAddr(t)
	cfg.AutonomousAddr = freeAddr(t)
	// Fails after the store, the intake log and the auth are up.
	cfg.AssetsFile = filepath.Join(t.TempDir(), "missing.yaml")
	srv, err := New(Options{Config: cfg, Stderr: io.Discard})
	require.NoError(t, err)
	require.ErrorContains(t, srv.Start(context.Background()), "missing.yaml")

	// Everything was released: the same data dir (its lock, SQLite, the
	// embedded NATS store) and the same ports start again.
	cfg.AssetsFile = ""
	ts := start(t, cfg)
	require.Equal(t, cfg.EventsAddr, ts.srv.EventsAddr().String())
	require.Equal(t, cfg.AutonomousAddr, ts.srv.AutonomousAddr().String())
	ts.waitEvent(ts.post(seedPayload)[0])
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestReadyzNamesAStoppedLane(t *testing.T) {
	ts := start(t, testConfig(t))
	code, _ := readyz(t, ts.events)
	require.Equal(t, http.StatusOK, code)

	// The runners stop while the store and the bus are fine.
	ts.srv.proc.cancel()
	<-ts.srv.proc.done
	code, body := readyz(t, ts.events)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "lane hi stopped")
	require.Contains(t, body, "lane lo stopped")
}

func TestNATSDownNamesTheURL(t *testing.T) {
	cfg := testConfig(t)
	cfg.NATSURL = "nats://reflex:s3cret-password@" + freeAddr(t) // nothing listens there
	srv, err := New(Options{Config: cfg, Stderr: io.Discard})
	require.NoError(t, err)
	err = srv.Start(context.Background())
	require.ErrorIs(t, err, bus.ErrUnavailable)
	require.ErrorContains(t, err, strings.TrimPrefix(cfg.NATSURL, "nats://reflex:s3cret-password@"))
	require.NotContains(t, err.Error(), "s3cret-password")
}

// leaseConfig is an events-only instance on the external NATS, with its
// own data dir and SQLite, on a test stream.
func leaseConfig(t *testing.T, url, stream string) config.Config {
	cfg := testConfig(t)
	cfg.Services = "events"
	cfg.NATSURL = url
	cfg.NATSStream = stream
	cfg.NATSSubject = "reflex.test." + strings.ToLower(stream)
	// The processed stream of the test's own, never the default one that
	// a deployment on the same NATS uses (the tests' cleanups delete it).
	cfg.ProcessedStream = stream + "_P"
	cfg.ProcessedSubject = "reflex.testp." + strings.ToLower(stream)
	cfg.DecisionsStream = stream + "_D"
	cfg.DecisionsSubject = "reflex.testd." + strings.ToLower(stream)
	return cfg
}

func TestSecondProcessingInstanceOnTheStreamFails(t *testing.T) {
	url := testutil.NATSURL(t)
	stream := fmt.Sprintf("REFLEX_TEST_LEASE_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		deleteStream(t, url, stream)
		deleteStream(t, url, "KV_"+bus.LeaseBucket(stream))
		deleteStream(t, url, stream+"_P")
		deleteStream(t, url, stream+"_D")
	})
	first := start(t, leaseConfig(t, url, stream))
	held := gauge(t, first.srv.Registry(), "reflex_processing_lease_held")
	require.Equal(t, 1.0, held)

	cfg2 := leaseConfig(t, url, stream)
	second, err := New(Options{Config: cfg2, Stderr: io.Discard})
	require.NoError(t, err)
	err = second.Start(context.Background())
	require.ErrorIs(t, err, bus.ErrLeaseHeld)
	require.ErrorContains(t, err, first.srv.cfg.DataDir, "names the holder")
	require.ErrorContains(t, err, fmt.Sprintf("pid %d", os.Getpid()))
	require.NoError(t, second.Shutdown(context.Background()))

	// The first goes on processing.
	first.waitEvent(first.post(seedPayload)[0])

	// A clean stop releases the lease: the other starts at once.
	require.NoError(t, first.srv.Shutdown(context.Background()))
	ts2 := start(t, cfg2)
	ts2.waitEvent(ts2.post(seedPayload)[0])
}

func TestLosingTheLeaseStopsProcessing(t *testing.T) {
	url := testutil.NATSURL(t)
	stream := fmt.Sprintf("REFLEX_TEST_LEASE_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		deleteStream(t, url, stream)
		deleteStream(t, url, "KV_"+bus.LeaseBucket(stream))
		deleteStream(t, url, stream+"_P")
		deleteStream(t, url, stream+"_D")
	})
	cfg := leaseConfig(t, url, stream)
	srv, err := New(Options{Config: cfg, Stderr: io.Discard, LeaseTTL: time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	require.NoError(t, srv.Ready())

	// Another instance holds the key now (as after this one's renewals
	// failed for longer than the TTL).
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.LeaseBucket(stream))
	require.NoError(t, err)
	_, err = kv.Put(ctx, "processing", []byte(`{"holder":"host-b:/data","pid":42}`))
	require.NoError(t, err)

	// Its next renewal (every TTL/3) notices: the runners stop.
	select {
	case <-srv.proc.done:
	case <-time.After(15 * time.Second):
		t.Fatal("processing did not stop after the lease was lost")
	}
	err = srv.Ready()
	require.ErrorContains(t, err, "lane hi stopped: bus: processing lease lost to host-b:/data")
	require.Equal(t, 0.0, gauge(t, srv.Registry(), "reflex_processing_lease_held"))
	require.NoError(t, srv.Shutdown(context.Background()), "a lost lease is not a shutdown error")
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestSecondInstanceOnTheEmbeddedListenerFails(t *testing.T) {
	cfg := testConfig(t)
	cfg.NATSListen, cfg.NATSToken = "127.0.0.1:0", "nats-token-0123456789abcdef"
	first := start(t, cfg)
	url := first.srv.bus.ClientURL()
	require.NotEmpty(t, url)

	cfg2 := testConfig(t)
	cfg2.Services = "events"
	cfg2.NATSURL = strings.Replace(url, "nats://", "nats://"+cfg.NATSToken+"@", 1)
	second, err := New(Options{Config: cfg2, Stderr: io.Discard})
	require.NoError(t, err)
	err = second.Start(context.Background())
	require.ErrorIs(t, err, bus.ErrLeaseHeld)
	require.ErrorContains(t, err, cfg.DataDir)
	require.NoError(t, second.Shutdown(context.Background()))
	first.waitEvent(first.post(seedPayload)[0])
}
