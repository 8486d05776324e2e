package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/rules/cond"
	"github.com/reflex-ops/reflex/internal/rules/window"
	"github.com/reflex-ops/reflex/internal/store"
)

// compiled is an active rule ready to evaluate.
type compiled struct {
	rule store.TriggerRule
	m    *cond.Matcher
	win  window.Rule
	// minRank is the rank of the rule's severity_threshold; -1 for none.
	minRank int
	// templates are the rule's active response templates; template is
	// the id of the only one, nil when there are none or several (the
	// autonomous service picks).
	templates []store.ResponseTemplate
	template  *int64
}

// admits reports whether ev meets the rule's severity threshold.
func (c *compiled) admits(ev *event.Event) bool {
	return c.minRank < 0 || ev.Severity.Rank() >= c.minRank
}

// windowed is what of a rule its windows depend on: a change to any of it
// starts the rule's windows afresh.
func (c *compiled) windowed() string {
	return fmt.Sprintf("%s|%s|%d|%d|%q", c.rule.Conditions, c.rule.SeverityThreshold, c.rule.TimeWindowMinutes, c.rule.MinCount, c.rule.GroupBy)
}

// ruleSet is the active rules as one batch sees them. It is never changed
// once published.
type ruleSet struct {
	index   *cond.Index
	rules   map[int64]*compiled
	longest time.Duration // the longest window
}

func emptySet() *ruleSet { return &ruleSet{index: cond.NewIndex(), rules: map[int64]*compiled{}} }

// Reload reads the active rules and templates from the store and puts
// them in use. The windows of rules that are gone, inactive, or whose
// conditions, threshold, window, min_count or group_by changed are
// forgotten.
func (e *Engine) Reload(ctx context.Context) error {
	active := true
	rules, err := e.opts.Store.TriggerRules(ctx, &active)
	if err != nil {
		e.met.reloadFailures.Inc()
		return fmt.Errorf("engine: read trigger rules: %w", err)
	}
	tmpls, err := e.opts.Store.ResponseTemplates(ctx, &active)
	if err != nil {
		e.met.reloadFailures.Inc()
		return fmt.Errorf("engine: read response templates: %w", err)
	}
	next := emptySet()
	broken := 0
	for _, r := range rules {
		c, err := compile(r)
		if err != nil {
			broken++
			e.log.Error("a stored trigger rule does not compile; it is not evaluated", "rule_id", r.ID, "rule", r.Name, "err", err)
			continue
		}
		next.rules[r.ID] = c
		next.longest = max(next.longest, c.win.Window)
	}
	for _, t := range tmpls {
		if c := next.rules[t.TriggerRuleID]; c != nil {
			c.templates = append(c.templates, t)
		}
	}
	for id, c := range next.rules {
		if len(c.templates) == 1 {
			tid := c.templates[0].ID
			c.template = &tid
		}
		next.index.Add(id, c.m)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	prev := e.rules.Load()
	for id, old := range prev.rules {
		if c := next.rules[id]; c == nil || c.windowed() != old.windowed() {
			e.state.Forget(id)
			if !slices.Contains(e.forget, id) {
				e.forget = append(e.forget, id)
			}
		}
	}
	e.rules.Store(next)
	e.met.active.Set(float64(len(next.rules)))
	e.met.broken.Set(float64(broken))
	if changed(prev, next) {
		e.log.Info("trigger rules loaded", "active", len(next.rules), "not_compiling", broken)
	}
	return nil
}

// changed reports whether two rule sets differ in their rules or their
// rules' last updates.
func changed(a, b *ruleSet) bool {
	if len(a.rules) != len(b.rules) {
		return true
	}
	for id, c := range b.rules {
		o := a.rules[id]
		if o == nil || !o.rule.UpdatedAt.Equal(c.rule.UpdatedAt) || len(o.templates) != len(c.templates) {
			return true
		}
	}
	return false
}

// compile prepares a stored rule for evaluation.
func compile(r store.TriggerRule) (*compiled, error) {
	m, err := cond.Compile(r.Conditions)
	if err != nil {
		return nil, err
	}
	c := &compiled{
		rule: r,
		m:    m,
		win: window.Rule{
			ID:         r.ID,
			Window:     time.Duration(r.TimeWindowMinutes) * time.Minute,
			MinCount:   r.MinCount,
			MaxPerHour: r.MaxTriggersPerHour,
		},
		minRank: -1,
	}
	if t := event.Severity(r.SeverityThreshold); t.Valid() {
		c.minRank = t.Rank()
	}
	return c, nil
}
