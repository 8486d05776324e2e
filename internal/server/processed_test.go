package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/processed"
)

func TestEmbeddedProcessedStream(t *testing.T) {
	runProcessed(t, start(t, testConfig(t)))
}

// runProcessed checks that what the pipeline stores reaches a downstream
// consumer of the processed stream: a new event, then a repeat of it.
func runProcessed(t *testing.T, ts *testServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := processed.Consume(ctx, ts.srv.processed.stream, processed.ConsumerOptions{Name: "server-test", Wait: 100 * time.Millisecond})
	require.NoError(t, err)
	got := make(chan processed.Record, 100)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(runCtx, func(_ context.Context, recs []processed.Record) error {
			for _, r := range recs {
				got <- r
			}
			return nil
		})
	}()
	defer func() { stop(); require.NoError(t, <-done) }()

	payload := strings.Replace(seedPayload, "web-server-01", "processed-host-01", 1)
	first := ts.post(payload)[0]
	second := ts.post(payload)[0] // a repeat: folded into the first
	want := map[int64]processed.Kind{first: processed.KindNew, second: processed.KindRepeat}
	for len(want) > 0 {
		select {
		case r := <-got:
			kind, ok := want[r.RawEventID]
			if !ok {
				continue
			}
			require.Equal(t, kind, r.Kind)
			require.Equal(t, first, r.EventID)
			require.NotNil(t, r.Event)
			require.Equal(t, "processed-host-01", r.Event.SourceHost)
			require.Equal(t, "threshold_breach", r.Event.EventType)
			require.NotEmpty(t, r.Event.Data)
			if kind == processed.KindRepeat {
				require.Equal(t, 2, r.OccurrenceCount)
			}
			delete(want, r.RawEventID)
		case <-ctx.Done():
			t.Fatalf("records not received: %v", want)
		}
	}

	resp, err := http.Get(ts.events + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, m := range []string{"reflex_processed_published_records_total", "reflex_processed_published_messages_total", "reflex_processed_stream_bytes"} {
		require.Contains(t, string(body), m)
	}
}

func TestCrashHookValue(t *testing.T) {
	s := &Server{}
	s.log = slog.New(slog.DiscardHandler)
	h, err := crashHook("", s)
	require.NoError(t, err)
	require.Nil(t, h, "unset: no hook")
	for _, v := range []string{"0", "-1", "x"} {
		_, err := crashHook(v, s)
		require.Error(t, err, v)
	}
}
