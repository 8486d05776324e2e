// Package dbcheck is reflex's database adapter: scheduled checks against
// PostgreSQL and MySQL/MariaDB (a query and a condition on its result, or
// a built-in check), which raise an event when their condition begins to
// hold and resolve it when it ceases to, and PostgreSQL LISTEN/NOTIFY
// channels, whose notifications become events (source type database).
//
// Each check runs on its own interval, from a jittered start, with at most
// Config.MaxConcurrent checks running at once; a run that overruns its
// interval makes the runs it overlapped skipped (and counted). Only
// changes of state are submitted: the first run whose condition holds
// raises the event (alert firing), the first after it whose condition no
// longer holds resolves it (alert resolved, severity info). A check whose
// query fails (an error, a timeout, an unreachable server) raises a
// separate check_failed event, resolved when the check runs again; its
// condition's state is kept meanwhile, so that a failing check neither
// raises nor resolves its own alert. Each change of state is logged once.
//
// DSNs hold passwords: they are never logged, and every error that reaches
// a log or an event is redacted.
package dbcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Labels of the metrics.
const (
	adapterLabel   = "database"
	listenerCheck  = "check"
	listenerNotify = "notify"
)

// Outcomes of a check's run (reflex_dbcheck_runs_total's outcome label).
const (
	OutcomeClear    = "clear"    // the condition does not hold
	OutcomeHolds    = "holds"    // the condition holds
	OutcomeError    = "error"    // the query failed
	OutcomeTimeout  = "timeout"  // the query outran the check's timeout
	OutcomeSkipped  = "skipped"  // a run was skipped: the previous one overran the interval
	OutcomeBaseline = "baseline" // a growth check's first run: nothing to compare with yet
)

// maxErrorLen bounds the error text an event carries.
const maxErrorLen = 500

// Adapter runs the checks and listeners of a Config.
type Adapter struct {
	cfg     *Config
	env     ingest.Env
	log     *slog.Logger
	metrics *ingest.Metrics
	runs    *prometheus.CounterVec
	dur     *prometheus.HistogramVec
	sem     chan struct{}
	dbs     map[string]querier

	// submit submits one item (the intake's Blocking submitter; a fake in
	// unit tests).
	submit   func(ctx context.Context, it intake.Item) error
	closeSub func(ctx context.Context) error

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New returns an Adapter for cfg (loaded by Load or Parse). It opens the
// databases' pools, which connect when a check first runs: an unreachable
// database makes its checks fail, not New.
func New(cfg *Config, env ingest.Env) (*Adapter, error) {
	if cfg == nil || env.Intake == nil {
		return nil, errors.New("dbcheck: config and intake are required")
	}
	a, err := newAdapter(cfg, env)
	if err != nil {
		return nil, err
	}
	sub, err := env.Intake.NewSubmitter(intake.SubmitterOptions{Mode: intake.Blocking})
	if err != nil {
		return nil, fmt.Errorf("dbcheck: %w", err)
	}
	a.submit = func(ctx context.Context, it intake.Item) error {
		_, err := sub.Submit(ctx, event.SourceDB, []intake.Item{it})
		return err
	}
	a.closeSub = sub.Close
	if err := a.openDBs(); err != nil {
		_ = sub.Close(context.Background())
		return nil, err
	}
	return a, nil
}

// openDBs opens the pools of the databases.
func (a *Adapter) openDBs() error {
	for i := range a.cfg.Databases {
		d := &a.cfg.Databases[i]
		var (
			q   querier
			err error
		)
		if d.Driver == DriverMySQL {
			q, err = openMySQL(d.dsn, d.MaxConns)
		} else {
			q, err = openPostgres(d.dsn, d.MaxConns)
		}
		if err != nil {
			a.closeDBs()
			return fmt.Errorf("dbcheck: database %s: %w", d.Name, d.redactor.err(err))
		}
		a.dbs[d.Name] = q
	}
	return nil
}

// newAdapter builds what New and the unit tests share.
func newAdapter(cfg *Config, env ingest.Env) (*Adapter, error) {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Registerer == nil {
		env.Registerer = prometheus.NewRegistry()
	}
	m, err := ingest.NewMetrics(env.Registerer)
	if err != nil {
		return nil, fmt.Errorf("dbcheck: %w", err)
	}
	a := &Adapter{
		cfg:     cfg,
		env:     env,
		log:     env.Logger,
		metrics: m,
		sem:     make(chan struct{}, max(cfg.MaxConcurrent, 1)),
		dbs:     make(map[string]querier, len(cfg.Databases)),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_dbcheck_runs_total",
			Help: "Runs of database checks, by check and outcome (clear, holds, baseline, error, timeout, skipped).",
		}, []string{"check", "outcome"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reflex_dbcheck_duration_seconds",
			Help:    "How long database checks' queries took, by check.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30},
		}, []string{"check"}),
	}
	if err := promutil.Register(env.Registerer, &a.runs); err != nil {
		return nil, fmt.Errorf("dbcheck: %w", err)
	}
	if err := promutil.Register(env.Registerer, &a.dur); err != nil {
		return nil, fmt.Errorf("dbcheck: %w", err)
	}
	return a, nil
}

// Start starts a goroutine per check and one per database that has
// listen channels. It returns at once; Stop stops them.
func (a *Adapter) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	for i := range a.cfg.Checks {
		k := &a.cfg.Checks[i]
		a.wg.Go(func() { a.loop(ctx, k) })
	}
	byDB := map[string][]*Listen{}
	var order []string
	for i := range a.cfg.Listen {
		l := &a.cfg.Listen[i]
		if byDB[l.Database] == nil {
			order = append(order, l.Database)
		}
		byDB[l.Database] = append(byDB[l.Database], l)
	}
	for _, name := range order {
		ls := byDB[name]
		a.wg.Go(func() { a.listen(ctx, ls[0].db, ls) })
	}
	a.log.Info("database checks started", "checks", len(a.cfg.Checks), "listen", len(a.cfg.Listen))
}

// Stop stops the checks and listeners, waits for them (bounded by ctx),
// publishes what was submitted and closes the pools. It is idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	var err error
	a.once.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		done := make(chan struct{})
		go func() { a.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("dbcheck: stop: %w", ctx.Err())
		}
		if a.closeSub != nil {
			err = errors.Join(err, a.closeSub(ctx))
		}
		a.closeDBs()
	})
	return err
}

var _ ingest.Stop = (*Adapter)(nil).Stop

func (a *Adapter) closeDBs() {
	for _, q := range a.dbs {
		q.close()
	}
}

// checkState is a check's state between runs; one goroutine owns it.
type checkState struct {
	firing  bool
	since   time.Time // when firing began
	failing bool
	failed  time.Time // when failing began
	prev    *float64  // a growth check's previous reading
}

// loop runs check k on its interval until ctx is done.
func (a *Adapter) loop(ctx context.Context, k *Check) {
	st := &checkState{}
	delay := rand.N(k.Interval) //nolint:gosec // jitter, not a secret
	next := time.Now().Add(delay)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		a.runOnce(ctx, k, st)
		next = next.Add(k.Interval)
		now := time.Now()
		skipped := 0
		for !next.After(now) {
			skipped++
			next = next.Add(k.Interval)
		}
		if skipped > 0 {
			a.runs.WithLabelValues(k.Name, OutcomeSkipped).Add(float64(skipped))
			a.log.Debug("database check overran its interval", "check", k.Name, "skipped", skipped)
		}
		timer.Reset(next.Sub(now))
	}
}

// runOnce runs k's query and acts on its result.
func (a *Adapter) runOnce(ctx context.Context, k *Check, st *checkState) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	started := time.Now()
	res, err := a.query(ctx, k)
	<-a.sem
	a.dur.WithLabelValues(k.Name).Observe(time.Since(started).Seconds())
	if ctx.Err() != nil {
		return // stopping: the run proves nothing
	}
	a.evaluate(ctx, k, st, res, err)
}

// query runs k once, bounded by its timeout. A panic in a driver is an
// error of the run.
func (a *Adapter) query(ctx context.Context, k *Check) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("dbcheck: panic in the %s driver: %v", k.db.Driver, p)
		}
	}()
	q := a.dbs[k.Database]
	if q == nil {
		return nil, fmt.Errorf("dbcheck: database %s is not open", k.Database)
	}
	qctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	if k.builtin != nil {
		res, err = k.builtin.run(qctx, q, *k.Threshold)
	} else {
		res, err = q.query(qctx, k.Query)
	}
	if err != nil && qctx.Err() != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%w after %s: %w", errTimeout, k.Timeout, err)
	}
	return res, err
}

var errTimeout = errors.New("timeout")

// evaluate moves k's state on a run's result (or error) and submits an
// event for each change of state. A change whose event is not submitted
// is not taken: the next run tries again.
func (a *Adapter) evaluate(ctx context.Context, k *Check, st *checkState, res *Result, err error) {
	now := a.env.Now()
	if err != nil {
		outcome := OutcomeError
		if errors.Is(err, errTimeout) {
			outcome = OutcomeTimeout
		}
		a.runs.WithLabelValues(k.Name, outcome).Inc()
		if st.failing {
			return
		}
		msg := cutText(k.db.redactor.text(err.Error()), maxErrorLen)
		p := a.checkPayload(k, KindCheckFailed, event.AlertFiring, now, now, nil)
		p.Error = msg
		p.Title = fmt.Sprintf("Check %s on %s fails: %s", k.Name, k.Database, firstLine(msg))
		if a.emit(ctx, p, k.severity, k.db.Host) {
			st.failing, st.failed = true, now
			a.log.Warn("database check failing", "check", k.Name, "database", k.Database, "err", msg)
		}
		return
	}
	if st.failing {
		p := a.checkPayload(k, KindCheckFailed, event.AlertResolved, now, st.failed, nil)
		p.Title = fmt.Sprintf("Resolved: check %s on %s runs again", k.Name, k.Database)
		if a.emit(ctx, p, event.Info, k.db.Host) {
			st.failing = false
			a.log.Info("database check runs again", "check", k.Name, "database", k.Database)
		}
	}
	if k.builtin != nil && k.builtin.delta {
		cur := res.Value
		if cur == nil {
			a.runs.WithLabelValues(k.Name, OutcomeClear).Inc()
			return
		}
		prev := st.prev
		st.prev = cur
		if prev == nil {
			a.runs.WithLabelValues(k.Name, OutcomeBaseline).Inc()
			return
		}
		growth := math.Max(*cur-*prev, 0) // a counter reset is no growth
		res.Value = &growth
	}
	holds := k.cond.Holds(res.Value, res.Rows)
	if holds {
		a.runs.WithLabelValues(k.Name, OutcomeHolds).Inc()
	} else {
		a.runs.WithLabelValues(k.Name, OutcomeClear).Inc()
	}
	if holds == st.firing {
		return
	}
	status, sev, since := event.AlertFiring, k.severity, now
	if !holds {
		status, sev, since = event.AlertResolved, event.Info, st.since
	}
	p := a.checkPayload(k, KindCheck, status, now, since, res)
	if a.emit(ctx, p, sev, k.db.Host) {
		st.firing = holds
		if holds {
			st.since = now
		}
		a.log.Info("database check changed state", "check", k.Name, "database", k.Database, "status", string(status))
	}
}

// checkPayload is the payload of an event of k.
func (a *Adapter) checkPayload(k *Check, kind string, status event.AlertStatus, now, since time.Time, res *Result) *Payload {
	sev := k.severity
	if status == event.AlertResolved {
		sev = event.Info
	}
	p := &Payload{
		Kind:      kind,
		Database:  k.Database,
		Driver:    k.db.Driver,
		Host:      k.db.Host,
		Severity:  string(sev),
		At:        now.UTC(),
		Check:     k.Name,
		Condition: k.cond.String(),
		Status:    string(status),
	}
	if !since.IsZero() {
		s := since.UTC()
		p.Since = &s
	}
	if k.builtin != nil {
		p.Builtin = k.builtin.name
		p.Threshold = k.Threshold
	}
	if res != nil {
		if res.Value != nil && !math.IsNaN(*res.Value) && !math.IsInf(*res.Value, 0) {
			p.Value = res.Value
		}
		p.RowCount = res.Rows
		p.Rows = res.Sample
		p.Title = a.summary(k, p)
	}
	return p
}

// summary renders k's summary template for p.
func (a *Adapter) summary(k *Check, p *Payload) string {
	d := summaryData{
		Check: k.Name, Database: k.Database, Host: k.db.Host, Condition: p.Condition,
		Status: p.Status, Rows: p.RowCount,
	}
	if p.Value != nil {
		d.HasValue, d.Value = true, *p.Value
	}
	if k.Threshold != nil {
		d.Threshold = *k.Threshold
	}
	var b strings.Builder
	if err := k.summary.Execute(&b, d); err != nil {
		a.log.Warn("database check summary template failed", "check", k.Name, "err", err)
		b.Reset()
		fmt.Fprintf(&b, "%s on %s", k.Name, k.Database)
	}
	title := strings.TrimSpace(b.String())
	if p.Status == string(event.AlertResolved) {
		title = "Resolved: " + title
	}
	return title
}

// emit submits p at severity sev (the lane) for host (the partition: the
// host the normalizer gives the event) and reports whether the intake
// took it.
func (a *Adapter) emit(ctx context.Context, p *Payload, sev event.Severity, host string) bool {
	listener := listenerCheck
	if p.Kind == KindNotify {
		listener = listenerNotify
	}
	a.metrics.Received.WithLabelValues(adapterLabel, listener).Inc()
	data, err := encode(p)
	if err == nil && a.env.MaxEventBytes > 0 && len(data) > a.env.MaxEventBytes && len(p.Rows) > 0 {
		p.Rows = nil // the sample is what can be spared
		data, err = encode(p)
	}
	if err != nil {
		a.metrics.Rejected.WithLabelValues(adapterLabel, listener, "encode").Inc()
		a.log.Warn("database event not encoded", "database", p.Database, "check", p.Check, "err", err)
		return false
	}
	if a.env.MaxEventBytes > 0 && len(data) > a.env.MaxEventBytes {
		a.metrics.Rejected.WithLabelValues(adapterLabel, listener, "too_large").Inc()
		a.log.Warn("database event too large", "database", p.Database, "check", p.Check, "bytes", len(data))
		return false
	}
	it := intake.Item{SourceSystem: p.Database, Severity: sev, Data: data, Host: strings.ToLower(strings.TrimSpace(host))}
	if err := a.submit(ctx, it); err != nil {
		a.metrics.Dropped.WithLabelValues(adapterLabel, listener, "intake").Inc()
		if ctx.Err() == nil {
			a.log.Warn("database event not submitted", "database", p.Database, "check", p.Check, "err", err)
		}
		return false
	}
	a.metrics.Accepted.WithLabelValues(adapterLabel, listener).Inc()
	return true
}

func encode(p *Payload) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return cutText(s, 200)
}
