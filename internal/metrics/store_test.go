package metrics

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
)

// recorder is a Submitter that keeps the notices.
type recorder struct {
	mu    sync.Mutex
	items []intake.Item
	fail  int // submissions to fail first
}

func (r *recorder) Submit(_ context.Context, src event.SourceType, items []intake.Item) ([]int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if src != event.SourceMetrics {
		panic(src)
	}
	if r.fail > 0 {
		r.fail--
		return nil, intake.ErrDropped
	}
	r.items = append(r.items, items...)
	return make([]int64, len(items)), nil
}

func (r *recorder) notices(t *testing.T) []Notice {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Notice, len(r.items))
	for i, it := range r.items {
		require.NoError(t, json.Unmarshal(it.Data, &out[i]))
	}
	return out
}

// wait polls until n notices were submitted.
func (r *recorder) wait(t *testing.T, n int) []Notice {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.notices(t); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := r.notices(t)
	t.Fatalf("%d notices, want %d: %v", len(got), n, got)
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const rulesYAML = `
stale_after: 1m
rules:
  - name: HighLoad
    metric: node_load1
    labels: {job: node}
    op: ">"
    threshold: 4
    for: 5m
    severity: high
    summary: "load {{value}} on {{host}} (over {{threshold}}, job {{labels.job}})"
`

func newStore(t *testing.T, yml string, o Options) (*Store, *recorder, *clock) {
	t.Helper()
	cfg, err := ParseConfig(strings.NewReader(yml))
	require.NoError(t, err)
	rec := &recorder{}
	clk := &clock{t: t0}
	o.Config, o.Submitter, o.Now = cfg, rec, clk.now
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	s, err := New(o)
	require.NoError(t, err)
	s.Start()
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	return s, rec, clk
}

func load(instance, job string, at time.Time, v float64) Series {
	ls := Labels{{MetricName, "node_load1"}, {"instance", instance}, {"job", job}}
	ls.Sort()
	return Series{Labels: ls, Points: []Point{{At: at, Value: v}}}
}

func TestRuleForFiresAndResolves(t *testing.T) {
	s, rec, clk := newStore(t, rulesYAML, Options{})
	clk.set(t0.Add(time.Hour))
	app := func(at time.Duration, v float64) {
		t.Helper()
		res, err := s.Append([]Series{load("web-01:9100", "node", t0.Add(at), v), load("web-02:9100", "other", t0.Add(at), v)})
		require.NoError(t, err)
		require.Equal(t, Result{Accepted: 2}, res)
	}
	app(0, 7)
	app(4*time.Minute, 8)
	require.Empty(t, rec.notices(t)) // held 4m of 5m
	app(5*time.Minute, 7.5)
	got := rec.wait(t, 1)
	n := got[0]
	require.Equal(t, KindRule, n.Kind)
	require.Equal(t, "HighLoad", n.Name)
	require.Equal(t, event.AlertFiring, n.Status)
	require.Equal(t, event.High, n.Severity)
	require.Equal(t, "web-01", n.Host)
	require.Equal(t, "load 7.5 on web-01 (over 4, job node)", n.Summary)
	require.Equal(t, "HighLoad/__name__=node_load1,instance=web-01:9100,job=node", n.Key)
	require.Equal(t, map[string]string{"instance": "web-01:9100", "job": "node"}, n.Labels)
	require.Equal(t, 7.5, n.Value)
	require.Equal(t, 4.0, *n.Threshold)
	require.Equal(t, t0.Add(5*time.Minute), n.StartsAt)

	app(6*time.Minute, 9) // still firing: nothing new
	app(7*time.Minute, 1)
	got = rec.wait(t, 2)
	r := got[1]
	require.Equal(t, event.AlertResolved, r.Status)
	require.Equal(t, event.Info, r.Severity)
	require.Equal(t, n.Key, r.Key)
	require.Equal(t, ReasonCleared, r.Reason)
	require.Equal(t, t0.Add(7*time.Minute), *r.EndsAt)

	// A dip resets "for".
	app(8*time.Minute, 7)
	app(10*time.Minute, 3)
	app(12*time.Minute, 7)
	app(16*time.Minute, 7)
	require.Len(t, rec.notices(t), 2)
	require.Equal(t, 9.0, testutil.ToFloat64(s.met.evaluations.WithLabelValues("HighLoad")))
}

func TestRuleStaleResolves(t *testing.T) {
	s, rec, clk := newStore(t, strings.Replace(rulesYAML, "stale_after: 1m", "stale_after: 10m", 1), Options{})
	clk.set(t0)
	_, err := s.Append([]Series{load("web-01:9100", "node", t0, 7)})
	require.NoError(t, err)
	clk.set(t0.Add(5 * time.Minute))
	// The series went quiet: Tick fires once "for" has passed by the clock.
	s.Tick()
	require.Equal(t, event.AlertFiring, rec.wait(t, 1)[0].Status)
	// Ten minutes without a sample: the series is stale.
	clk.set(t0.Add(10*time.Minute + time.Second))
	s.Tick()
	got := rec.wait(t, 2)
	require.Equal(t, event.AlertResolved, got[1].Status)
	require.Equal(t, ReasonStale, got[1].Reason)
	require.Equal(t, 0, s.Len())
}

func TestStaleMarkerResolves(t *testing.T) {
	s, rec, clk := newStore(t, strings.Replace(rulesYAML, "for: 5m", "for: 0s", 1), Options{})
	clk.set(t0.Add(time.Minute))
	_, err := s.Append([]Series{load("web-01:9100", "node", t0, 7)})
	require.NoError(t, err)
	rec.wait(t, 1)
	_, err = s.Append([]Series{load("web-01:9100", "node", t0.Add(time.Second), math.Float64frombits(staleNaN))})
	require.NoError(t, err)
	got := rec.wait(t, 2)
	require.Equal(t, ReasonStale, got[1].Reason)
	require.Equal(t, "NaN", got[1].Value)
	require.Equal(t, 0, s.Len())
}

func TestOutOfOrderAndFutureSamples(t *testing.T) {
	s, rec, clk := newStore(t, strings.Replace(rulesYAML, "for: 5m", "for: 1m", 1), Options{})
	clk.set(t0.Add(time.Minute))
	_, err := s.Append([]Series{load("web-01:9100", "node", t0.Add(time.Minute), 7)})
	require.NoError(t, err)
	// An earlier sample does not move "for" back; a future one is clamped.
	_, err = s.Append([]Series{load("web-01:9100", "node", t0, 7), load("web-01:9100", "node", t0.Add(time.Hour), 7)})
	require.NoError(t, err)
	require.Empty(t, rec.notices(t))
}

func TestSeriesBound(t *testing.T) {
	s, _, _ := newStore(t, rulesYAML, Options{MaxSeries: 2})
	res, err := s.Append([]Series{load("a", "node", t0, 1), load("b", "node", t0, 1), load("c", "node", t0, 1), load("a", "node", t0.Add(time.Second), 1)})
	require.NoError(t, err)
	require.Equal(t, Result{Accepted: 3, Dropped: 1}, res)
	require.Equal(t, 2, s.Len())
	require.Equal(t, 2.0, testutil.ToFloat64(s.met.series))
}

type observer struct {
	mu  sync.Mutex
	got []string
}

func (o *observer) Observe(host, name string, _ time.Time, v float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, host+" "+name+" "+strings.TrimRight(strings.TrimRight(json.Number(fmtF(v)).String(), "0"), "."))
}

func fmtF(v float64) string { b, _ := json.Marshal(v); return string(b) }

func TestObserverFeed(t *testing.T) {
	obs := &observer{}
	s, _, _ := newStore(t, rulesYAML, Options{Observer: obs})
	ctr := Labels{{MetricName, "http_requests_total"}, {"instance", "web-01:9100"}}
	ctr.Sort()
	_, err := s.Append([]Series{
		load("web-01:9100", "node", t0, 2),
		{Labels: ctr, Points: []Point{{At: t0, Value: 1000}}},
		load("web-01:9100", "node", t0.Add(time.Second), math.Inf(1)),
	})
	require.NoError(t, err)
	require.Equal(t, []string{`web-01 node_load1{instance="web-01:9100",job="node"} 2`}, obs.got)
}

func TestBusy(t *testing.T) {
	s, err := New(Options{Submitter: &recorder{}}) // not started: nothing drains the queue
	require.NoError(t, err)
	for range busyAt {
		s.send.q <- Notice{}
	}
	_, err = s.Append([]Series{load("a", "node", t0, 1)})
	require.ErrorIs(t, err, ErrBusy)
}

func TestSubmitRetries(t *testing.T) {
	s, rec, clk := newStore(t, strings.Replace(rulesYAML, "for: 5m", "for: 0s", 1), Options{})
	rec.mu.Lock()
	rec.fail = 1
	rec.mu.Unlock()
	clk.set(t0)
	_, err := s.Append([]Series{load("a", "node", t0, 9)})
	require.NoError(t, err)
	rec.wait(t, 1)
	require.NoError(t, s.Stop(context.Background()))
	_, err = s.Append([]Series{load("a", "node", t0, 9)})
	require.ErrorIs(t, err, ErrStopped)
}
