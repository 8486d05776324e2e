package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newManager(t *testing.T, c *clock, lim Limits) *Manager {
	t.Helper()
	m, err := New(Options{Limits: lim, Now: c.Now})
	require.NoError(t, err)
	return m
}

func rem(host, tmpl string) Request { return Request{Host: host, Template: tmpl, Kind: Remediation} }

func diag(host, tmpl string) Request { return Request{Host: host, Template: tmpl, Kind: Diagnostic} }

func note(tmpl string) Request { return Request{Template: tmpl, Kind: Notification} }

func (r Request) pattern(p string) Request { r.Pattern = p; return r }

func (r Request) exec(id int64) Request { r.Execution = id; return r }

func acquire(t *testing.T, m *Manager, req Request) *Lease {
	t.Helper()
	l, err := m.Acquire(req)
	require.NoError(t, err, "%+v", req)
	return l
}

func refused(t *testing.T, m *Manager, req Request, code Code) *Refusal {
	t.Helper()
	l, err := m.Acquire(req)
	require.Nil(t, l, "%+v granted, want %s", req, code)
	require.ErrorIs(t, err, ErrRefused)
	var r *Refusal
	require.ErrorAs(t, err, &r)
	require.Equal(t, code, r.Code, r.Reason)
	require.Equal(t, req, r.Request)
	require.True(t, strings.HasPrefix(err.Error(), "resource: refused ("+string(code)+"): "), err.Error())
	return r
}

// Every limit except those under test is off.
var off = Limits{
	MaxConcurrent: -1, MaxPerHost: -1, MaxPerTemplate: -1, MaxRemediationsPerHost: -1,
	TemplatePerHour: -1, HostBudget: -1, BreakerFailures: -1, LoopCount: -1,
}

func with(f func(*Limits)) Limits {
	l := off
	f(&l)
	return l
}

func TestConcurrencyLimits(t *testing.T) {
	global := with(func(l *Limits) { l.MaxConcurrent = 2 })
	perHost := with(func(l *Limits) { l.MaxPerHost = 2 })
	busy := with(func(l *Limits) { l.MaxRemediationsPerHost = 1 })
	perTemplate := with(func(l *Limits) { l.MaxPerTemplate = 2 })
	tests := []struct {
		name   string
		limits Limits
		hold   []Request
		req    Request
		want   Code // "": granted
	}{
		{"global: under", global, []Request{diag("h1", "t1")}, rem("h2", "t2"), ""},
		{"global: at", global, []Request{diag("h1", "t1"), note("t2")}, rem("h3", "t3"), CodeGlobalLimit},
		{"global: notifications count", global, []Request{diag("h1", "t1"), rem("h2", "t2")}, note("t3"), CodeGlobalLimit},
		{"global: default 10", Limits{}, manyDiags(10), note("x"), CodeGlobalLimit},
		{"global: off", off, manyDiags(50), rem("h", "t"), ""},

		{"per host: under", perHost, []Request{diag("h1", "t1")}, rem("h1", "t2"), ""},
		{"per host: at", perHost, []Request{diag("h1", "t1"), rem("h1", "t2")}, diag("h1", "t3"), CodeHostLimit},
		{"per host: other host", perHost, []Request{diag("h1", "t1"), diag("h1", "t2")}, diag("h2", "t3"), ""},
		{"per host: a notification touches no host", perHost, []Request{diag("h1", "t1"), diag("h1", "t2")}, Request{Host: "h1", Template: "t3", Kind: Notification}, ""},
		{"per host: notifications do not count", perHost, []Request{{Host: "h1", Kind: Notification}, {Host: "h1", Kind: Notification}}, diag("h1", "t3"), ""},

		{"one remediation per host", busy, []Request{rem("h1", "t1")}, rem("h1", "t2"), CodeHostBusy},
		{"one remediation per host: default", Limits{}, []Request{rem("h1", "t1")}, rem("h1", "t2"), CodeHostBusy},
		{"one remediation per host: a diagnostic beside it", busy, []Request{rem("h1", "t1")}, diag("h1", "t2"), ""},
		{"one remediation per host: other host", busy, []Request{rem("h1", "t1")}, rem("h2", "t1"), ""},
		{"one remediation per host: the same execution", busy, []Request{rem("h1", "t1").exec(7)}, rem("h1", "t1").exec(7), ""},
		{"one remediation per host: another execution", busy, []Request{rem("h1", "t1").exec(7)}, rem("h1", "t1").exec(8), CodeHostBusy},
		{"two remediations per host", with(func(l *Limits) { l.MaxRemediationsPerHost = 2 }),
			[]Request{rem("h1", "t1").exec(1), rem("h1", "t1").exec(1), rem("h1", "t2").exec(2)}, rem("h1", "t3"), CodeHostBusy},
		{"two remediations per host: under", with(func(l *Limits) { l.MaxRemediationsPerHost = 2 }),
			[]Request{rem("h1", "t1").exec(1), rem("h1", "t1").exec(1)}, rem("h1", "t3"), ""},
		{"several remediations per host", off, []Request{rem("h1", "t1"), rem("h1", "t2")}, rem("h1", "t3"), ""},

		{"per template: under", perTemplate, []Request{diag("h1", "t1")}, rem("h2", "t1"), ""},
		{"per template: at", perTemplate, []Request{diag("h1", "t1"), rem("h2", "t1")}, diag("h3", "t1"), CodeTemplateLimit},
		{"per template: notifications count", perTemplate, []Request{note("t1"), note("t1")}, rem("h3", "t1"), CodeTemplateLimit},
		{"per template: other template", perTemplate, []Request{diag("h1", "t1"), diag("h2", "t1")}, diag("h3", "t2"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			m := newManager(t, c, tt.limits)
			var leases []*Lease
			for _, r := range tt.hold {
				leases = append(leases, acquire(t, m, r))
			}
			if tt.want == "" {
				acquire(t, m, tt.req)
				return
			}
			r := refused(t, m, tt.req, tt.want)
			require.False(t, r.Escalate(), "a concurrency limit is a wait")
			require.True(t, r.RetryAt.IsZero())
			// Releasing what was held frees the limit.
			for _, l := range leases {
				require.Nil(t, l.Release(Success))
			}
			acquire(t, m, tt.req)
		})
	}
}

func manyDiags(n int) []Request {
	out := make([]Request, n)
	for i := range out {
		out[i] = diag(fmt.Sprint("h", i), fmt.Sprint("t", i))
	}
	return out
}

func TestReleaseTwice(t *testing.T) {
	c := newClock()
	m := newManager(t, c, Limits{})
	l := acquire(t, m, rem("h1", "t1"))
	require.Equal(t, Usage{Total: 1, Remediation: 1}, m.InUse())
	require.Equal(t, rem("h1", "t1"), l.Request())
	require.Equal(t, c.Now(), l.Acquired())
	l.Release(Failure)
	l.Release(Failure)
	require.Equal(t, Usage{}, m.InUse())
	require.Equal(t, 1, m.Breaker("t1").Failures, "the second release fed nothing")
	require.Empty(t, m.hosts)
	require.Empty(t, m.templates)
}

func TestTemplateRate(t *testing.T) {
	c := newClock()
	m := newManager(t, c, with(func(l *Limits) { l.TemplatePerHour = 3 }))
	first := c.Now()
	for i := range 3 {
		acquire(t, m, rem(fmt.Sprint("h", i), "t1").exec(int64(i+1))).Release(Success)
		c.Advance(10 * time.Minute)
	}
	r := refused(t, m, rem("h9", "t1"), CodeTemplateRate)
	require.Equal(t, first.Add(time.Hour), r.RetryAt)
	require.True(t, r.Escalate())
	require.Equal(t, 3, r.Limit)
	require.Contains(t, r.Reason, `template "t1" ran 3 remediations in the last hour`)
	// Diagnostics and notifications do not count, and are not refused.
	acquire(t, m, diag("h9", "t1")).Release(Success)
	acquire(t, m, note("t1")).Release(Success)
	// Another step of an execution already counted is not refused.
	acquire(t, m, rem("h2", "t1").exec(3)).Release(Success)
	// Other templates have their own window.
	acquire(t, m, rem("h9", "t2")).Release(Success)

	c.Advance(first.Add(time.Hour).Sub(c.Now()) - time.Nanosecond)
	refused(t, m, rem("h9", "t1"), CodeTemplateRate)
	c.Advance(time.Nanosecond)
	acquire(t, m, rem("h9", "t1")).Release(Success)
	refused(t, m, rem("h9", "t1"), CodeTemplateRate)
}

func TestHostBudget(t *testing.T) {
	c := newClock()
	m := newManager(t, c, with(func(l *Limits) { l.HostBudget = 2 }))
	first := c.Now()
	acquire(t, m, rem("h1", "t1")).Release(Success)
	c.Advance(5 * time.Hour)
	// Two steps of one execution are one remediation.
	acquire(t, m, rem("h1", "t2").exec(5)).Release(Success)
	acquire(t, m, rem("h1", "t3").exec(5)).Release(Success)
	r := refused(t, m, rem("h1", "t4"), CodeBudget)
	require.Equal(t, first.Add(24*time.Hour), r.RetryAt)
	require.Contains(t, r.Reason, `host "h1" had 2 remediations in the last 24h`)
	require.True(t, r.Escalate())
	acquire(t, m, diag("h1", "t4")).Release(Success)
	acquire(t, m, rem("h2", "t4")).Release(Success)

	c.Advance(19 * time.Hour) // first + 24h: the first leaves the window
	acquire(t, m, rem("h1", "t4")).Release(Success)
	refused(t, m, rem("h1", "t4"), CodeBudget)
	// Default: 10 a day.
	m = newManager(t, c, with(func(l *Limits) { l.HostBudget = 0 }))
	for i := range 10 {
		acquire(t, m, rem("h1", fmt.Sprint("t", i))).Release(Success)
	}
	refused(t, m, rem("h1", "t"), CodeBudget)
}

func TestBreaker(t *testing.T) {
	c := newClock()
	m := newManager(t, c, with(func(l *Limits) { l.BreakerFailures = 3; l.BreakerCooldown = 30 * time.Minute }))
	fail := func(tmpl string) *BreakerChange {
		return acquire(t, m, rem("h1", tmpl)).Release(Failure)
	}
	// Consecutive: a success starts the count again, an unknown outcome
	// does not count.
	require.Nil(t, fail("t1"))
	require.Nil(t, fail("t1"))
	require.Nil(t, acquire(t, m, rem("h1", "t1")).Release(Success))
	require.Nil(t, fail("t1"))
	require.Nil(t, fail("t1"))
	require.Nil(t, acquire(t, m, rem("h1", "t1")).Release(Unknown))
	require.Equal(t, BreakerStatus{Template: "t1", State: Closed, Failures: 2}, m.Breaker("t1"))
	// A lease acquired before the breaker opens and released after it.
	early := acquire(t, m, rem("h2", "t1"))
	ch := fail("t1")
	require.NotNil(t, ch)
	opened := c.Now()
	require.Equal(t, BreakerChange{Template: "t1", From: Closed, To: Open, Failures: 3, RetryAt: opened.Add(30 * time.Minute), At: opened,
		Reason: `the circuit breaker of template "t1" opened after 3 consecutive failures (breaker_failures 3): its remediations are refused; one trial is allowed at 2025-03-01T10:30:00Z`}, *ch)
	require.Nil(t, early.Release(Failure))
	require.Equal(t, Open, m.Breaker("t1").State)

	r := refused(t, m, rem("h3", "t1"), CodeBreakerOpen)
	require.Equal(t, opened.Add(30*time.Minute), r.RetryAt)
	require.True(t, r.Escalate())
	// Diagnostics of the template still run; other templates too.
	acquire(t, m, diag("h3", "t1")).Release(Failure)
	acquire(t, m, rem("h3", "t2")).Release(Success)

	c.Advance(30*time.Minute - time.Second)
	refused(t, m, rem("h3", "t1"), CodeBreakerOpen)
	c.Advance(time.Second)
	require.Equal(t, HalfOpen, m.Breaker("t1").State)
	trial := acquire(t, m, rem("h3", "t1"))
	require.True(t, trial.Trial())
	r = refused(t, m, rem("h4", "t1"), CodeBreakerOpen)
	require.True(t, r.RetryAt.IsZero())
	require.Contains(t, r.Reason, "half-open and its one trial is running")
	require.True(t, m.Breaker("t1").TrialRunning)

	// The trial fails: open again, for another cooldown.
	ch = trial.Release(Failure)
	require.Equal(t, HalfOpen, ch.From)
	require.Equal(t, Open, ch.To)
	require.Equal(t, c.Now().Add(30*time.Minute), ch.RetryAt)
	require.Contains(t, ch.Reason, "its trial failed")
	refused(t, m, rem("h3", "t1"), CodeBreakerOpen)

	// A trial with an unknown outcome proves nothing: open again.
	c.Advance(30 * time.Minute)
	ch = acquire(t, m, rem("h3", "t1")).Release(Unknown)
	require.Equal(t, Open, ch.To)
	require.Contains(t, ch.Reason, "unknown outcome")

	// A trial that succeeds closes it.
	c.Advance(30 * time.Minute)
	trial = acquire(t, m, rem("h3", "t1"))
	require.True(t, trial.Trial())
	ch = trial.Release(Success)
	require.Equal(t, HalfOpen, ch.From)
	require.Equal(t, Closed, ch.To)
	require.Equal(t, BreakerStatus{Template: "t1", State: Closed}, m.Breaker("t1"))
	l := acquire(t, m, rem("h3", "t1"))
	require.False(t, l.Trial())
	l.Release(Success)
}

func TestBreakerReset(t *testing.T) {
	c := newClock()
	m := newManager(t, c, with(func(l *Limits) { l.BreakerFailures = 1; l.BreakerCooldown = -1 }))
	require.Nil(t, m.Reset("t1"), "nothing to reset")
	ch := acquire(t, m, rem("h1", "t1")).Release(Failure)
	require.True(t, ch.RetryAt.IsZero())
	require.Contains(t, ch.Reason, "only an operator can close it")
	c.Advance(1000 * time.Hour)
	r := refused(t, m, rem("h1", "t1"), CodeBreakerOpen)
	require.True(t, r.RetryAt.IsZero())
	require.Contains(t, r.Reason, "only an operator can close it")
	require.Equal(t, Open, m.Breaker("t1").State)

	ch = m.Reset("t1")
	require.Equal(t, Open, ch.From)
	require.Equal(t, Closed, ch.To)
	require.Contains(t, ch.Reason, "closed by an operator")
	acquire(t, m, rem("h1", "t1")).Release(Success)

	// Reset of a closed breaker forgets its failures, and is no change.
	m = newManager(t, c, with(func(l *Limits) { l.BreakerFailures = 2 }))
	acquire(t, m, rem("h1", "t1")).Release(Failure)
	require.Nil(t, m.Reset("t1"))
	require.Nil(t, acquire(t, m, rem("h1", "t1")).Release(Failure), "the count started again")

	// Reset while a trial runs: the trial's outcome then counts as any.
	m = newManager(t, c, with(func(l *Limits) { l.BreakerFailures = 1; l.BreakerCooldown = time.Minute }))
	acquire(t, m, rem("h1", "t1")).Release(Failure)
	c.Advance(time.Minute)
	trial := acquire(t, m, rem("h1", "t1"))
	require.True(t, trial.Trial())
	require.Equal(t, HalfOpen, m.Reset("t1").From)
	ch = trial.Release(Failure)
	require.Equal(t, Closed, ch.From, "a failure of a closed breaker with breaker_failures 1")
	require.Equal(t, Open, ch.To)
}

func TestRemediationLoop(t *testing.T) {
	c := newClock()
	m := newManager(t, c, with(func(l *Limits) { l.LoopCount = 3; l.LoopWindow = 2 * time.Hour }))
	req := rem("h1", "restart").pattern("cpu_high/nginx")
	require.False(t, m.Recurred("h1", "cpu_high/nginx"), "nothing remediated")
	first := c.Now()
	for i := range 3 {
		acquire(t, m, req).Release(Success)
		c.Advance(10 * time.Minute)
		require.Equal(t, i == 2, m.Recurred("h1", "cpu_high/nginx"), "after remediation %d", i+1)
		c.Advance(10 * time.Minute)
	}
	r := refused(t, m, req, CodeRemediationLoop)
	require.True(t, r.Escalate())
	require.Equal(t, first.Add(2*time.Hour), r.RetryAt)
	require.Contains(t, r.Reason, `pattern "cpu_high/nginx" came back on host "h1" after each of its last 3 remediations`)
	// Another template for the same pattern on the host loops as well:
	// the loop is the pattern's on the host.
	refused(t, m, rem("h1", "other").pattern("cpu_high/nginx"), CodeRemediationLoop)
	// Other hosts, other patterns, diagnostics: not in the loop.
	acquire(t, m, rem("h2", "restart").pattern("cpu_high/nginx")).Release(Success)
	acquire(t, m, rem("h1", "restart").pattern("disk_full")).Release(Success)
	acquire(t, m, diag("h1", "restart").pattern("cpu_high/nginx")).Release(Success)

	// The first remediation leaving the window ends the loop.
	c.Advance(first.Add(2 * time.Hour).Sub(c.Now()))
	acquire(t, m, req).Release(Success)
	// It did not come back after this one: no loop.
	acquire(t, m, req).Release(Success)
	require.False(t, m.Recurred("h1", "cpu_high/nginx"), "came back after the last one only")

	// An operator who dealt with the cause.
	m = newManager(t, c, Limits{})
	for range 3 {
		acquire(t, m, req).Release(Success)
		m.Recurred("h1", "cpu_high/nginx")
	}
	refused(t, m, req, CodeRemediationLoop)
	m.ResetLoop("h1", "cpu_high/nginx")
	acquire(t, m, req).Release(Success)

	// Steps of one execution are one remediation.
	m = newManager(t, c, with(func(l *Limits) { l.LoopCount = 2; l.LoopWindow = time.Hour }))
	acquire(t, m, req.exec(1)).Release(Success)
	acquire(t, m, req.exec(1)).Release(Success)
	require.False(t, m.Recurred("h1", "cpu_high/nginx"))
	acquire(t, m, req.exec(2)).Release(Success)
	require.True(t, m.Recurred("h1", "cpu_high/nginx"))
	refused(t, m, req.exec(3), CodeRemediationLoop)
	// A request without a pattern is not watched for loops.
	acquire(t, m, rem("h1", "restart")).Release(Success)

	// Off.
	m = newManager(t, c, with(func(l *Limits) { l.LoopCount = 1; l.LoopWindow = -1 }))
	acquire(t, m, req).Release(Success)
	require.False(t, m.Recurred("h1", "cpu_high/nginx"))
	acquire(t, m, req).Release(Success)
}

func TestCapacity(t *testing.T) {
	c := newClock()
	m, err := New(Options{Limits: with(func(l *Limits) { l.HostBudget = 5; l.TemplatePerHour = 5 }), MaxKeys: 3, Now: c.Now})
	require.NoError(t, err)
	acquire(t, m, rem("h1", "t1")).Release(Success) // host h1, template t1
	acquire(t, m, rem("h2", "t1")).Release(Success) // host h2
	r := refused(t, m, rem("h3", "t1"), CodeCapacity)
	require.True(t, r.Escalate())
	// What needs no new key still runs.
	acquire(t, m, rem("h1", "t1")).Release(Success)
	acquire(t, m, diag("h3", "t1")).Release(Success)
	// Once the windows have passed, pruning makes room.
	c.Advance(HostWindow)
	acquire(t, m, rem("h3", "t1")).Release(Success)
}

func TestInvalid(t *testing.T) {
	c := newClock()
	m := newManager(t, c, Limits{})
	long := strings.Repeat("h", MaxKeyLen+1)
	for _, req := range []Request{
		{Host: "h", Template: "t"},
		{Host: "h", Template: "t", Kind: "restart"},
		{Template: "t", Kind: Remediation},
		{Host: "h", Kind: Diagnostic},
		{Host: long, Template: "t", Kind: Remediation},
		{Template: "t", Pattern: long, Kind: Notification},
	} {
		_, err := m.Acquire(req)
		require.ErrorIs(t, err, ErrInvalid, "%+v", req)
		require.NotErrorIs(t, err, ErrRefused)
	}
	_, err := New(Options{MaxKeys: -1})
	require.ErrorIs(t, err, ErrInvalid)
	require.Equal(t, DefaultLimits, m.Limits())
}

func TestMetrics(t *testing.T) {
	c := newClock()
	reg := prometheus.NewRegistry()
	m, err := New(Options{Now: c.Now, Registerer: reg, Limits: Limits{BreakerFailures: 1}})
	require.NoError(t, err)
	l := acquire(t, m, rem("h1", "t1"))
	acquire(t, m, diag("h2", "t1"))
	refused(t, m, rem("h1", "t2"), CodeHostBusy)
	require.Equal(t, 1.0, promtest.ToFloat64(m.m.inUse.WithLabelValues("remediation")))
	require.Equal(t, 1.0, promtest.ToFloat64(m.m.inUse.WithLabelValues("diagnostic")))
	require.Equal(t, 1.0, promtest.ToFloat64(m.m.refusals.WithLabelValues("host_busy")))
	l.Release(Failure)
	refused(t, m, rem("h1", "t1"), CodeBreakerOpen)
	require.Equal(t, 0.0, promtest.ToFloat64(m.m.inUse.WithLabelValues("remediation")))
	require.Equal(t, 1.0, promtest.ToFloat64(m.m.open))
	require.Equal(t, 1.0, promtest.ToFloat64(m.m.refusals.WithLabelValues("breaker_open")))
	m.Reset("t1")
	require.Equal(t, 0.0, promtest.ToFloat64(m.m.open))
	n, err := promtest.GatherAndCount(reg, "reflex_resource_refusals_total")
	require.NoError(t, err)
	require.Equal(t, len(Codes), n, "every reason is exported from the start")

	// A second manager on the same registry shares the collectors.
	_, err = New(Options{Registerer: reg})
	require.NoError(t, err)
}

// Many goroutines acquiring and releasing never exceed the limits.
func TestConcurrentLimits(t *testing.T) {
	lim := with(func(l *Limits) {
		l.MaxConcurrent, l.MaxPerHost, l.MaxRemediationsPerHost, l.MaxPerTemplate = 6, 2, 1, 3
	})
	c := newClock()
	m := newManager(t, c, lim)
	const hosts, templates = 4, 4
	var global, maxGlobal atomic.Int64
	var perHost, maxHost, perHostRem, maxHostRem [hosts]atomic.Int64
	var perTmpl, maxTmpl [templates]atomic.Int64
	var granted, refusals atomic.Int64
	up := func(v, maxv *atomic.Int64) {
		n := v.Add(1)
		for {
			old := maxv.Load()
			if n <= old || maxv.CompareAndSwap(old, n) {
				return
			}
		}
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 500 {
				h, tm := rng.IntN(hosts), rng.IntN(templates)
				kind := []Kind{Diagnostic, Remediation, Remediation, Notification}[rng.IntN(4)]
				req := Request{Host: fmt.Sprint("h", h), Template: fmt.Sprint("t", tm), Kind: kind}
				if kind == Notification {
					req.Host = ""
				}
				l, err := m.Acquire(req)
				if err != nil {
					if !errors.Is(err, ErrRefused) {
						t.Error(err)
						return
					}
					refusals.Add(1)
					continue
				}
				granted.Add(1)
				up(&global, &maxGlobal)
				up(&perTmpl[tm], &maxTmpl[tm])
				if kind != Notification {
					up(&perHost[h], &maxHost[h])
				}
				if kind == Remediation {
					up(&perHostRem[h], &maxHostRem[h])
				}
				runtime.Gosched()
				// Count down before releasing: once released, another may
				// take the place.
				global.Add(-1)
				perTmpl[tm].Add(-1)
				if kind != Notification {
					perHost[h].Add(-1)
				}
				if kind == Remediation {
					perHostRem[h].Add(-1)
				}
				l.Release(Success)
			}
		})
	}
	wg.Wait()
	require.Positive(t, granted.Load())
	require.Positive(t, refusals.Load(), "the limits were reached")
	require.LessOrEqual(t, maxGlobal.Load(), int64(6))
	for i := range hosts {
		require.LessOrEqual(t, maxHost[i].Load(), int64(2), "host %d", i)
		require.LessOrEqual(t, maxHostRem[i].Load(), int64(1), "host %d", i)
	}
	for i := range templates {
		require.LessOrEqual(t, maxTmpl[i].Load(), int64(3), "template %d", i)
	}
	require.Equal(t, Usage{}, m.InUse())
}

// Many goroutines racing for a template's hourly runs get exactly
// TemplatePerHour of them.
func TestConcurrentRate(t *testing.T) {
	c := newClock()
	m := newManager(t, c, with(func(l *Limits) { l.TemplatePerHour = 50 }))
	var granted atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				l, err := m.Acquire(rem(fmt.Sprint("h", w, "-", i), "t1"))
				if err == nil {
					granted.Add(1)
					l.Release(Success)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(50), granted.Load())
}

func TestSnapshotRoundTrip(t *testing.T) {
	c := newClock()
	lim := Limits{BreakerFailures: 2, BreakerCooldown: 10 * time.Minute}
	m := newManager(t, c, lim)
	p := "cpu_high/nginx"
	for i := range 3 {
		acquire(t, m, rem("h1", "restart").pattern(p).exec(int64(i+1))).Release(Success)
		m.Recurred("h1", p)
		c.Advance(time.Minute)
	}
	for i := range 2 {
		acquire(t, m, rem(fmt.Sprint("web", i), "flaky")).Release(Failure)
	}
	acquire(t, m, rem("h2", "once")).Release(Failure)
	acquire(t, m, rem("h3", "trial")).Release(Failure)
	acquire(t, m, rem("h3", "trial")).Release(Failure)
	c.Advance(10 * time.Minute)
	trial := acquire(t, m, rem("h4", "trial"))
	require.True(t, trial.Trial())

	snap := m.Snapshot()
	require.Equal(t, SnapshotVersion, snap.V)
	data, err := json.Marshal(snap)
	require.NoError(t, err)
	var back Snapshot
	require.NoError(t, json.Unmarshal(data, &back))
	r := newManager(t, c, lim)
	require.NoError(t, r.Restore(back))
	require.Equal(t, snap, r.Snapshot())
	require.Equal(t, BreakerStatus{Template: "trial", State: Open, Failures: 2, OpenedAt: c.Now()}, r.Breaker("trial"),
		"a trial running at the snapshot restores as a breaker opened again")
	require.Equal(t, BreakerStatus{Template: "once", State: Closed, Failures: 1}, r.Breaker("once"))

	// The restored manager answers as the original would.
	trial.Release(Unknown)
	for _, req := range []Request{
		rem("h1", "restart").pattern(p), rem("h9", "flaky"), rem("h9", "trial"), rem("h9", "once"),
	} {
		_, errM := m.Acquire(req)
		_, errR := r.Acquire(req)
		var rm, rr *Refusal
		require.Equal(t, errors.As(errM, &rm), errors.As(errR, &rr), "%+v", req)
		if rm != nil {
			require.Equal(t, rm.Code, rr.Code)
			require.Equal(t, rm.RetryAt, rr.RetryAt)
		}
	}
	// The budget remembered: h1 had 3 of its 10.
	budget := newManager(t, c, Limits{HostBudget: 3, LoopCount: -1})
	require.NoError(t, budget.Restore(back))
	refused(t, budget, rem("h1", "other"), CodeBudget)

	// Restored later, what left its window is gone.
	c.Advance(25 * time.Hour)
	later := newManager(t, c, lim)
	require.NoError(t, later.Restore(back))
	s := later.Snapshot()
	require.Empty(t, s.Templates)
	require.Empty(t, s.Hosts)
	require.Empty(t, s.Loops)
	require.Len(t, s.Breakers, 3, "breakers are no window")
}

func TestRestoreInvalid(t *testing.T) {
	c := newClock()
	m := newManager(t, c, Limits{})
	acquire(t, m, rem("h1", "t1")).Release(Failure)
	before := m.Snapshot()
	run := []Run{{At: c.Now()}}
	tests := []struct {
		name string
		snap Snapshot
	}{
		{"version", Snapshot{V: 3}},
		{"empty template", Snapshot{V: 1, Templates: []TemplateRuns{{Runs: run}}}},
		{"template twice", Snapshot{V: 1, Templates: []TemplateRuns{{Template: "t", Runs: run}, {Template: "t", Runs: run}}}},
		{"host twice", Snapshot{V: 1, Hosts: []HostRuns{{Host: "h", Runs: run}, {Host: "h", Runs: run}}}},
		{"loop without pattern", Snapshot{V: 1, Loops: []LoopState{{Host: "h"}}}},
		{"negative failures", Snapshot{V: 1, Breakers: []BreakerRecord{{Template: "t", Failures: -1}}}},
		{"breaker twice", Snapshot{V: 1, Breakers: []BreakerRecord{{Template: "t", Failures: 1}, {Template: "t", Open: true}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, m.Restore(tt.snap), ErrInvalid)
			require.Equal(t, before, m.Snapshot(), "a failed restore changes nothing")
		})
	}
	small, err := New(Options{Now: c.Now, MaxKeys: 1})
	require.NoError(t, err)
	require.ErrorIs(t, small.Restore(Snapshot{V: 1, Hosts: []HostRuns{{Host: "a", Runs: run}, {Host: "b", Runs: run}}}), ErrInvalid)
}

func TestRestoreBoundsWindows(t *testing.T) {
	c := newClock()
	m := newManager(t, c, Limits{TemplatePerHour: 2, LoopCount: 2})
	var runs []Run
	var loopRuns []LoopRun
	for i := range 5 {
		at := c.Now().Add(-time.Duration(i) * time.Minute)
		runs = append(runs, Run{At: at})
		loopRuns = append(loopRuns, LoopRun{At: at, Recurred: true})
	}
	require.NoError(t, m.Restore(Snapshot{V: 1, Templates: []TemplateRuns{{Template: "t", Runs: runs}},
		Loops: []LoopState{{Host: "h", Pattern: "p", Runs: loopRuns}}}))
	s := m.Snapshot()
	require.Equal(t, []Run{{At: c.Now().Add(-time.Minute)}, {At: c.Now()}}, s.Templates[0].Runs, "the newest, oldest first")
	require.Len(t, s.Loops[0].Runs, 2)
	refused(t, m, rem("h", "x").pattern("p"), CodeRemediationLoop)
}

func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"v":1,"templates":[{"template":"t","runs":[{"at":"2025-03-01T09:30:00Z","execution":3}]}],"hosts":[{"host":"h","runs":[{"at":"2025-03-01T09:00:00Z"}]}],"loops":[{"host":"h","pattern":"p","runs":[{"at":"2025-03-01T09:50:00Z","recurred":true}]}],"breakers":[{"template":"t","failures":3,"open":true,"opened_at":"2025-03-01T09:55:00Z"}]}`))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"breakers":[{"template":"t","failures":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Snapshot
		if json.Unmarshal(data, &s) != nil {
			return
		}
		c := newClock()
		m, err := New(Options{Now: c.Now, MaxKeys: 10})
		require.NoError(t, err)
		if err := m.Restore(s); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("restore: %v is not ErrInvalid", err)
			}
			return
		}
		// Whatever was restored, the limits still hold and answer.
		again := m.Snapshot()
		for _, tr := range again.Templates {
			require.LessOrEqual(t, len(tr.Runs), m.Limits().TemplatePerHour)
		}
		for _, h := range again.Hosts {
			require.LessOrEqual(t, len(h.Runs), m.Limits().HostBudget)
		}
		for _, l := range again.Loops {
			require.LessOrEqual(t, len(l.Runs), m.Limits().LoopCount)
		}
		l, err := m.Acquire(rem("h", "t").pattern("p"))
		if err == nil {
			l.Release(Failure)
		} else {
			require.ErrorIs(t, err, ErrRefused)
		}
	})
}
