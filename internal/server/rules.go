package server

import (
	"context"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/rules/engine"
	"github.com/reflex-ops/reflex/internal/store"
)

// rulesBatchMessages is how many processed-stream messages the rules
// engine takes per batch (one store transaction): fewer than the
// consumer's default, so that a storm of firings holds the store's writer
// for short transactions between the pipeline's commits.
const rulesBatchMessages = 4

// recentRecords is how many recently handled processed-stream records the
// rules engine's consumer remembers, to skip common redeliveries cheaply.
const recentRecords = 16384

// rulesOut is the rules engine of the events service and the decisions
// stream it queues requests on.
type rulesOut struct {
	engine    *engine.Engine
	decisions *bus.Decisions
}

// startRules opens the decisions stream, loads the rules engine and runs
// it on the processed stream, with its stop pushed on the stack. It runs
// after openProcessed and before the pipeline starts, so that the engine's
// durable consumer exists before the first event is published (the
// processed stream keeps a message only for the consumers that exist).
func (s *Server) startRules(ctx context.Context) error {
	dec, err := s.bus.OpenDecisions(ctx, bus.DecisionsOptions{
		Stream:   s.cfg.DecisionsStream,
		Subject:  s.cfg.DecisionsSubject,
		MaxBytes: int64(s.cfg.DecisionsMaxBytes),
		MaxAge:   time.Duration(s.cfg.DecisionsMaxAge),
		Logger:   s.log,
	})
	if err != nil {
		return err
	}
	if err := registerSizeGauges(s.reg, dec, "reflex_decisions_stream",
		"Decision-request messages waiting in the decisions stream for the Autonomous Response Service (each holds the requests of one batch of firings).",
		"Bytes in the decisions stream; at --decisions-max-bytes the oldest messages are dropped."); err != nil {
		return err
	}
	eng, err := engine.New(ctx, engine.Options{
		Store:      s.store,
		Decisions:  dec,
		Notifier:   s.Notifier(),
		Logger:     s.log,
		Registerer: s.reg,
		Now:        s.now,
	})
	if err != nil {
		return fmt.Errorf("server: rules engine: %w", err)
	}
	cons, err := processed.Consume(ctx, s.processed.stream, processed.ConsumerOptions{
		Shared:        s.processed.shared,
		Name:          engine.ConsumerName,
		BatchMessages: rulesBatchMessages,
		Recent:        recentRecords,
		Logger:        s.log,
		Registerer:    s.reg,
	})
	if err != nil {
		return fmt.Errorf("server: rules engine: %w", err)
	}
	s.runDownstream("rules engine", cons, eng.Handle, eng.Run, eng.Flush)
	s.rules = &rulesOut{engine: eng, decisions: dec}
	return nil
}

// ruleStore is the rule store that the API writes through: every change
// of a rule or a template wakes the engine, which reads the rules again.
func (s *Server) ruleStore() store.RuleStore {
	if s.rules == nil {
		return s.store
	}
	return wakingRules{RuleStore: s.store, wake: s.rules.engine.Wake}
}

// wakingRules wakes the rules engine after each successful write of a
// rule or a template.
type wakingRules struct {
	store.RuleStore
	wake func()
}

func (w wakingRules) CreateTriggerRule(ctx context.Context, r store.TriggerRule) (store.TriggerRule, error) {
	r, err := w.RuleStore.CreateTriggerRule(ctx, r)
	return r, w.after(err)
}

func (w wakingRules) UpdateTriggerRule(ctx context.Context, r store.TriggerRule) (store.TriggerRule, error) {
	r, err := w.RuleStore.UpdateTriggerRule(ctx, r)
	return r, w.after(err)
}

func (w wakingRules) DeleteTriggerRule(ctx context.Context, id int64) error {
	return w.after(w.RuleStore.DeleteTriggerRule(ctx, id))
}

func (w wakingRules) CreateResponseTemplate(ctx context.Context, t store.ResponseTemplate) (store.ResponseTemplate, error) {
	t, err := w.RuleStore.CreateResponseTemplate(ctx, t)
	return t, w.after(err)
}

func (w wakingRules) UpdateResponseTemplate(ctx context.Context, t store.ResponseTemplate) (store.ResponseTemplate, error) {
	t, err := w.RuleStore.UpdateResponseTemplate(ctx, t)
	return t, w.after(err)
}

func (w wakingRules) DeleteResponseTemplate(ctx context.Context, id int64) error {
	return w.after(w.RuleStore.DeleteResponseTemplate(ctx, id))
}

// after wakes the engine when a write succeeded, and passes its error on.
func (w wakingRules) after(err error) error {
	if err == nil {
		w.wake()
	}
	return err
}
