package severity

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden scores each testdata/<name>.json ({"event", "correlations"})
// and compares the scored event with testdata/<name>.golden.json.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") {
			continue
		}
		n++
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			var in struct {
				Event        event.Event         `json:"event"`
				Correlations []event.Correlation `json:"correlations"`
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&in))
			s, err := New(Options{})
			require.NoError(t, err)
			b := &pipeline.Batch{Now: in.Event.ReceivedAt, Events: []*event.Event{&in.Event}, Correlations: in.Correlations}
			require.NoError(t, s.Process(context.Background(), b))
			out, err := json.MarshalIndent(b.Events[0], "", "  ")
			require.NoError(t, err)
			out = append(out, '\n')
			golden := strings.TrimSuffix(file, ".json") + ".golden.json"
			if *update {
				require.NoError(t, os.WriteFile(golden, out, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create the golden file")
			require.Equal(t, string(want), string(out))
		})
	}
	require.Positive(t, n)
}

func TestScore(t *testing.T) {
	tests := []struct {
		name        string
		sev         event.Severity
		criticality string
		count       int
		correlated  bool
		want        int
		wantSev     event.Severity
	}{
		{"critical base", event.Critical, "", 1, false, 80, event.Critical},
		{"high base", event.High, "", 1, false, 65, event.High},
		{"medium base", event.Medium, "", 1, false, 50, event.Medium},
		{"low base", event.Low, "", 1, false, 30, event.Low},
		{"info base", event.Info, "", 1, false, 10, event.Info},
		{"high on critical asset is critical", event.High, "critical", 1, false, 80, event.Critical},
		{"high on high asset stays high", event.High, "high", 1, false, 75, event.High},
		{"high on high asset, repeated, is critical", event.High, "high", 4, false, 81, event.Critical},
		{"medium on critical asset is high", event.Medium, "critical", 1, false, 65, event.High},
		{"medium at most one level up", event.Medium, "critical", 1000, true, 80, event.High},
		{"low on critical asset stays low", event.Low, "critical", 1, false, 45, event.Low},
		{"low can reach medium", event.Low, "critical", 2, true, 53, event.Medium},
		{"info is never raised", event.Info, "critical", 1000, true, 40, event.Info},
		{"critical on low asset stays critical", event.Critical, "low", 1, false, 75, event.Critical},
		{"clamped at 100", event.Critical, "critical", 1000, true, 100, event.Critical},
		{"unknown criticality ignored", event.Medium, "vital", 1, false, 50, event.Medium},
		{"two occurrences add 3", event.Low, "", 2, false, 33, event.Low},
		{"eight occurrences add 9", event.Low, "", 8, false, 39, event.Low},
		{"eleven occurrences add 10", event.Low, "", 11, false, 40, event.Low},
		{"zero count counts as one", event.Low, "", 0, false, 30, event.Low},
		{"unknown severity scored as info", event.Severity("bogus"), "", 1, false, 10, event.Info},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event.Event{ID: 1, Severity: tt.sev, SourceHost: "h", OccurrenceCount: tt.count}
			if tt.criticality != "" {
				e.Asset = &event.Asset{Criticality: tt.criticality}
			}
			why := ""
			if tt.correlated {
				why = "correlated"
			}
			raised := Score(e, why)
			require.Equal(t, tt.want, e.Priority)
			require.Equal(t, tt.wantSev, e.Severity)
			sc := e.Scoring
			require.NotNil(t, sc)
			require.Nil(t, e.Data, "the scoring is not in Data")
			require.Equal(t, tt.want, sc.Priority)
			require.Equal(t, tt.wantSev, sc.Severity)
			wantSrc := tt.sev
			if !wantSrc.Valid() {
				wantSrc = event.Info
			}
			require.Equal(t, wantSrc, sc.SourceSeverity)
			if tt.sev.Valid() && tt.wantSev != tt.sev {
				require.Equal(t, tt.wantSev, raised)
				require.Contains(t, e.Tags, EscalatedTag)
				require.Equal(t, 1, tt.wantSev.Rank()-tt.sev.Rank(), "at most one level")
			} else {
				require.Empty(t, raised)
				require.NotContains(t, e.Tags, EscalatedTag)
			}
			// The weights of the factors add up to the priority, before
			// clamping.
			sum := 0
			for _, f := range sc.Factors {
				sum += f.Weight
			}
			require.Equal(t, tt.want, max(0, min(100, sum)))
		})
	}
}

func TestProcessCorrelation(t *testing.T) {
	s, err := New(Options{})
	require.NoError(t, err)
	mk := func(id int64, corr string, parent int64) *event.Event {
		return &event.Event{ID: id, Severity: event.Low, SourceHost: "h", OccurrenceCount: 1, CorrelationID: corr, ParentEventID: parent}
	}
	b := &pipeline.Batch{
		Now: time.Now(),
		Events: []*event.Event{
			mk(1, "g1", 0), // in a group with a row
			mk(2, "g2", 0), // alone in its group
			mk(3, "g2", 9), // has a parent
			mk(4, "g3", 0), // parent of a causal group
		},
		Correlations: []event.Correlation{
			{CorrelationID: "g1", Type: event.CorrelationTimeBased, PrimaryEventID: 1, RelatedEventIDs: []int64{7}},
			{CorrelationID: "c1", Type: event.CorrelationCausal, PrimaryEventID: 4, RelatedEventIDs: []int64{8}},
		},
	}
	require.NoError(t, s.Process(context.Background(), b))
	require.Equal(t, []int{35, 30, 35, 35}, []int{b.Events[0].Priority, b.Events[1].Priority, b.Events[2].Priority, b.Events[3].Priority})
}

// TestConcurrent scores on two goroutines; the Scorer has no state, but
// shares its metrics. Run with -race.
func TestConcurrent(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, err := New(Options{Registerer: reg})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				e := &event.Event{ID: int64(i), Severity: event.High, SourceHost: "web-01", OccurrenceCount: 1}
				e.Asset = &event.Asset{Criticality: "critical"}
				require.NoError(t, s.Process(context.Background(), &pipeline.Batch{Events: []*event.Event{e}}))
			}
		}()
	}
	wg.Wait()
	var m dto.Metric
	require.NoError(t, s.escalated.WithLabelValues("critical").Write(&m))
	require.Equal(t, 200.0, m.GetCounter().GetValue())

	s2, err := New(Options{Registerer: reg})
	require.NoError(t, err)
	require.Same(t, s.escalated, s2.escalated, "a second scorer shares the registered counter")
}
