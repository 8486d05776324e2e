// Package engine is the trigger rules engine. It reads the processed-event
// stream as the durable consumer "rules", matches each occurrence (a new
// event, or a repeat folded into one) against the active trigger rules,
// counts it in the window of its rule and group key, and for each firing
// writes a pending rules.rule_executions row, queues a decision request for
// the Autonomous Response Service on the decisions stream and hands an
// alert to the notification router.
//
// # Delivery and idempotency
//
// The processed stream delivers at least once, so the engine's effects are
// keyed by rule and occurrence (the raw event id). For each batch it
// evaluates every record, then writes in one store transaction the
// batch's executions (unique per rule and occurrence), the rules'
// suppression counters and the windows it changed; then it publishes the
// decision requests (the stream drops a request published again under the
// same id) and dispatches the alerts (the router drops an alert its group
// holds already); then the batch is acknowledged. A record delivered again
// finds its occurrence counted already (window.Duplicate): the engine looks
// up the execution it made, if any, and publishes and dispatches it again,
// so that a crash between the commit and the acknowledgement loses
// neither. When the transaction fails, the windows are read back from the
// store before the batch is tried again, so that memory never runs ahead
// of what is stored.
//
// # Windows across restarts
//
// The windows and throttles live in memory (window.State) and in the
// store's rules.rule_windows, one row per rule and group key, written with
// the batch that changed them. At start the engine reads them back, so a
// window that was open when the server stopped continues.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/decision"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/rules/window"
	"github.com/reflex-ops/reflex/internal/store"
)

// ConsumerName is the engine's durable consumer of the processed stream.
const ConsumerName = "rules"

// Defaults of Options.
const (
	DefaultReloadEvery = 30 * time.Second
	DefaultPruneEvery  = time.Hour
	DefaultCountsEvery = 5 * time.Second
)

// maxCorrelations bounds the correlation groups a decision request carries.
const maxCorrelations = 50

// headerRoom is what a decision message leaves of the server's payload
// limit for its headers (the message id and the expected stream).
const headerRoom = 1024

// Store is what the engine reads and writes: the rules and their
// executions and windows, and the events behind the records.
type Store interface {
	store.RuleStore
	Event(ctx context.Context, id int64) (*event.Event, error)
	Correlations(ctx context.Context, id int64) ([]event.Correlation, error)
}

// Decisions is where decision requests are queued (*bus.Decisions).
type Decisions interface {
	Publish(ctx context.Context, msgs []bus.DecisionMessage) (dups int, err error)
	// MaxPayload bounds a message (0: no bound).
	MaxPayload() int64
}

// Notifier takes alerts to the notification router (*notify.Dispatcher).
type Notifier interface {
	Dispatch(a notify.Alert)
}

// Options configure an Engine. Store and Decisions are required.
type Options struct {
	Store     Store
	Decisions Decisions
	// Notifier receives an alert per firing (nil: none).
	Notifier Notifier
	// MaxKeys bounds the rule and group key pairs kept in memory (default
	// window.DefaultMaxKeys).
	MaxKeys int
	// ReloadEvery is how often the rules are read again from the store,
	// for changes made elsewhere (default 30s); Reload asks at once.
	ReloadEvery time.Duration
	// PruneEvery is how often stored windows that cannot matter any more
	// are deleted (default 1h).
	PruneEvery time.Duration
	// CountsEvery bounds how long suppressions of batches that changed
	// nothing else wait in memory before they are written (default 5s);
	// Flush writes them at once. A crash loses at most this much of the
	// suppressed_firings counters, nothing else.
	CountsEvery time.Duration
	// Logger receives logs (nil: none).
	Logger *slog.Logger
	// Registerer registers the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now). It stamps executions and windows;
	// windows and throttles run on the events' own times.
	Now func() time.Time
}

// Engine evaluates trigger rules. Handle is its processed.Handler; Run
// keeps its rules current. It is safe for concurrent use.
type Engine struct {
	opts  Options
	log   *slog.Logger
	met   *metrics
	state *window.State
	rules atomic.Pointer[ruleSet]
	wake  chan struct{}

	// mu serializes batches and rule changes, so that a batch sees one
	// rule set and the windows of a changed rule are forgotten between
	// batches.
	mu sync.Mutex
	// forget lists rules whose stored windows are still to be deleted.
	forget []int64
	// stale means the windows in memory may be ahead of the store (a
	// batch's transaction failed): they are read back before the next
	// batch.
	stale bool
	// unsaved are suppressions counted and not yet written, by rule: a
	// batch that only suppressed firings writes nothing, and its counts go
	// with the next write, at most CountsEvery later.
	unsaved map[int64]int64
	savedAt time.Time
}

// New returns an engine with the active rules and the stored windows
// loaded.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Store == nil || opts.Decisions == nil {
		return nil, errors.New("engine: Options.Store and Options.Decisions are required")
	}
	if opts.ReloadEvery <= 0 {
		opts.ReloadEvery = DefaultReloadEvery
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = DefaultPruneEvery
	}
	if opts.CountsEvery <= 0 {
		opts.CountsEvery = DefaultCountsEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{
		opts:    opts,
		log:     opts.Logger.With("component", "rules"),
		state:   window.New(window.Options{MaxKeys: opts.MaxKeys}),
		wake:    make(chan struct{}, 1),
		unsaved: map[int64]int64{},
	}
	e.rules.Store(emptySet())
	var err error
	if e.met, err = newMetrics(opts.Registerer, e); err != nil {
		return nil, err
	}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.restore(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Wake asks Run to read the rules again now (after a change through the
// API). It does not block.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run reloads the rules every ReloadEvery and when woken, and prunes the
// stored windows every PruneEvery, until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	reload := time.NewTicker(e.opts.ReloadEvery)
	defer reload.Stop()
	prune := time.NewTicker(e.opts.PruneEvery)
	defer prune.Stop()
	counts := time.NewTicker(e.opts.CountsEvery)
	defer counts.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-reload.C:
		case <-prune.C:
			e.prune(ctx)
			continue
		case <-counts.C:
			if err := e.Flush(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("writing the suppression counters failed; they are tried again", "err", err)
			}
			continue
		}
		if err := e.Reload(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("reading the trigger rules failed; the rules in use stay", "err", err)
		}
	}
}

// prune deletes the stored windows that no firing can depend on any more:
// those of rules that are gone or inactive, and those not updated for
// longer than the longest window plus the throttle's hour.
func (e *Engine) prune(ctx context.Context) {
	keep := e.rules.Load().longest + 2*time.Hour
	n, err := e.opts.Store.PruneRuleWindows(ctx, e.opts.Now().Add(-keep))
	switch {
	case err != nil && ctx.Err() == nil:
		e.log.Warn("pruning the stored rule windows failed", "err", err)
	case n > 0:
		e.log.Info("pruned stored rule windows", "removed", n)
	}
}

// restore replaces the windows in memory with the stored ones of the
// active rules. e.mu is held.
func (e *Engine) restore(ctx context.Context) error {
	rows, err := e.opts.Store.RuleWindows(ctx)
	if err != nil {
		return fmt.Errorf("engine: read the stored windows: %w", err)
	}
	rs := e.rules.Load()
	slices.SortFunc(rows, func(a, b store.RuleWindow) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	snap := window.Snapshot{Version: window.SnapshotVersion, Keys: make([]window.KeySnapshot, 0, len(rows))}
	for _, row := range rows {
		if rs.rules[row.RuleID] == nil {
			continue
		}
		var ks window.KeySnapshot
		if err := json.Unmarshal(row.State, &ks); err != nil || ks.RuleID != row.RuleID || ks.GroupKey != row.GroupKey {
			e.met.badWindows.Inc()
			e.log.Warn("skipped a stored rule window that cannot be read; it starts afresh", "rule_id", row.RuleID, "err", err)
			continue
		}
		snap.Keys = append(snap.Keys, ks)
	}
	if err := e.state.Restore(snap); err != nil {
		return fmt.Errorf("engine: restore the windows: %w", err)
	}
	e.stale = false
	if len(snap.Keys) > 0 {
		e.log.Info("rule windows restored", "keys", len(snap.Keys))
	}
	return nil
}

// firing is one allowed firing of a batch.
type firing struct {
	rule  *compiled
	ev    *event.Event
	rec   *processed.Record
	group string
	at    time.Time
	count int // the occurrences of the window that fired
}

// batch is what Handle gathers from the records of one batch.
type batch struct {
	firings    []firing
	dups       []firing // occurrences counted before: their firing, if any, is announced again
	suppressed map[int64]int64
	touched    map[touchKey]struct{}
}

type touchKey struct {
	rule  int64
	group string
}

// Handle evaluates a batch of processed-stream records: the engine's
// processed.Handler.
func (e *Engine) Handle(ctx context.Context, recs []processed.Record) error {
	start := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stale {
		if err := e.restore(ctx); err != nil {
			return err
		}
	}
	rs := e.rules.Load()
	e.met.records.Add(float64(len(recs)))
	b := batch{suppressed: map[int64]int64{}, touched: map[touchKey]struct{}{}}
	var ids []int64
	if len(rs.rules) == 0 {
		recs = nil // nothing to evaluate; a pending forget is still written
	}
	for i := range recs {
		rec := &recs[i]
		ev, err := e.eventOf(ctx, rec)
		if err != nil {
			return err
		}
		if ev == nil || ev.Resolves() {
			continue // a resolution ends an alert: it is no occurrence to count
		}
		ids = rs.index.Matching(ev, ids[:0])
		for _, id := range ids {
			c := rs.rules[id]
			if c == nil || !c.admits(ev) {
				continue
			}
			e.met.matches.Inc()
			f := firing{rule: c, ev: ev, rec: rec, group: window.GroupKey(ev, c.rule.GroupBy), at: occurrenceTime(rec, ev)}
			out := e.state.Observe(c.win, f.group, rec.RawEventID, f.at)
			if out == window.Fire || (c.win.MinCount > 1 && out != window.Duplicate) {
				// What a restart must find: the throttle's firings and the
				// occurrences of a window that needs several. A
				// suppression of a rule that fires on each match changes
				// only the ids kept against redelivery, which the
				// executions' unique key covers: not worth a write each.
				b.touched[touchKey{id, f.group}] = struct{}{}
			}
			switch out {
			case window.Fire:
				f.count = max(c.win.MinCount, 1)
				b.firings = append(b.firings, f)
			case window.Suppressed:
				b.suppressed[id]++
				e.met.firings.WithLabelValues("suppressed").Inc()
				e.log.Debug("firing suppressed by the throttle", "rule_id", id, "rule", c.rule.Name,
					"event_id", ev.ID, "max_triggers_per_hour", c.win.MaxPerHour)
			case window.Duplicate:
				b.dups = append(b.dups, f)
			}
		}
	}
	if len(b.touched) == 0 && len(b.dups) == 0 && len(e.forget) == 0 &&
		(len(b.suppressed) == 0 || time.Since(e.savedAt) < e.opts.CountsEvery) {
		for id, n := range b.suppressed {
			e.unsaved[id] += n // written with the next write, or by Flush
		}
		return nil
	}
	xs, err := e.record(ctx, &b)
	if err != nil {
		e.stale = true
		return err
	}
	if err := e.announce(ctx, &b, xs); err != nil {
		return err
	}
	e.met.batchSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// eventOf returns the processed event of rec: the record's own, or the
// stored one when the record left it out. Nil when the store no longer
// has it (counted and skipped).
func (e *Engine) eventOf(ctx context.Context, rec *processed.Record) (*event.Event, error) {
	if rec.Event != nil && !rec.Truncated {
		return rec.Event, nil
	}
	ev, err := e.opts.Store.Event(ctx, rec.EventID)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnreadable):
		e.met.missing.Inc()
		e.log.Warn("a processed record's event is not in the store; rules skip it", "event_id", rec.EventID, "raw_event_id", rec.RawEventID, "err", err)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("engine: read event %d: %w", rec.EventID, err)
	}
	ev.OccurrenceCount, ev.LastSeenAt = rec.OccurrenceCount, rec.LastSeenAt
	return ev, nil
}

// occurrenceTime is when the occurrence of rec happened: the event's time
// for a new event, its last_seen_at for a repeat (the repeat's arrival).
func occurrenceTime(rec *processed.Record, ev *event.Event) time.Time {
	if rec.Kind == processed.KindRepeat && !rec.LastSeenAt.IsZero() {
		return rec.LastSeenAt
	}
	return ev.OccurredAt
}

// record writes the batch's executions, counters and windows in one
// transaction and returns the executions as stored, in b.firings order.
func (e *Engine) record(ctx context.Context, b *batch) ([]store.RuleExecution, error) {
	now := e.opts.Now().UTC()
	fb := store.FiringBatch{Forget: e.forget}
	for _, f := range b.firings {
		fb.Executions = append(fb.Executions, store.RuleExecution{
			TriggerRuleID:        f.rule.rule.ID,
			ResponseTemplateID:   f.rule.template,
			TriggeringEventID:    f.ev.ID,
			TriggeringRawEventID: f.rec.RawEventID,
			Status:               "pending",
			StartedAt:            now,
		})
	}
	counts := maps.Clone(e.unsaved)
	for id, n := range b.suppressed {
		counts[id] += n
	}
	for id, n := range counts {
		fb.Counts = append(fb.Counts, store.RuleCount{RuleID: id, Suppressed: n})
	}
	for k := range b.touched {
		w := store.RuleWindow{RuleID: k.rule, GroupKey: k.group, UpdatedAt: now}
		if ks, ok := e.state.Key(k.rule, k.group); ok {
			raw, err := json.Marshal(ks)
			if err != nil {
				return nil, fmt.Errorf("engine: encode window of rule %d: %w", k.rule, err)
			}
			w.State = raw
		}
		fb.Windows = append(fb.Windows, w)
	}
	xs, err := e.opts.Store.RecordFirings(ctx, fb)
	if err != nil {
		e.met.storeFailures.Inc()
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.forget = nil
	clear(e.unsaved)
	e.savedAt = time.Now()
	return xs, nil
}

// Flush writes the suppressions counted and not yet written (see
// Options.CountsEvery). The server calls it at stop, after the last batch.
func (e *Engine) Flush(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.unsaved) == 0 {
		return nil
	}
	_, err := e.record(ctx, &batch{})
	return err
}

// announce queues the decision requests of the batch's firings (and of
// the redelivered occurrences that had fired) and then dispatches their
// alerts.
func (e *Engine) announce(ctx context.Context, b *batch, xs []store.RuleExecution) error {
	type out struct {
		f firing
		x store.RuleExecution
	}
	var outs []out
	for i, f := range b.firings {
		if xs[i].ID == 0 {
			continue // the rule was deleted meanwhile
		}
		e.met.firings.WithLabelValues("fired").Inc()
		e.log.Info("rule fired", "rule_id", f.rule.rule.ID, "rule", f.rule.rule.Name, "event_id", f.ev.ID,
			"source_host", f.ev.SourceHost, "execution_id", xs[i].ID)
		outs = append(outs, out{f, xs[i]})
	}
	for _, f := range b.dups {
		x, err := e.opts.Store.OccurrenceExecution(ctx, f.rule.rule.ID, f.rec.RawEventID)
		if errors.Is(err, store.ErrNotFound) {
			continue // counted in a window that has not fired
		}
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		e.met.reannounced.Inc()
		outs = append(outs, out{f, x})
	}
	if len(outs) == 0 {
		return nil
	}
	reqs := make([]*decision.Request, 0, len(outs))
	corrs := map[int64][]decision.Correlation{} // several rules often fire on one event
	for _, o := range outs {
		r, err := e.request(ctx, o.f, o.x, corrs)
		if err != nil {
			return err
		}
		reqs = append(reqs, r)
	}
	// Leave room for the message's headers under the server's limit.
	packed, err := decision.Pack(reqs, max(0, int(e.opts.Decisions.MaxPayload())-headerRoom))
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	msgs := make([]bus.DecisionMessage, len(packed))
	for i, p := range packed {
		msgs[i] = bus.DecisionMessage{MsgID: p.MsgID, Data: p.Data}
	}
	if _, err := e.opts.Decisions.Publish(ctx, msgs); err != nil {
		e.met.publishFailures.Inc()
		return fmt.Errorf("engine: queue decision requests: %w", err)
	}
	if e.opts.Notifier != nil {
		for _, o := range outs {
			e.opts.Notifier.Dispatch(alertOf(o.f, o.x))
		}
	}
	return nil
}

// request is the decision request of a firing, with the event's
// correlations read once per batch (seen caches them by event id).
func (e *Engine) request(ctx context.Context, f firing, x store.RuleExecution, seen map[int64][]decision.Correlation) (*decision.Request, error) {
	corrs, ok := seen[f.ev.ID]
	if !ok {
		rows, err := e.opts.Store.Correlations(ctx, f.ev.ID)
		if errors.Is(err, store.ErrNotFound) {
			rows, err = nil, nil // removed by retention meanwhile: the request goes without
		}
		if err != nil {
			return nil, fmt.Errorf("engine: correlations of event %d: %w", f.ev.ID, err)
		}
		corrs = make([]decision.Correlation, 0, min(len(rows), maxCorrelations))
		for _, c := range rows[:min(len(rows), maxCorrelations)] {
			corrs = append(corrs, decision.Bounded(c))
		}
		seen[f.ev.ID] = corrs
	}
	return &decision.Request{
		ExecutionID:  x.ID,
		RuleID:       f.rule.rule.ID,
		RuleName:     f.rule.rule.Name,
		OccurrenceID: f.rec.RawEventID,
		GroupKey:     f.group,
		Occurrences:  max(f.count, 1),
		FiredAt:      f.at,
		Event:        *f.ev,
		Correlations: corrs,
		Templates:    f.rule.templates,
	}, nil
}

// alertOf is the alert of a firing, labelled as docs/notifications.md
// says.
func alertOf(f firing, x store.RuleExecution) notify.Alert {
	ev := f.ev
	return notify.Alert{
		RuleID:     f.rule.rule.ID,
		RuleName:   f.rule.rule.Name,
		EventID:    ev.ID,
		SourceHost: ev.SourceHost,
		Severity:   string(ev.Severity),
		Title:      ev.Title,
		FiredAt:    f.at,
		Labels: map[string]string{
			"rule":         f.rule.rule.Name,
			"rule_id":      strconv.FormatInt(f.rule.rule.ID, 10),
			"source_host":  ev.SourceHost,
			"severity":     string(ev.Severity),
			"event_type":   ev.EventType,
			"source":       ev.SourceSystem,
			"service":      ev.SourceService,
			"execution_id": strconv.FormatInt(x.ID, 10),
		},
	}
}
