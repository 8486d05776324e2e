package derived

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/intake"
)

// TestEmitThroughIntake emits derived events through a real intake log and
// reads them back as webhook payloads of source "reflex", on the lane of
// their severity, rate limited per event type.
func TestEmitThroughIntake(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	reg := prometheus.NewRegistry()
	in, err := intake.New(intake.Options{Bus: b, IDs: event.NewIDGen(1, nil), Registerer: reg})
	require.NoError(t, err)
	sub, err := in.NewSubmitter(intake.SubmitterOptions{Mode: intake.Dropping})
	require.NoError(t, err)
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	em, err := New(Options{Submitter: sub, Rate: 1, Burst: 2, Now: func() time.Time { return now }, Registerer: reg})
	require.NoError(t, err)

	at := now.Add(-time.Minute)
	require.True(t, em.Emit(Event{Type: TypeAnomaly, Severity: event.High, Host: "DB-01", Message: "event rate of db-01 is anomalous",
		Metadata: map[string]any{"anomaly_score": 0.97}, At: at}))
	require.True(t, em.Emit(Event{Type: TypeAnomaly, Host: "db-01", Message: "second"}))
	require.False(t, em.Emit(Event{Type: TypeAnomaly, Host: "db-01", Message: "third: over the burst"}))
	require.True(t, em.Emit(Event{Type: TypeNewLogPattern, Host: "web-01", Message: "a new template"}), "each type has its own limit")
	require.False(t, em.Emit(Event{Type: TypeAnomaly}), "no message")
	require.NoError(t, sub.Close(ctx))
	require.False(t, em.Emit(Event{Type: TypeNewLogPattern, Message: "after close"}))

	require.Equal(t, 2.0, testutil.ToFloat64(em.emitted.WithLabelValues(TypeAnomaly)))
	require.Equal(t, 1.0, testutil.ToFloat64(em.emitted.WithLabelValues(TypeNewLogPattern)))
	require.Equal(t, 1.0, testutil.ToFloat64(em.dropped.WithLabelValues(TypeAnomaly, "rate_limited")))
	require.Equal(t, 1.0, testutil.ToFloat64(em.dropped.WithLabelValues(TypeAnomaly, "invalid")))
	require.Equal(t, 1.0, testutil.ToFloat64(em.dropped.WithLabelValues(TypeNewLogPattern, "closed")))

	// The high one went to the critical lane, the info ones to the low lane.
	read := func(lane bus.Lane, n int) []webhook.Payload {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		c, err := b.Consume(cctx, lane, bus.ConsumeOptions{})
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close()) }()
		var out []webhook.Payload
		for len(out) < n {
			msgs, err := c.Next(cctx)
			require.NoError(t, err)
			for _, m := range msgs {
				var env intake.Envelope
				require.NoError(t, json.Unmarshal(m.Data, &env))
				require.Equal(t, event.SourceReflex, env.SourceType)
				for _, it := range env.Events {
					require.Equal(t, "reflex", it.SourceSystem)
					p, err := webhook.Parse(it.Data)
					require.NoError(t, err)
					out = append(out, p)
				}
				require.NoError(t, m.Ack())
			}
		}
		return out
	}
	hi := read(bus.LaneHi, 1)
	require.Equal(t, "anomaly", hi[0].EventType)
	require.Equal(t, event.High, hi[0].Severity)
	require.Equal(t, "DB-01", hi[0].Host, "the normalizer lowercases it")
	require.Equal(t, "reflex", hi[0].Source)
	require.True(t, hi[0].Timestamp.Equal(at))
	require.Equal(t, json.Number("0.97"), hi[0].Metadata["anomaly_score"])
	lo := read(bus.LaneLo, 2)
	require.ElementsMatch(t, []string{"second", "a new template"}, []string{lo[0].Message, lo[1].Message})
}
