package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

var (
	receivedAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	processNow = receivedAt.Add(150 * time.Millisecond)
	baseID     = event.IDAt(receivedAt) + 7
)

// newStage returns the normalize stage with the webhook's normalizer
// registered, as the server builds it.
func newStage(t testing.TB, opts normalize.Options) *normalize.Stage {
	t.Helper()
	opts.Normalizers = map[event.SourceType]normalize.Normalizer{event.SourceWebhook: Normalizer{}}
	n, err := normalize.New(opts)
	require.NoError(t, err)
	return n
}

// rawOf builds the raw event intake would store for a one-event webhook
// body. A body that intake rejects becomes a raw event anyway, as if
// corrupt data had passed intake.
func rawOf(t *testing.T, body []byte) event.Raw {
	t.Helper()
	env := intake.Envelope{Version: 1, BaseID: baseID, ReceivedAt: receivedAt, SourceType: event.SourceWebhook}
	items, rejects, err := Decode("application/json", body, Options{})
	if err == nil && len(items) == 1 && len(rejects) == 0 && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		env.Events = items
	} else {
		var buf bytes.Buffer
		require.NoError(t, json.Compact(&buf, body))
		env.Events = []intake.Item{{SourceSystem: "webhook", Severity: event.Info, Data: buf.Bytes()}}
	}
	raws := env.Raw()
	require.Len(t, raws, 1)
	return raws[0]
}

type normGolden struct {
	Event *event.Event `json:"event,omitempty"`
	// Error is the outcome of a raw event that was not normalized.
	Error string `json:"error,omitempty"`
}

func TestNormalizeGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/normalize/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	n := newStage(t, normalize.Options{})
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			raw := rawOf(t, body)
			b := &pipeline.Batch{Now: processNow, Raw: []event.Raw{raw}}
			require.NoError(t, n.Process(context.Background(), b))

			var got normGolden
			switch {
			case len(b.Events) == 1:
				require.Empty(t, b.Outcomes)
				got.Event = b.Events[0]
				checkNormalized(t, got.Event)
			default:
				require.Empty(t, b.Events)
				o, ok := b.Outcomes[raw.ID]
				require.True(t, ok, "a raw event that is not normalized has an outcome")
				require.True(t, strings.HasPrefix(o.Error, "normalize: "), o.Error)
				require.Zero(t, o.ProcessedEventID)
				got.Error = o.Error
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			require.NoError(t, enc.Encode(got))
			golden := filepath.Join("testdata", "normalize", name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create the golden file")
			require.Equal(t, string(want), buf.String())
		})
	}
}

// adjustedCount reads reflex_normalize_timestamp_adjusted_total{source_type="webhook"}.
func adjustedCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "reflex_normalize_timestamp_adjusted_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "webhook" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// checkNormalized asserts what the store's columns require of an event.
func checkNormalized(t *testing.T, e *event.Event) {
	t.Helper()
	require.NotZero(t, e.ID)
	require.Equal(t, e.ID, e.RawEventID)
	require.True(t, e.Severity.Valid(), "severity %q", e.Severity)
	require.NotEmpty(t, e.EventType)
	require.LessOrEqual(t, utf8.RuneCountInString(e.EventType), 100)
	require.NotEmpty(t, e.SourceSystem)
	require.LessOrEqual(t, utf8.RuneCountInString(e.SourceSystem), 100)
	require.LessOrEqual(t, utf8.RuneCountInString(e.SourceHost), 255)
	require.Equal(t, strings.ToLower(e.SourceHost), e.SourceHost)
	require.LessOrEqual(t, utf8.RuneCountInString(e.SourceService), 100)
	require.NotEmpty(t, e.Title)
	require.LessOrEqual(t, utf8.RuneCountInString(e.Title), 500)
	for _, s := range []string{e.Title, e.Description, e.SourceHost, e.SourceService, e.EventType, e.SourceSystem} {
		require.True(t, utf8.ValidString(s))
		require.NotContains(t, s, "\x00")
	}
	seen := map[string]bool{}
	for _, tag := range e.Tags {
		require.NotEmpty(t, tag)
		require.LessOrEqual(t, utf8.RuneCountInString(tag), 50)
		require.False(t, seen[tag], "duplicate tag %q", tag)
		seen[tag] = true
	}
	require.False(t, e.OccurredAt.IsZero())
	require.False(t, e.OccurredAt.Before(e.ReceivedAt.Add(-normalize.DefaultMaxAge)), "occurred_at %v too old", e.OccurredAt)
	require.False(t, e.OccurredAt.After(e.ReceivedAt.Add(normalize.DefaultMaxFuture)), "occurred_at %v in the future", e.OccurredAt)
	require.Equal(t, 1, e.OccurrenceCount)
	require.Equal(t, e.ReceivedAt, e.LastSeenAt)
	require.Equal(t, event.Fingerprint(e), e.Fingerprint)
	_, err := json.Marshal(e)
	require.NoError(t, err)
}

func TestSeverityWords(t *testing.T) {
	n := newStage(t, normalize.Options{})
	families := map[event.Severity][]any{
		event.Critical: {"critical", "CRIT", "fatal", "emergency", "emerg", "alert", "panic", "disaster", "P1", "sev1", "SEV-1", "down", 0, 1, 2, "0", "2"},
		event.High:     {"high", "error", "ERR", "major", "severe", "p2", "sev2", "sev-2", "failure", "failed", 3, "3"},
		event.Medium:   {"medium", "warning", "warn", "moderate", "average", "p3", "sev3", "sev-3", "minor", "degraded", 4},
		event.Low:      {"low", "notice", "p4", "sev4", "sev-4", "unknown", 5},
		event.Info:     {"info", "informational", "information", "debug", "trace", "ok", "resolved", "clear", "cleared", "normal", "p5", "sev5", "sev-5", "none", "up", 6, 7, "", nil},
	}
	for want, words := range families {
		for _, w := range words {
			t.Run(fmt.Sprintf("%v=%s", w, want), func(t *testing.T) {
				body, err := json.Marshal(map[string]any{"message": "m", "severity": w})
				require.NoError(t, err)
				e, err := n.Normalize(event.Raw{ID: 1, SourceSystem: "webhook", SourceType: event.SourceWebhook, Data: body, ReceivedAt: receivedAt}, processNow)
				require.NoError(t, err)
				require.Equal(t, want, e.Severity)
			})
		}
	}
}

func TestTimestampPolicy(t *testing.T) {
	tests := []struct {
		name      string
		opts      normalize.Options
		ts        time.Time
		wantKept  bool
		wantDelta time.Duration // expected occurred_at - received_at when kept
	}{
		{"now", normalize.Options{}, receivedAt, true, 0},
		{"an hour ago", normalize.Options{}, receivedAt.Add(-time.Hour), true, -time.Hour},
		{"exactly max age", normalize.Options{}, receivedAt.Add(-normalize.DefaultMaxAge), true, -normalize.DefaultMaxAge},
		{"just older than max age", normalize.Options{}, receivedAt.Add(-normalize.DefaultMaxAge - time.Microsecond), false, 0},
		{"exactly max future", normalize.Options{}, receivedAt.Add(normalize.DefaultMaxFuture), true, normalize.DefaultMaxFuture},
		{"just beyond max future", normalize.Options{}, receivedAt.Add(normalize.DefaultMaxFuture + time.Microsecond), false, 0},
		{"sub-microsecond is cut", normalize.Options{}, receivedAt.Add(-time.Second + 999), true, -time.Second},
		{"custom max age", normalize.Options{MaxAge: 7 * 24 * time.Hour}, receivedAt.Add(-8 * 24 * time.Hour), false, 0},
		{"custom max age keeps", normalize.Options{MaxAge: 7 * 24 * time.Hour}, receivedAt.Add(-6 * 24 * time.Hour), true, -6 * 24 * time.Hour},
		{"custom max future", normalize.Options{MaxFuture: time.Hour}, receivedAt.Add(30 * time.Minute), true, 30 * time.Minute},
		{"negative options are defaults", normalize.Options{MaxAge: -1, MaxFuture: -1}, receivedAt.Add(4 * time.Minute), true, 4 * time.Minute},
		{"year 1", normalize.Options{}, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false, 0},
		{"year 9999", normalize.Options{}, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			tt.opts.Registerer = reg
			n := newStage(t, tt.opts)
			ts := tt.ts.Format(time.RFC3339Nano)
			body := []byte(fmt.Sprintf(`{"message":"m","timestamp":%q}`, ts))
			b := &pipeline.Batch{Now: processNow, Raw: []event.Raw{{ID: 1, SourceSystem: "webhook", SourceType: event.SourceWebhook, Data: body, ReceivedAt: receivedAt}}}
			require.NoError(t, n.Process(context.Background(), b))
			require.Len(t, b.Events, 1)
			e := b.Events[0]
			if tt.wantKept {
				require.Equal(t, receivedAt.Add(tt.wantDelta), e.OccurredAt)
				require.NotContains(t, e.Tags, normalize.TagTimestampAdjusted)
				require.NotContains(t, e.Data, normalize.DataOriginalTimestamp)
				require.Zero(t, adjustedCount(t, reg))
				return
			}
			require.Equal(t, receivedAt, e.OccurredAt)
			require.Contains(t, e.Tags, normalize.TagTimestampAdjusted)
			require.Equal(t, ts, e.Data[normalize.DataOriginalTimestamp])
			require.Equal(t, 1.0, adjustedCount(t, reg))
		})
	}
}

func TestNormalizeMissingReceivedAt(t *testing.T) {
	e, err := newStage(t, normalize.Options{}).Normalize(event.Raw{ID: baseID, SourceSystem: "webhook", SourceType: event.SourceWebhook, Data: json.RawMessage(`{"message":"m"}`)}, processNow)
	require.NoError(t, err)
	require.Equal(t, event.TimeOfID(baseID), e.ReceivedAt)
	require.Equal(t, e.ReceivedAt, e.OccurredAt)
}

func TestSourceSystem(t *testing.T) {
	n := newStage(t, normalize.Options{})
	tests := []struct{ raw, data, want string }{
		{"nagios", `{"message":"m","source":"nagios"}`, "nagios"},
		{"", `{"message":"m","source":"zabbix"}`, "zabbix"},
		{"", `{"message":"m"}`, "webhook"},
		{strings.Repeat("s", 101), `{"message":"m","source":"short"}`, "short"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			e, err := n.Normalize(event.Raw{ID: 1, SourceSystem: tt.raw, SourceType: event.SourceWebhook, Data: json.RawMessage(tt.data), ReceivedAt: receivedAt}, processNow)
			require.NoError(t, err)
			require.Equal(t, tt.want, e.SourceSystem)
		})
	}
}

func TestRepeatsShareFingerprint(t *testing.T) {
	n := newStage(t, normalize.Options{})
	norm := func(data string) *event.Event {
		e, err := n.Normalize(event.Raw{ID: 1, SourceSystem: "prom", SourceType: event.SourceWebhook, Data: json.RawMessage(data), ReceivedAt: receivedAt}, processNow)
		require.NoError(t, err)
		return e
	}
	a := norm(`{"message":"CPU usage 97%","host":"Web-01","severity":"critical","timestamp":"2026-11-01T11:59:00Z"}`)
	b := norm(`{"message":"CPU usage 98.5%","host":"web-01 ","severity":"P1","metadata":{"x":1}}`)
	c := norm(`{"message":"CPU usage 97%","host":"web-02","severity":"critical"}`)
	require.Equal(t, a.Fingerprint, b.Fingerprint, "host case, numbers, severity synonyms and metadata do not matter")
	require.NotEqual(t, a.Fingerprint, c.Fingerprint)
}

// FuzzNormalize checks the contract between intake and the normalizer: every
// event the webhook decoder accepts normalizes without error into an event
// the store's columns can hold, with the host intake partitioned it by,
// whatever the body.
func FuzzNormalize(f *testing.F) {
	f.Add([]byte(`{"source":"monitoring_system_name","event_type":"threshold_breach","severity":"critical","host":"web-server-01","service":"nginx","message":"CPU usage exceeded 95%","timestamp":"2024-12-20T10:30:00Z","metadata":{"cpu_usage":97.5,"threshold":95.0,"duration":"5m"}}`))
	f.Add([]byte(`[{"message":"a","tags":["X","x"," "]},{"message":"b","title":"t","description":"d","timestamp":1793534400000}]`))
	f.Add([]byte(`{"message":"éééé🚀","host":" WEB ","extra":{"n":1e300},"timestamp":"9999-12-31T23:59:59Z"}`))
	n := newStage(f, normalize.Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		items, _, err := Decode("application/json", body, Options{MaxEvents: 20})
		if err != nil || len(items) == 0 {
			return
		}
		env := intake.Envelope{Version: 1, BaseID: baseID, ReceivedAt: receivedAt, SourceType: event.SourceWebhook, Events: items}
		b := &pipeline.Batch{Now: processNow, Raw: env.Raw()}
		if err := n.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(b.Outcomes) != 0 {
			t.Fatalf("accepted events failed to normalize: %v", b.Outcomes)
		}
		if len(b.Events) != len(items) {
			t.Fatalf("%d events from %d items", len(b.Events), len(items))
		}
		for i, e := range b.Events {
			if e.ID != baseID+int64(i) {
				t.Fatalf("event %d has id %d: order lost", i, e.ID)
			}
			if e.SourceHost != items[i].Host {
				t.Fatalf("event %d: intake partitions by host %q, the event's is %q", i, items[i].Host, e.SourceHost)
			}
			checkNormalized(t, e)
		}
	})
}

// BenchmarkNormalize normalizes a batch of 100 seed-like webhook events.
func BenchmarkNormalize(b *testing.B) {
	const size = 100
	raws := make([]event.Raw, size)
	for i := range raws {
		raws[i] = event.Raw{
			ID: int64(i + 1), SourceSystem: "prometheus", SourceType: event.SourceWebhook, ReceivedAt: receivedAt,
			Data: json.RawMessage(fmt.Sprintf(`{"source":"prometheus","event_type":"threshold_breach","severity":"critical","host":"web-server-%02d","service":"nginx","message":"CPU usage exceeded 95%% (%d)","timestamp":"2026-11-01T11:59:00Z","metadata":{"cpu_usage":97.5,"threshold":95.0,"duration":"5m"},"tags":["prod","web"]}`, i%50, i)),
		}
	}
	n := newStage(b, normalize.Options{})
	b.ReportAllocs()
	for b.Loop() {
		batch := &pipeline.Batch{Now: processNow, Raw: raws}
		if err := n.Process(context.Background(), batch); err != nil || len(batch.Events) != size {
			b.Fatalf("process: %v", err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}
