package severity_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/correlate"
	"github.com/reflex-ops/reflex/internal/enrich"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/noise"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/severity"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// stages builds the processing stages after normalize, in pipeline order.
func stages(t *testing.T) (pipeline.MultiStage, *enrich.Inventory) {
	t.Helper()
	inv := enrich.NewInventory()
	inv.Set(store.Asset{Host: "web-server-01", Environment: "production", Criticality: "critical", Team: "web", Service: "nginx", Dependencies: []string{"db-01"}})
	inv.Set(store.Asset{Host: "db-01", Environment: "production", Criticality: "critical", Team: "data", Service: "postgresql"})
	en, err := enrich.New(inv, enrich.Options{})
	require.NoError(t, err)
	dd, err := noise.NewDedup(noise.Options{})
	require.NoError(t, err)
	rl, err := noise.NewRateLimiter(noise.Options{Rate: 1000, Burst: 1000}, dd)
	require.NoError(t, err)
	co, err := correlate.New(correlate.Options{})
	require.NoError(t, err)
	sc, err := severity.New(severity.Options{})
	require.NoError(t, err)
	return pipeline.MultiStage{en, rl, dd, co, sc}, inv
}

func normalized(id int64, host string, sev event.Severity, title string) *event.Event {
	e := &event.Event{ID: id, RawEventID: id, EventType: "threshold_breach", Severity: sev,
		SourceSystem: "monitoring_system_name", SourceType: event.SourceWebhook, SourceHost: host,
		Title: title, OccurredAt: t0, ReceivedAt: t0, OccurrenceCount: 1}
	e.Fingerprint = event.Fingerprint(e)
	return e
}

// TestStages runs the seed's example through enrich, noise, correlate and
// severity.
func TestStages(t *testing.T) {
	ms, _ := stages(t)
	b := &pipeline.Batch{Now: t0, Events: []*event.Event{
		normalized(1, "db-01", event.Critical, "Connections refused"),
		normalized(2, "web-server-01", event.High, "CPU usage exceeded 95%"),
		normalized(3, "web-server-01", event.High, "CPU usage exceeded 97%"),
	}}
	require.NoError(t, ms.Process(context.Background(), b))
	require.Len(t, b.Events, 2)
	web := b.Events[1]
	require.Equal(t, int64(2), web.ID)
	require.Equal(t, "nginx", web.SourceService)
	require.Equal(t, 2, web.OccurrenceCount, "the repeat was folded")
	require.Equal(t, int64(1), web.ParentEventID)
	require.Equal(t, event.Critical, web.Severity, "high on a critical asset")
	// 65 high + 15 critical asset + 3 two occurrences + 5 correlated.
	require.Equal(t, 88, web.Priority)
	require.Contains(t, web.Tags, "escalated")
	require.Equal(t, map[int64]pipeline.Outcome{3: {ProcessedEventID: 2}}, b.Outcomes)
	require.Len(t, b.Correlations, 1)
	require.Equal(t, event.CorrelationCausal, b.Correlations[0].Type)
	require.Equal(t, "web-server-01 depends on db-01, which has an open critical event 1 (\"Connections refused\", occurred 2026-11-27T10:00:00Z); 1 dependent event", b.Correlations[0].Reason)
}

// TestStagesPartitionsAndLanes runs the stages as the runner does: each
// batch split by host into W sub-batches processed concurrently, with two
// lanes (critical and high, the rest) at once, while the inventory changes.
// Run with -race. Every event is either passed on or has an outcome.
func TestStagesPartitionsAndLanes(t *testing.T) {
	const W = 3
	ms, inv := stages(t)
	hosts := []string{"web-server-01", "db-01", "web-02", "cache-01"}
	var wg sync.WaitGroup
	for lane, sevs := range [][]event.Severity{{event.Critical, event.High}, {event.Medium, event.Low, event.Info}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 20 {
				now := t0.Add(time.Duration(n) * 20 * time.Second)
				subs := make([]*pipeline.Batch, W)
				for i := range subs {
					subs[i] = &pipeline.Batch{Now: now}
				}
				total := 0
				for i := range 30 {
					id := int64(lane*1_000_000 + n*1000 + i)
					host := hosts[i%len(hosts)]
					e := normalized(id, host, sevs[i%len(sevs)], fmt.Sprintf("problem %d", i%5))
					p := pipeline.Partition(host, W)
					subs[p].Events = append(subs[p].Events, e)
					total++
				}
				var pw sync.WaitGroup
				for _, sb := range subs {
					pw.Add(1)
					go func() {
						defer pw.Done()
						require.NoError(t, ms.Process(context.Background(), sb))
					}()
				}
				pw.Wait()
				got := 0
				for _, sb := range subs {
					got += len(sb.Events) + len(sb.Outcomes)
					for _, e := range sb.Events {
						require.NotEmpty(t, e.CorrelationID)
						require.NotNil(t, e.Scoring)
					}
				}
				require.Equal(t, total, got)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			inv.Set(store.Asset{Host: "web-02", Criticality: "high", Dependencies: []string{"db-01", "cache-01"}, Team: fmt.Sprint(i)})
		}
	}()
	wg.Wait()
}

// goldenBatch runs representative events through enrich, noise, correlate
// and severity and returns the batch they leave.
func goldenBatch(t *testing.T) *pipeline.Batch {
	t.Helper()
	inv := enrich.NewInventory()
	inv.Set(store.Asset{Host: "web-server-01", Environment: "production", Criticality: "critical", Owner: "alice@example.com",
		Team: "web & ops", Service: "nginx", Dependencies: []string{"db-01", "Cache-01"}, Tags: []string{"frontend"}})
	inv.Set(store.Asset{Host: "db-01", Environment: "production", Criticality: "high", Team: "data", Service: "postgresql"})
	inv.Set(store.Asset{Host: "bare"})
	en, err := enrich.New(inv, enrich.Options{})
	require.NoError(t, err)
	dd, err := noise.NewDedup(noise.Options{})
	require.NoError(t, err)
	co, err := correlate.New(correlate.Options{})
	require.NoError(t, err)
	sc, err := severity.New(severity.Options{})
	require.NoError(t, err)
	ms := pipeline.MultiStage{en, dd, co, sc}

	withData := func(e *event.Event) *event.Event {
		// As the normalizer leaves it: numbers are json.Number, as sent.
		e.Data = map[string]any{
			"metadata": map[string]any{"cpu_usage": json.Number("97.5"), "threshold": json.Number("95"),
				"big": json.Number("12345678901234567890"), "note": "<b>über</b> & \u2028 ✓", "nested": []any{true, nil, "x"}},
			"message": "CPU <95%> & rising",
		}
		return e
	}
	b := &pipeline.Batch{Now: t0, Events: []*event.Event{
		normalized(1, "db-01", event.Critical, "Connections refused"),
		withData(normalized(2, "web-server-01", event.High, "CPU usage exceeded 95%")),
		withData(normalized(3, "web-server-01", event.High, "CPU usage exceeded 95%")),
		normalized(4, "bare", event.Low, "Disk 80% full"),
		normalized(5, "unknown-host", event.Info, "Backup done"),
		normalized(6, "web-server-01", event.Severity("bogus"), "Odd one"),
	}}
	require.NoError(t, ms.Process(context.Background(), b))
	return b
}

// TestStagesGolden runs representative events through enrich, noise,
// correlate and severity and compares, for each event passed on, the JSON
// the API writes for it (encoding/json without HTML escaping, as
// api.writeJSON does) and the event_data bytes the stores keep
// (MarshalData) with testdata/stages. The golden files were written by the
// code before the stage results became typed fields of the event, so they
// prove that neither the API's answer nor the stored bytes changed.
func TestStagesGolden(t *testing.T) {
	b := goldenBatch(t)
	var api, data bytes.Buffer
	enc := json.NewEncoder(&api)
	enc.SetEscapeHTML(false)
	for _, e := range b.Events {
		require.NoError(t, enc.Encode(e))
		d, err := e.MarshalData()
		require.NoError(t, err)
		data.Write(d)
		data.WriteByte('\n')
	}
	for name, got := range map[string][]byte{"api_events.golden.jsonl": api.Bytes(), "event_data.golden.jsonl": data.Bytes()} {
		file := filepath.Join("testdata", "stages", name)
		if flag.Lookup("update").Value.String() == "true" { // declared in severity_test.go
			require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
			require.NoError(t, os.WriteFile(file, got, 0o644))
		}
		want, err := os.ReadFile(file)
		require.NoError(t, err, "run go test -update to create the golden file")
		require.Equal(t, string(want), string(got), name)
	}
}

// TestStagesStoreRoundTrip stores what the stages produced in SQLite,
// checks the event_data column holds the golden bytes, reads the events
// back with their typed results, and warms a correlator from them.
func TestStagesStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	b := goldenBatch(t)
	path := filepath.Join(t.TempDir(), "reflex.db")
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	require.NoError(t, st.Migrate(ctx))
	sb := &store.Batch{Correlations: b.Correlations}
	for _, e := range b.Events {
		sb.Raw = append(sb.Raw, event.Raw{ID: e.ID, SourceSystem: e.SourceSystem, SourceType: e.SourceType,
			Data: json.RawMessage(`{}`), ReceivedAt: e.ReceivedAt, Processed: true, ProcessedEventID: e.ID})
		sb.New = append(sb.New, *e)
	}
	require.NoError(t, st.WriteBatch(ctx, sb))

	golden, err := os.ReadFile(filepath.Join("testdata", "stages", "event_data.golden.jsonl"))
	require.NoError(t, err)
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	require.NoError(t, err)
	defer db.Close()
	var column bytes.Buffer
	for _, e := range b.Events {
		var data string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT event_data FROM processed_events WHERE id = ?`, e.ID).Scan(&data))
		column.WriteString(data + "\n")
	}
	require.Equal(t, string(golden), column.String(), "the stored bytes")

	var recent []event.Event
	for _, want := range b.Events {
		got, err := st.Event(ctx, want.ID)
		require.NoError(t, err)
		require.Equal(t, want.Asset, got.Asset, "event %d", want.ID)
		require.Equal(t, want.Scoring, got.Scoring, "event %d", want.ID)
		recent = append(recent, *got)
	}

	// A correlator warmed from the stored events (a restart) continues
	// their groups: web-server-01's next event joins its group and gets
	// db-01's critical event as parent.
	co, err := correlate.New(correlate.Options{})
	require.NoError(t, err)
	co.Warm(recent)
	next := normalized(7, "web-server-01", event.High, "CPU usage exceeded 99%")
	next.Asset = recent[1].Asset
	nb := &pipeline.Batch{Now: t0.Add(time.Minute), Events: []*event.Event{next}}
	require.NoError(t, co.Process(ctx, nb))
	require.Equal(t, b.Events[1].CorrelationID, next.CorrelationID)
	require.Equal(t, int64(1), next.ParentEventID)
	// Event 2 was stored as critical, raised by the scorer from high: the
	// correlator saw it as high (it runs before the scorer), and so does
	// Warm, which reads the source severity from the stored Scoring.
	require.Equal(t, event.Critical, recent[1].Severity)
	dep := normalized(8, "frontend-01", event.Low, "Slow pages")
	dep.Asset = &event.Asset{Dependencies: []string{"web-server-01"}}
	nb = &pipeline.Batch{Now: t0.Add(time.Minute), Events: []*event.Event{dep}}
	require.NoError(t, co.Process(ctx, nb))
	require.Zero(t, dep.ParentEventID, "web-server-01 has no open critical event")
}
