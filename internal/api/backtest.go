package api

import (
	"container/heap"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/rules/cond"
	"github.com/reflex-ops/reflex/internal/rules/window"
	"github.com/reflex-ops/reflex/internal/store"
)

// Bounds of a backtest.
const (
	// maxBacktestRange is the longest time range of a backtest.
	maxBacktestRange = 31 * 24 * time.Hour
	// maxBacktestEvents bounds the stored events a backtest evaluates;
	// beyond it the answer is truncated.
	maxBacktestEvents = 1_000_000
	// maxBacktestOccurrences bounds the occurrences a backtest observes
	// (an event stands for occurrence_count of them); beyond it the answer
	// is truncated.
	maxBacktestOccurrences = 10_000_000
	// backtestPage is how many events a backtest reads per store query.
	backtestPage = 1000
)

// BacktestResult is the answer of a backtest: what the rule's conditions,
// window and throttle would have done over the stored events of a range.
type BacktestResult struct {
	// Events counts the stored events evaluated.
	Events int64 `json:"events"`
	// Matched counts the events that matched the rule's severity
	// threshold and conditions; Occurrences the occurrences they stand for
	// (their occurrence_count) within the range.
	Matched     int64 `json:"matched"`
	Occurrences int64 `json:"occurrences"`
	// Firings counts the firings the window and throttle allow;
	// Suppressed those the throttle would have stopped.
	Firings    int64 `json:"firings"`
	Suppressed int64 `json:"suppressed"`
	// FirstFiringAt and LastFiringAt are the times of the first and the
	// last allowed firing; null without firings.
	FirstFiringAt *time.Time `json:"first_firing_at"`
	LastFiringAt  *time.Time `json:"last_firing_at"`
	// Truncated reports that the range held more than the backtest
	// evaluates (maxBacktestEvents events or maxBacktestOccurrences
	// occurrences): the counts cover its beginning only.
	Truncated bool `json:"truncated"`
}

// backtestRange validates the since and until of a backtest request.
func backtestRange(req RuleTestRequest, now time.Time) (since, until time.Time, fe *fieldError) {
	if req.Since == nil || string(req.Since) == "null" {
		return since, until, badField("since", "required for a backtest: an RFC 3339 time such as 2026-11-27T10:00:00Z")
	}
	if since, fe = jsonTime("since", req.Since); fe != nil {
		return since, until, fe
	}
	until = now.UTC()
	if req.Until != nil && string(req.Until) != "null" {
		if until, fe = jsonTime("until", req.Until); fe != nil {
			return since, until, fe
		}
	}
	switch {
	case !since.Before(until):
		return since, until, badField("until", "must be after since")
	case until.Sub(since) > maxBacktestRange:
		return since, until, badField("since", "the range from since to until is longer than 31 days")
	}
	return since, until, nil
}

// jsonTime reads a JSON string holding an RFC 3339 time.
func jsonTime(field string, raw json.RawMessage) (time.Time, *fieldError) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, badField(field, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
	}
	return parseTime(field, s)
}

// repeat is the later occurrences of a matched stored event, all at its
// last_seen_at.
type repeat struct {
	at    time.Time
	n     int
	group string
}

// repeats orders pending repeats by time.
type repeats []repeat

func (h repeats) Len() int           { return len(h) }
func (h repeats) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h repeats) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *repeats) Push(x any)        { *h = append(*h, x.(repeat)) }
func (h *repeats) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// backtestLimits bounds one backtest.
type backtestLimits struct {
	events, occurrences int64
}

// defaultBacktestLimits are the bounds of the API's backtests.
var defaultBacktestLimits = backtestLimits{maxBacktestEvents, maxBacktestOccurrences}

// backtester runs one backtest.
type backtester struct {
	limits  backtestLimits
	rule    window.Rule
	groupBy []string
	state   *window.State
	pending repeats
	res     BacktestResult
}

// observe feeds one occurrence to the state machine and counts its
// outcome.
func (b *backtester) observe(group string, id int64, at time.Time) {
	b.res.Occurrences++
	switch b.state.Observe(b.rule, group, id, at) {
	case window.Fire:
		b.res.Firings++
		t := at
		if b.res.FirstFiringAt == nil {
			b.res.FirstFiringAt = &t
		}
		b.res.LastFiringAt = &t
	case window.Suppressed:
		b.res.Suppressed++
	}
}

// flush observes the pending repeats at or before t (all with a zero t),
// and reports false when the occurrence bound is reached.
func (b *backtester) flush(t time.Time) bool {
	for len(b.pending) > 0 && (t.IsZero() || !b.pending[0].at.After(t)) {
		r := heap.Pop(&b.pending).(repeat)
		for range r.n {
			if b.res.Occurrences >= b.limits.occurrences {
				return false
			}
			b.observe(r.group, 0, r.at)
		}
	}
	return true
}

// backtest evaluates rule over the stored processed events that occurred
// in [since, until), oldest first. It changes nothing.
func (s *eventsAPI) backtest(ctx context.Context, rule store.TriggerRule, m *cond.Matcher, since, until time.Time, limits backtestLimits) (BacktestResult, error) {
	b := &backtester{
		limits: limits,
		rule: window.Rule{
			ID:         rule.ID,
			Window:     time.Duration(rule.TimeWindowMinutes) * time.Minute,
			MinCount:   rule.MinCount,
			MaxPerHour: rule.MaxTriggersPerHour,
		},
		groupBy: rule.GroupBy,
		state:   window.New(window.Options{MaxKeys: maxBacktestEvents}),
	}
	q := store.EventQuery{Since: since, Until: until, OldestFirst: true, Limit: backtestPage}
	if t := event.Severity(rule.SeverityThreshold); t.Valid() {
		for _, sev := range event.Severities {
			if sev.Rank() >= t.Rank() {
				q.Severities = append(q.Severities, sev)
			}
		}
	}
	for {
		page, err := s.store.Events(ctx, q)
		if err != nil {
			return BacktestResult{}, err
		}
		for i := range page.Events {
			ev := &page.Events[i]
			if b.res.Events >= limits.events || !b.flush(ev.OccurredAt) || b.res.Occurrences >= limits.occurrences {
				b.res.Truncated = true
				return b.res, nil
			}
			b.res.Events++
			if !explainRule(rule.SeverityThreshold, m, ev).Matched {
				continue
			}
			b.res.Matched++
			group := window.GroupKey(ev, b.groupBy)
			b.observe(group, ev.ID, ev.OccurredAt)
			if n := ev.OccurrenceCount - 1; n > 0 && ev.LastSeenAt.Before(until) {
				heap.Push(&b.pending, repeat{at: ev.LastSeenAt, n: n, group: group})
			}
		}
		if !page.More {
			break
		}
		q.AfterTime, q.AfterID = page.NextTime, page.NextID
	}
	if !b.flush(time.Time{}) {
		b.res.Truncated = true
	}
	return b.res, nil
}

// serveBacktest answers a backtest request of testTrigger.
func (s *eventsAPI) serveBacktest(w http.ResponseWriter, r *http.Request, rule store.TriggerRule, m *cond.Matcher, req RuleTestRequest) {
	since, until, fe := backtestRange(req, s.now())
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	res, err := s.backtest(r.Context(), rule, m, since, until, defaultBacktestLimits)
	if err != nil {
		s.unavailable(w, r, err, "backtest")
		return
	}
	writeJSON(w, http.StatusOK, res)
}
