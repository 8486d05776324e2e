// Package resource is the resource manager of the Autonomous Response
// Service's safety controller: before a step runs, the orchestrator asks
// it for a Lease, and it answers with one or with a Refusal naming the
// limit that holds and why.
//
// The limits (see Limits for their defaults) are of three sorts:
//
//   - Concurrency: at most MaxConcurrent actions at once, MaxPerHost on a
//     host, MaxPerTemplate of a template, and MaxRemediationsPerHost
//     remediations on a host (one: a host is remediated by one execution
//     at a time). They free when a lease is released.
//   - Rate and budget: at most TemplatePerHour remediations of a template
//     in any rolling hour, HostBudget remediations of a host in any
//     rolling 24 hours. They free as old runs leave the window.
//   - Safety: a circuit breaker per template that opens after
//     BreakerFailures consecutive failed remediations and refuses the
//     template's remediations until, after BreakerCooldown, one trial
//     runs (half-open) and succeeds, or an operator resets it; and
//     remediation-loop detection, which refuses to remediate a pattern
//     on a host again when it came back after each of the last LoopCount
//     remediations within LoopWindow: the remediation does not fix the
//     cause, and a human must look.
//
// The limits apply by kind of step: every kind counts towards
// MaxConcurrent and MaxPerTemplate; diagnostics and remediations towards
// MaxPerHost (a notification touches no host); only remediations towards
// MaxRemediationsPerHost, the rate, the budget, the breaker and loop
// detection (a diagnostic only reads, and may run beside a remediation).
//
// Remediation steps of one execution (Request.Execution) count once
// towards the rate, the budget and loop detection, and do not exclude
// each other from a host: the limits count remediations, not steps.
//
// A Manager is in memory, bounded (MaxKeys hosts, templates and patterns
// tracked, old windows pruned) and safe for concurrent use; Snapshot and
// Restore save and reload what its limits remember (runs in their
// windows, loops, breakers), not its leases. Time comes from Options.Now.
package resource

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what a step does, as action_definitions.action_type says.
type Kind string

// The kinds of steps.
const (
	Diagnostic   Kind = "diagnostic"
	Remediation  Kind = "remediation"
	Notification Kind = "notification"
)

func (k Kind) index() int {
	switch k {
	case Diagnostic:
		return 0
	case Remediation:
		return 1
	case Notification:
		return 2
	}
	return -1
}

// Outcome is how a leased step ended, as Release reports it.
type Outcome string

// The outcomes of a leased step.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	// Unknown: the step's outcome is not known (it was cancelled, the
	// server stopped); it does not count towards the breaker, except that
	// a breaker's trial must prove a success.
	Unknown Outcome = "unknown"
)

// Request is what a lease is asked for.
type Request struct {
	// Host is the host the step acts on; required for diagnostics and
	// remediations.
	Host string `json:"host,omitempty"`
	// Template names the response template (or the action) the step
	// belongs to; required for diagnostics and remediations.
	Template string `json:"template,omitempty"`
	// Pattern is the identity of what the step responds to (as the
	// caller chooses it: the rule and log template, the event type and
	// service), for loop detection; "" for none.
	Pattern string `json:"pattern,omitempty"`
	Kind    Kind   `json:"kind"`
	// Execution is the execution the step is part of (0: none, each
	// lease counts alone).
	Execution int64 `json:"execution,omitempty"`
}

// MaxKeyLen bounds Host, Template and Pattern, in bytes.
const MaxKeyLen = 512

func (r Request) validate() error {
	switch {
	case r.Kind.index() < 0:
		return fmt.Errorf("%w request: kind %q is not diagnostic, remediation or notification", ErrInvalid, r.Kind)
	case r.Kind != Notification && (r.Host == "" || r.Template == ""):
		return fmt.Errorf("%w request: a %s needs a host and a template", ErrInvalid, r.Kind)
	case len(r.Host) > MaxKeyLen || len(r.Template) > MaxKeyLen || len(r.Pattern) > MaxKeyLen:
		return fmt.Errorf("%w request: host, template and pattern are at most %d bytes", ErrInvalid, MaxKeyLen)
	}
	return nil
}

// Limits are the manager's limits. A zero field is its default; a
// negative one turns the limit off.
type Limits struct {
	// MaxConcurrent bounds the actions running at once (default 10).
	MaxConcurrent int `json:"max_concurrent"`
	// MaxPerHost bounds the diagnostics and remediations running at
	// once on a host (default 2).
	MaxPerHost int `json:"max_per_host"`
	// MaxPerTemplate bounds the actions of a template running at once
	// (default 5).
	MaxPerTemplate int `json:"max_per_template"`
	// MaxRemediationsPerHost bounds the remediations (of distinct
	// executions) running at once on a host (default 1: one remediation
	// per host at a time).
	MaxRemediationsPerHost int `json:"max_remediations_per_host"`
	// TemplatePerHour bounds a template's remediations in any rolling
	// hour (default 20).
	TemplatePerHour int `json:"template_per_hour"`
	// HostBudget bounds a host's remediations in any rolling 24 hours
	// (default 10).
	HostBudget int `json:"host_budget"`
	// BreakerFailures is the number of consecutive failed remediations
	// of a template that opens its circuit breaker (default 3).
	BreakerFailures int `json:"breaker_failures"`
	// BreakerCooldown is the time after which an open breaker lets one
	// trial run (default 30m; negative: no trial, only an operator's
	// Reset closes it).
	BreakerCooldown time.Duration `json:"breaker_cooldown"`
	// LoopWindow and LoopCount: a pattern that came back on a host after
	// each of its last LoopCount remediations there, all within
	// LoopWindow, is in a remediation loop (defaults 2h and 3; either
	// negative: no loop detection).
	LoopWindow time.Duration `json:"loop_window"`
	LoopCount  int           `json:"loop_count"`
}

// DefaultLimits are the limits of a zero Limits.
var DefaultLimits = Limits{
	MaxConcurrent:          10,
	MaxPerHost:             2,
	MaxPerTemplate:         5,
	MaxRemediationsPerHost: 1,
	TemplatePerHour:        20,
	HostBudget:             10,
	BreakerFailures:        3,
	BreakerCooldown:        30 * time.Minute,
	LoopWindow:             2 * time.Hour,
	LoopCount:              3,
}

// The windows of the rate and the budget.
const (
	TemplateWindow = time.Hour
	HostWindow     = 24 * time.Hour
)

func (l Limits) withDefaults() Limits {
	or := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	d := DefaultLimits
	or(&l.MaxConcurrent, d.MaxConcurrent)
	or(&l.MaxPerHost, d.MaxPerHost)
	or(&l.MaxPerTemplate, d.MaxPerTemplate)
	or(&l.MaxRemediationsPerHost, d.MaxRemediationsPerHost)
	or(&l.TemplatePerHour, d.TemplatePerHour)
	or(&l.HostBudget, d.HostBudget)
	or(&l.BreakerFailures, d.BreakerFailures)
	or(&l.LoopCount, d.LoopCount)
	if l.BreakerCooldown == 0 {
		l.BreakerCooldown = d.BreakerCooldown
	}
	if l.LoopWindow == 0 {
		l.LoopWindow = d.LoopWindow
	}
	return l
}

func (l Limits) loops() bool { return l.LoopCount > 0 && l.LoopWindow > 0 }

// Options configure a Manager. The zero value is the defaults.
type Options struct {
	Limits Limits
	// MaxKeys bounds the hosts, templates and host-pattern pairs whose
	// windows, loops and breakers the manager tracks (default 100,000).
	// At the bound, after pruning, a remediation that needs one more is
	// refused (capacity): forgetting a window would lift its limit.
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger logs breakers opening and closing and loops detected
	// (default: discard).
	Logger *slog.Logger
	// Registerer registers the manager's metrics (nil: none):
	// reflex_resource_refusals_total{reason}, reflex_resource_in_use{kind}
	// and reflex_resource_breakers_open.
	Registerer prometheus.Registerer
}

// DefaultMaxKeys is the default of Options.MaxKeys.
const DefaultMaxKeys = 100_000

// sweepEvery is how many acquisitions pass between two prunings of every
// window.
const sweepEvery = 1024

// Manager hands out leases within its limits. Build it with New; it is
// safe for concurrent use.
type Manager struct {
	lim     Limits
	maxKeys int
	now     func() time.Time
	log     *slog.Logger
	m       *metrics

	mu     sync.Mutex
	nextID uint64
	// What runs now: leases by kind, on each host, of each template.
	inUse     [3]int
	hosts     map[string]*hostUse
	templates map[string]int
	// What the limits remember: remediations of each template in the
	// last hour and of each host in the last 24h (oldest first), the
	// remediations of each (host, pattern) for loop detection, and the
	// breakers that are not closed with no failures.
	tmplRuns  map[string][]Run
	hostRuns  map[string][]Run
	loops     map[loopKey][]LoopRun
	breakers  map[string]*breaker
	acquired  int
	lastSweep time.Time
}

// hostUse is what runs on a host.
type hostUse struct {
	leases       int
	remediations []held
}

// held is a remediation lease running on a host.
type held struct {
	lease uint64
	exec  int64
}

type loopKey struct{ host, pattern string }

// breaker is a template's circuit breaker. It is closed when !open;
// half-open is an open breaker whose cooldown has ended.
type breaker struct {
	failures    int
	lastFailure time.Time
	open        bool
	openedAt    time.Time
	// trial is the lease of the trial running, 0 for none.
	trial uint64
}

// New returns a Manager with opts.
func New(opts Options) (*Manager, error) {
	if opts.MaxKeys == 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.MaxKeys < 0 {
		return nil, fmt.Errorf("%w option: max keys %d is negative", ErrInvalid, opts.MaxKeys)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Manager{
		lim:       opts.Limits.withDefaults(),
		maxKeys:   opts.MaxKeys,
		now:       opts.Now,
		log:       opts.Logger.With("component", "resource"),
		m:         m,
		hosts:     make(map[string]*hostUse),
		templates: make(map[string]int),
		tmplRuns:  make(map[string][]Run),
		hostRuns:  make(map[string][]Run),
		loops:     make(map[loopKey][]LoopRun),
		breakers:  make(map[string]*breaker),
	}, nil
}

// Limits returns the manager's limits, defaults filled in.
func (m *Manager) Limits() Limits { return m.lim }

// Lease is the permission to run one step. Release it when the step has
// ended (and, for the breaker to learn the validated outcome, after its
// result was validated).
type Lease struct {
	m        *Manager
	id       uint64
	req      Request
	trial    bool
	acquired time.Time
	released bool // guarded by m.mu
}

// Request is what the lease was acquired for.
func (l *Lease) Request() Request { return l.req }

// Trial reports whether the lease is its template's breaker's one trial
// (half-open): its outcome closes the breaker or opens it again.
func (l *Lease) Trial() bool { return l.trial }

// Acquired is when the lease was granted.
func (l *Lease) Acquired() time.Time { return l.acquired }

// Acquire grants a lease for req, or refuses it with a *Refusal (an
// ErrRefused) naming the limit. An invalid request is an ErrInvalid.
func (m *Manager) Acquire(req Request) (*Lease, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	m.acquired++
	if m.acquired%sweepEvery == 0 {
		m.sweep(now, false)
	}
	r := m.check(req, now)
	if r != nil {
		m.mu.Unlock()
		m.m.refusals.WithLabelValues(string(r.Code)).Inc()
		if r.Code == CodeRemediationLoop {
			m.log.Warn("remediation loop", "host", req.Host, "template", req.Template, "pattern", req.Pattern, "reason", r.Reason)
		}
		return nil, r
	}
	l := m.grant(req, now)
	m.mu.Unlock()
	return l, nil
}

// check returns the refusal of req, nil when it may run. The order puts
// what needs a human before what needs a wait.
func (m *Manager) check(req Request, now time.Time) *Refusal {
	lim := m.lim
	refuse := func(code Code, limit int, retryAt time.Time, format string, args ...any) *Refusal {
		return &Refusal{Code: code, Limit: limit, RetryAt: retryAt, Request: req, Reason: fmt.Sprintf(format, args...)}
	}
	if req.Kind == Remediation {
		if r := m.checkBreaker(req, now); r != nil {
			return r
		}
		if lim.loops() && req.Pattern != "" {
			k := loopKey{req.Host, req.Pattern}
			runs := m.pruneLoop(k, now)
			if !loopHas(runs, req.Execution) && looping(runs, lim.LoopCount) {
				oldest := runs[len(runs)-lim.LoopCount].At
				return refuse(CodeRemediationLoop, lim.LoopCount, oldest.Add(lim.LoopWindow),
					"pattern %q came back on host %q after each of its last %d remediations (since %s, within %s): the remediation does not fix the cause; escalate instead of remediating again",
					req.Pattern, req.Host, lim.LoopCount, oldest.UTC().Format(time.RFC3339), lim.LoopWindow)
			}
		}
		if lim.HostBudget > 0 {
			runs := prune(m.hostRuns, req.Host, now.Add(-HostWindow))
			if !has(runs, req.Execution) && len(runs) >= lim.HostBudget {
				return refuse(CodeBudget, lim.HostBudget, runs[0].At.Add(HostWindow),
					"host %q had %d remediations in the last 24h, its budget (host_budget %d); the next is allowed at %s",
					req.Host, len(runs), lim.HostBudget, runs[0].At.Add(HostWindow).UTC().Format(time.RFC3339))
			}
		}
		if lim.TemplatePerHour > 0 {
			runs := prune(m.tmplRuns, req.Template, now.Add(-TemplateWindow))
			if !has(runs, req.Execution) && len(runs) >= lim.TemplatePerHour {
				return refuse(CodeTemplateRate, lim.TemplatePerHour, runs[0].At.Add(TemplateWindow),
					"template %q ran %d remediations in the last hour (template_per_hour %d); the next is allowed at %s",
					req.Template, len(runs), lim.TemplatePerHour, runs[0].At.Add(TemplateWindow).UTC().Format(time.RFC3339))
			}
		}
		if lim.MaxRemediationsPerHost > 0 {
			if n := m.remediationsOn(req.Host, req.Execution); n >= lim.MaxRemediationsPerHost {
				if lim.MaxRemediationsPerHost == 1 {
					return refuse(CodeHostBusy, 1, time.Time{},
						"a remediation is already running on host %q (one remediation per host at a time)", req.Host)
				}
				return refuse(CodeHostBusy, lim.MaxRemediationsPerHost, time.Time{},
					"%d remediations are already running on host %q (max_remediations_per_host %d)", n, req.Host, lim.MaxRemediationsPerHost)
			}
		}
	}
	if req.Kind != Notification && lim.MaxPerHost > 0 {
		if h := m.hosts[req.Host]; h != nil && h.leases >= lim.MaxPerHost {
			return refuse(CodeHostLimit, lim.MaxPerHost, time.Time{},
				"%d actions are already running on host %q (max_per_host %d)", h.leases, req.Host, lim.MaxPerHost)
		}
	}
	if lim.MaxPerTemplate > 0 && req.Template != "" {
		if n := m.templates[req.Template]; n >= lim.MaxPerTemplate {
			return refuse(CodeTemplateLimit, lim.MaxPerTemplate, time.Time{},
				"%d actions of template %q are already running (max_per_template %d)", n, req.Template, lim.MaxPerTemplate)
		}
	}
	if n := m.total(); lim.MaxConcurrent > 0 && n >= lim.MaxConcurrent {
		return refuse(CodeGlobalLimit, lim.MaxConcurrent, time.Time{},
			"%d actions are already running (max_concurrent %d)", n, lim.MaxConcurrent)
	}
	if req.Kind == Remediation {
		if need := m.newKeys(req); need > 0 && m.keys()+need > m.maxKeys {
			if now.Sub(m.lastSweep) >= time.Second {
				m.sweep(now, true)
			}
			if m.keys()+need > m.maxKeys {
				return refuse(CodeCapacity, m.maxKeys, time.Time{},
					"the resource manager tracks %d hosts, templates and patterns, its bound (max_keys %d): it refuses rather than forget a limit's history",
					m.keys(), m.maxKeys)
			}
		}
	}
	return nil
}

func (m *Manager) checkBreaker(req Request, now time.Time) *Refusal {
	b := m.breakers[req.Template]
	if b == nil || !b.open {
		return nil
	}
	r := &Refusal{Code: CodeBreakerOpen, Limit: m.lim.BreakerFailures, Request: req}
	switch {
	case b.trial != 0:
		r.Reason = fmt.Sprintf("the circuit breaker of template %q is half-open and its one trial is running", req.Template)
	case m.lim.BreakerCooldown < 0:
		r.Reason = fmt.Sprintf("the circuit breaker of template %q opened after %d consecutive failures (breaker_failures %d); only an operator can close it",
			req.Template, b.failures, m.lim.BreakerFailures)
	case now.Before(b.openedAt.Add(m.lim.BreakerCooldown)):
		r.RetryAt = b.openedAt.Add(m.lim.BreakerCooldown)
		r.Reason = fmt.Sprintf("the circuit breaker of template %q opened after %d consecutive failures (breaker_failures %d); one trial is allowed at %s",
			req.Template, b.failures, m.lim.BreakerFailures, r.RetryAt.UTC().Format(time.RFC3339))
	default:
		return nil // half-open: this one is the trial
	}
	return r
}

// grant records the lease of req, which check allowed.
func (m *Manager) grant(req Request, now time.Time) *Lease {
	m.nextID++
	l := &Lease{m: m, id: m.nextID, req: req, acquired: now}
	m.inUse[req.Kind.index()]++
	m.m.inUse.WithLabelValues(string(req.Kind)).Inc()
	if req.Template != "" {
		m.templates[req.Template]++
	}
	if req.Kind == Notification {
		return l
	}
	h := m.hosts[req.Host]
	if h == nil {
		h = &hostUse{}
		m.hosts[req.Host] = h
	}
	h.leases++
	if req.Kind != Remediation {
		return l
	}
	h.remediations = append(h.remediations, held{lease: l.id, exec: req.Execution})
	run := Run{At: now, Execution: req.Execution}
	if m.lim.HostBudget > 0 && !has(m.hostRuns[req.Host], req.Execution) {
		m.hostRuns[req.Host] = append(m.hostRuns[req.Host], run)
	}
	if m.lim.TemplatePerHour > 0 && !has(m.tmplRuns[req.Template], req.Execution) {
		m.tmplRuns[req.Template] = append(m.tmplRuns[req.Template], run)
	}
	if m.lim.loops() && req.Pattern != "" {
		k := loopKey{req.Host, req.Pattern}
		if runs := m.loops[k]; !loopHas(runs, req.Execution) {
			runs = append(runs, LoopRun{At: now, Execution: req.Execution})
			if len(runs) > m.lim.LoopCount {
				runs = append(runs[:0:0], runs[len(runs)-m.lim.LoopCount:]...)
			}
			m.loops[k] = runs
		}
	}
	if b := m.breakers[req.Template]; b != nil && b.open {
		b.trial = l.id
		l.trial = true
	}
	return l
}

// Release frees the lease and, for a remediation, tells the template's
// breaker how it ended. It returns the breaker's change of state, nil
// when there is none. Releasing a lease again does nothing.
func (l *Lease) Release(o Outcome) *BreakerChange {
	m := l.m
	now := m.now()
	m.mu.Lock()
	if l.released {
		m.mu.Unlock()
		return nil
	}
	l.released = true
	req := l.req
	m.inUse[req.Kind.index()]--
	m.m.inUse.WithLabelValues(string(req.Kind)).Dec()
	if req.Template != "" {
		if m.templates[req.Template]--; m.templates[req.Template] <= 0 {
			delete(m.templates, req.Template)
		}
	}
	if h := m.hosts[req.Host]; h != nil && req.Kind != Notification {
		h.leases--
		for i, r := range h.remediations {
			if r.lease == l.id {
				h.remediations = append(h.remediations[:i], h.remediations[i+1:]...)
				break
			}
		}
		if h.leases <= 0 {
			delete(m.hosts, req.Host)
		}
	}
	var ch *BreakerChange
	if req.Kind == Remediation && m.lim.BreakerFailures > 0 {
		ch = m.feed(l, o, now)
	}
	m.mu.Unlock()
	if ch != nil {
		m.log.Warn("circuit breaker", "template", ch.Template, "from", string(ch.From), "to", string(ch.To), "reason", ch.Reason)
	}
	return ch
}

// feed tells the breaker of l's template how l ended.
func (m *Manager) feed(l *Lease, o Outcome, now time.Time) *BreakerChange {
	t := l.req.Template
	b := m.breakers[t]
	if b != nil && b.open {
		if b.trial != l.id {
			// Acquired before the breaker opened: its outcome tells
			// nothing the failures that opened it did not.
			return nil
		}
		b.trial = 0
		if o == Success {
			delete(m.breakers, t)
			m.m.open.Dec()
			return &BreakerChange{Template: t, From: HalfOpen, To: Closed, At: now,
				Reason: fmt.Sprintf("the circuit breaker of template %q closed: its trial succeeded", t)}
		}
		b.openedAt = now
		ch := &BreakerChange{Template: t, From: HalfOpen, To: Open, Failures: b.failures, At: now}
		how := "failed"
		if o != Failure {
			how = "ended with an unknown outcome"
		}
		ch.Reason = fmt.Sprintf("the circuit breaker of template %q opened again: its trial %s", t, how)
		m.retry(ch, b)
		return ch
	}
	switch o {
	case Success:
		delete(m.breakers, t)
	case Failure:
		if b == nil {
			b = &breaker{}
			m.breakers[t] = b
		}
		b.failures++
		b.lastFailure = now
		if b.failures >= m.lim.BreakerFailures {
			b.open, b.openedAt = true, now
			m.m.open.Inc()
			ch := &BreakerChange{Template: t, From: Closed, To: Open, Failures: b.failures, At: now,
				Reason: fmt.Sprintf("the circuit breaker of template %q opened after %d consecutive failures (breaker_failures %d): its remediations are refused",
					t, b.failures, m.lim.BreakerFailures)}
			m.retry(ch, b)
			return ch
		}
	}
	return nil
}

// retry completes the change of a breaker that opened with when its
// trial is allowed.
func (m *Manager) retry(ch *BreakerChange, b *breaker) {
	if m.lim.BreakerCooldown < 0 {
		ch.Reason += "; only an operator can close it"
		return
	}
	ch.RetryAt = b.openedAt.Add(m.lim.BreakerCooldown)
	ch.Reason += "; one trial is allowed at " + ch.RetryAt.UTC().Format(time.RFC3339)
}

// Reset closes the breaker of template, for an operator, and forgets its
// failures. It returns the change when the breaker was open, nil
// otherwise.
func (m *Manager) Reset(template string) *BreakerChange {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.breakers[template]
	if b == nil {
		return nil
	}
	delete(m.breakers, template)
	if !b.open {
		return nil
	}
	m.m.open.Dec()
	from := Open
	if m.stateOf(b, now) == HalfOpen {
		from = HalfOpen
	}
	return &BreakerChange{Template: template, From: from, To: Closed, Failures: b.failures, At: now,
		Reason: fmt.Sprintf("the circuit breaker of template %q was closed by an operator", template)}
}

// Recurred tells the manager that pattern came back on host: it marks the
// latest remediation of pattern on host (within LoopWindow) as followed
// by a recurrence. It reports whether host and pattern are now in a
// remediation loop, so that the next remediation will be refused (and a
// human should be told now).
func (m *Manager) Recurred(host, pattern string) bool {
	if !m.lim.loops() || host == "" || pattern == "" {
		return false
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	runs := m.pruneLoop(loopKey{host, pattern}, now)
	for i := len(runs) - 1; i >= 0; i-- {
		if !runs[i].At.After(now) {
			runs[i].Recurred = true
			break
		}
	}
	return looping(runs, m.lim.LoopCount)
}

// ResetLoop forgets the remediations of pattern on host, for an operator
// who dealt with the cause of a loop.
func (m *Manager) ResetLoop(host, pattern string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.loops, loopKey{host, pattern})
}

// Usage is how many leases are held.
type Usage struct {
	Total        int `json:"total"`
	Diagnostic   int `json:"diagnostic"`
	Remediation  int `json:"remediation"`
	Notification int `json:"notification"`
}

// InUse returns the leases held now.
func (m *Manager) InUse() Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Usage{Total: m.total(), Diagnostic: m.inUse[0], Remediation: m.inUse[1], Notification: m.inUse[2]}
}

func (m *Manager) total() int { return m.inUse[0] + m.inUse[1] + m.inUse[2] }

// remediationsOn counts the remediations running on host, those of exec
// (when not 0) aside: the executions, not the steps.
func (m *Manager) remediationsOn(host string, exec int64) int {
	h := m.hosts[host]
	if h == nil {
		return 0
	}
	n := 0
	for i, r := range h.remediations {
		if exec != 0 && r.exec == exec {
			continue
		}
		counted := false
		if r.exec != 0 {
			for _, o := range h.remediations[:i] {
				if o.exec == r.exec {
					counted = true
					break
				}
			}
		}
		if !counted {
			n++
		}
	}
	return n
}
