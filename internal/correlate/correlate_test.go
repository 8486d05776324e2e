package correlate

import (
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
	"github.com/reflex-ops/reflex/internal/keyed"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// ev is an event as the enricher hands it on; at is its receipt time as
// an offset from t0.
func ev(id int64, host string, sev event.Severity, at time.Duration, deps ...string) *event.Event {
	e := &event.Event{ID: id, RawEventID: id, EventType: "alert", Severity: sev, SourceSystem: "prom",
		SourceType: event.SourceWebhook, SourceHost: host, Title: "event " + string(sev),
		OccurredAt: t0.Add(at - time.Second), ReceivedAt: t0.Add(at), OccurrenceCount: 1}
	if deps != nil {
		e.Asset = &event.Asset{Dependencies: deps}
	}
	return e
}

func run(t *testing.T, c *Correlator, now time.Duration, events ...*event.Event) *pipeline.Batch {
	t.Helper()
	b := &pipeline.Batch{Now: t0.Add(now), Events: events}
	require.NoError(t, c.Process(context.Background(), b))
	return b
}

// scenario is a testdata/scenarios file: batches processed in order by one
// Correlator.
type scenario struct {
	Description string `json:"description"`
	Options     struct {
		Window       string `json:"window"`
		CausalWindow string `json:"causal_window"`
		MaxRelated   int    `json:"max_related"`
	} `json:"options"`
	Batches []struct {
		Now    string `json:"now"` // offset from t0
		Events []struct {
			ID           int64    `json:"id"`
			Host         string   `json:"host"`
			Severity     string   `json:"severity"`
			Title        string   `json:"title"`
			Dependencies []string `json:"dependencies"`
		} `json:"events"`
	} `json:"batches"`
}

// outcome is what the golden files record for each batch.
type outcome struct {
	Now          time.Time           `json:"now"`
	Events       []eventOutcome      `json:"events"`
	Correlations []event.Correlation `json:"correlations"`
}

type eventOutcome struct {
	ID            int64  `json:"id"`
	Host          string `json:"host,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	ParentEventID int64  `json:"parent_event_id,omitempty"`
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			var sc scenario
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&sc))
			opts := Options{MaxRelated: sc.Options.MaxRelated}
			if sc.Options.Window != "" {
				opts.Window, err = time.ParseDuration(sc.Options.Window)
				require.NoError(t, err)
			}
			if sc.Options.CausalWindow != "" {
				opts.CausalWindow, err = time.ParseDuration(sc.Options.CausalWindow)
				require.NoError(t, err)
			}
			c, err := New(opts)
			require.NoError(t, err)

			var got []outcome
			for _, sb := range sc.Batches {
				off, err := time.ParseDuration(sb.Now)
				require.NoError(t, err)
				b := &pipeline.Batch{Now: t0.Add(off)}
				for _, se := range sb.Events {
					e := ev(se.ID, se.Host, event.Severity(se.Severity), off)
					e.Title = se.Title
					if se.Dependencies != nil {
						e.Asset = &event.Asset{Dependencies: se.Dependencies}
					}
					b.Events = append(b.Events, e)
				}
				require.NoError(t, c.Process(context.Background(), b))
				o := outcome{Now: b.Now, Correlations: append([]event.Correlation{}, b.Correlations...)}
				for _, e := range b.Events {
					o.Events = append(o.Events, eventOutcome{ID: e.ID, Host: e.SourceHost, CorrelationID: e.CorrelationID, ParentEventID: e.ParentEventID})
				}
				got = append(got, o)
			}
			out, err := json.MarshalIndent(got, "", "  ")
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
}

func TestTimeBased(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		batches   [][]*event.Event
		nows      []time.Duration
		wantRows  int    // rows emitted by the last batch
		wantGroup int    // events of the host's group in the last row
		wantInRsn string // substring of the last row's reason
	}{
		{
			name:    "lone event emits no row",
			batches: [][]*event.Event{{ev(1, "h", event.High, 0)}},
			nows:    []time.Duration{0},
		},
		{
			name:      "two events emit a row",
			batches:   [][]*event.Event{{ev(1, "h", event.High, 0), ev(2, "h", event.Low, 0)}},
			nows:      []time.Duration{0},
			wantRows:  1,
			wantGroup: 2,
			wantInRsn: "2 events on h within 5m0s: 1 high, 1 low",
		},
		{
			name:      "custom window",
			opts:      Options{Window: time.Minute},
			batches:   [][]*event.Event{{ev(1, "h", event.High, 0)}, {ev(2, "h", event.High, 0)}, {ev(3, "h", event.High, 0)}},
			nows:      []time.Duration{0, 59 * time.Second, 60 * time.Second},
			wantRows:  0,
			wantGroup: 0,
		},
		{
			name:      "a later batch re-emits the full group",
			batches:   [][]*event.Event{{ev(1, "h", event.High, 0), ev(2, "h", event.Low, 0)}, {ev(3, "h", event.Critical, 0)}},
			nows:      []time.Duration{0, time.Minute},
			wantRows:  1,
			wantGroup: 3,
			wantInRsn: "3 events on h within 5m0s: 1 critical, 1 high, 1 low",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			require.NoError(t, err)
			var b *pipeline.Batch
			for i, events := range tt.batches {
				b = run(t, c, tt.nows[i], events...)
			}
			require.Len(t, b.Correlations, tt.wantRows)
			if tt.wantRows > 0 {
				row := b.Correlations[len(b.Correlations)-1]
				require.Equal(t, tt.wantGroup, 1+len(row.RelatedEventIDs))
				require.Contains(t, row.Reason, tt.wantInRsn)
				require.Equal(t, event.CorrelationTimeBased, row.Type)
				require.Equal(t, tt.batches[0][0].ID, row.PrimaryEventID)
				require.Equal(t, GroupID(row.PrimaryEventID), row.CorrelationID)
			}
			for _, e := range b.Events {
				require.NotEmpty(t, e.CorrelationID, "every event with a host gets a correlation id")
			}
		})
	}
}

func TestScores(t *testing.T) {
	tests := []struct {
		n     int
		worst event.Severity
		want  float64
	}{
		{2, event.Info, 0.40},
		{2, event.Critical, 0.70},
		{4, event.High, 0.70},
		{3, event.Medium, 0.56},
		{16, event.Critical, 1.00},
		{1000, event.Critical, 1.00},
		{0, event.Severity("bogus"), 0.30},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, TimeScore(tt.n, tt.worst), "TimeScore(%d, %s)", tt.n, tt.worst)
	}
	require.Equal(t, 0.70, CausalScore(1))
	require.Equal(t, 0.80, CausalScore(3))
	require.Equal(t, 1.00, CausalScore(7))
	require.Equal(t, 1.00, CausalScore(500))
}

func TestDependencies(t *testing.T) {
	tests := []struct {
		name string
		// data is the event's event_data as stored, decoded by
		// UnmarshalData as the stores do.
		data string
		want []string
	}{
		{"none", ``, nil},
		{"no asset", `{"x":1}`, nil},
		{"asset without dependencies", `{"asset":{"criticality":"high"}}`, nil},
		{"dependencies", `{"asset":{"dependencies":["a","b"]}}`, []string{"a", "b"}},
		// Not written by the enricher: kept in Data, not read as an asset.
		{"asset not an object", `{"asset":"db"}`, nil},
		{"wrong type", `{"asset":{"dependencies":"a"}}`, nil},
		{"not strings", `{"asset":{"dependencies":["a",3,"b"]}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event.Event{ID: 1}
			require.NoError(t, e.UnmarshalData([]byte(tt.data)))
			require.Equal(t, tt.want, Dependencies(e))
		})
	}
	require.Equal(t, []string{"db"}, Dependencies(&event.Event{Asset: &event.Asset{Dependencies: []string{"db"}}}))
}

func TestCausalRetryIsIdempotent(t *testing.T) {
	c, err := New(Options{})
	require.NoError(t, err)
	run(t, c, 0, ev(1, "db", event.Critical, 0))
	b1 := run(t, c, time.Second, ev(2, "web", event.High, 0, "db"), ev(3, "web", event.High, 0, "db"))
	b2 := run(t, c, 2*time.Second, ev(2, "web", event.High, 0, "db"), ev(3, "web", event.High, 0, "db"))
	require.Equal(t, b1.Correlations, b2.Correlations, "a retried batch emits the same rows")
	require.Equal(t, int64(1), b2.Events[0].ParentEventID)
}

func TestSweepAndCap(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c, err := New(Options{MaxKeys: 2, Registerer: reg})
	require.NoError(t, err)
	run(t, c, 0, ev(1, "a", event.Critical, 0), ev(2, "b", event.Critical, 0), ev(3, "c", event.Critical, 0))
	groups, crits := c.Len()
	require.Equal(t, 2, groups)
	require.Equal(t, 2, crits)
	require.Equal(t, 1.0, counter(t, c.m.evictions[0].WithLabelValues(keyed.ReasonCapacity)))
	require.Equal(t, 1.0, counter(t, c.m.evictions[1].WithLabelValues(keyed.ReasonCapacity)))

	// "a" was evicted: its next event opens a new group, and a dependent
	// of "a" finds no open critical event.
	b := run(t, c, time.Second, ev(4, "a", event.High, 0), ev(5, "x", event.High, 0, "a"))
	require.Equal(t, GroupID(4), b.Events[0].CorrelationID)
	require.Zero(t, b.Events[1].ParentEventID)

	// Groups of a and x opened at 1s; critical events of b and c at 0s.
	require.Equal(t, 0, c.Sweep(t0.Add(5*time.Minute)))
	require.Equal(t, 2, c.Sweep(t0.Add(5*time.Minute+time.Second)))
	groups, crits = c.Len()
	require.Equal(t, 0, groups)
	require.Equal(t, 2, crits, "critical events are open for 15 minutes")
	require.Equal(t, 0, c.Sweep(t0.Add(15*time.Minute-time.Nanosecond)))
	require.Equal(t, 2, c.Sweep(t0.Add(15*time.Minute)))
	require.Equal(t, 4.0, counter(t, c.m.evictions[0].WithLabelValues(keyed.ReasonExpired))+counter(t, c.m.evictions[1].WithLabelValues(keyed.ReasonExpired)))

	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, mfs)
}

func TestProcessSweeps(t *testing.T) {
	c, err := New(Options{})
	require.NoError(t, err)
	run(t, c, 0, ev(1, "a", event.Critical, 0))
	run(t, c, 20*time.Minute, ev(2, "b", event.Info, 0))
	groups, crits := c.Len()
	require.Equal(t, 1, groups, "only b's group is left")
	require.Equal(t, 0, crits)
}

// TestWarm stores what one correlator produced, warms a second one from it
// (a restart) and checks that the second continues the same groups.
func TestWarm(t *testing.T) {
	c1, err := New(Options{})
	require.NoError(t, err)
	var stored []event.Event
	keep := func(b *pipeline.Batch) {
		for _, e := range b.Events {
			stored = append(stored, *e)
		}
	}
	keep(run(t, c1, 0, ev(1, "db", event.Critical, 0), ev(2, "web", event.High, 0, "db"), ev(3, "web", event.Low, 0, "db")))
	b := run(t, c1, time.Minute, ev(4, "web", event.Medium, time.Minute, "db"))
	want := b.Correlations

	// The scorer may have raised a severity; Warm reads the source one.
	stored[2].Severity = event.Critical
	stored[2].Scoring = &event.Scoring{Priority: 80, Severity: event.Critical, SourceSeverity: event.Low}
	// Warm reads what the store read back.
	for i := range stored {
		data, err := stored[i].MarshalData()
		require.NoError(t, err)
		stored[i].Asset, stored[i].Scoring, stored[i].Data = nil, nil, nil
		require.NoError(t, stored[i].UnmarshalData(data))
	}
	require.Equal(t, event.Low, stored[2].Scoring.SourceSeverity)

	c2, err := New(Options{})
	require.NoError(t, err)
	c2.Warm(stored)
	groups, crits := c2.Len()
	require.Equal(t, 2, groups)
	require.Equal(t, 1, crits, "only db has an open critical event")
	b = run(t, c2, time.Minute, ev(4, "web", event.Medium, time.Minute, "db"))
	require.Equal(t, want, b.Correlations, "the restarted correlator emits the same rows")

	// The warmed group's window opened at its first event's received_at.
	b = run(t, c2, 5*time.Minute, ev(5, "web", event.Medium, 5*time.Minute))
	require.Equal(t, GroupID(5), b.Events[0].CorrelationID)
}

// TestConcurrentSameHost runs one host's events on two goroutines, as the
// two lanes do; run with -race.
func TestConcurrentSameHost(t *testing.T) {
	c, err := New(Options{MaxRelated: 500})
	require.NoError(t, err)
	run(t, c, 0, ev(1, "db", event.Critical, 0))
	const perG = 200
	var (
		mu      sync.Mutex
		ids     = map[string]bool{}
		largest int
		parents = map[int64]bool{}
	)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				id := int64(100 + g*perG + i)
				events := []*event.Event{ev(id, "web", event.High, 0, "db")}
				if i%50 == 0 && g == 1 {
					// Critical events on the dependency from the other lane.
					events = append(events, ev(id+10_000, "db", event.Critical, 0))
				}
				b := run(t, c, time.Duration(i)*time.Millisecond, events...)
				mu.Lock()
				ids[b.Events[0].CorrelationID] = true
				parents[b.Events[0].ParentEventID] = true
				for _, row := range b.Correlations {
					if row.Type == event.CorrelationTimeBased && row.PrimaryEventID != 1 {
						largest = max(largest, len(row.RelatedEventIDs))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, ids, 1, "one group for one host within the window")
	require.Equal(t, 2*perG-1, largest, "the last row holds every other event")
	require.NotContains(t, parents, int64(0), "every event found an open critical event")
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
