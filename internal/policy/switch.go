package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// Settings keys of the autonomous service's settings that this package
// owns.
const (
	// SwitchKey holds the kill switch's State.
	SwitchKey = "kill_switch"
	// PolicyKey holds the active policy, as JSON.
	PolicyKey = "policy"
)

// Settings is where the kill switch and the active policy persist
// (store.AutonomousStore's settings). Implementations are safe for
// concurrent use; Setting returns store.ErrNotFound for a key never put.
type Settings interface {
	Setting(ctx context.Context, key string) (json.RawMessage, error)
	PutSetting(ctx context.Context, key string, value json.RawMessage) error
}

var _ Settings = store.AutonomousStore(nil)

// State is the kill switch's state: Paused, by whom, why and since when.
type State struct {
	Paused bool      `json:"paused"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// String describes the state for a reason: "paused by alice since
// 2026-03-01T10:00:00Z: incident 42".
func (s State) String() string {
	if !s.Paused {
		return "running"
	}
	out := "paused by " + orDefault(s.By, "unknown") + " since " + s.Since.UTC().Format(time.RFC3339)
	if s.Reason != "" {
		out += ": " + s.Reason
	}
	return out
}

// maxReason bounds By and Reason.
const maxReason = 1000

// Switch is the kill switch: while it is paused, no new automation
// starts (decisions are still made and recorded). Its state lives in
// memory after NewSwitch loaded it and is written through to the
// settings at every change, so that it survives restarts. It is safe for
// concurrent use.
type Switch struct {
	settings Settings
	now      func() time.Time

	mu    sync.Mutex // serializes changes
	state State
	read  sync.RWMutex
}

// NewSwitch loads the switch's state from settings (a key never written
// is "not paused").
func NewSwitch(ctx context.Context, settings Settings) (*Switch, error) {
	if settings == nil {
		return nil, errors.New("policy: new switch: settings are required")
	}
	s := &Switch{settings: settings, now: time.Now}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the state from the settings again (another process may
// have changed it).
func (s *Switch) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := s.settings.Setting(ctx, SwitchKey)
	var st State
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("policy: load kill switch: %w", err)
	default:
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("policy: load kill switch: stored state: %w", err)
		}
	}
	s.set(st)
	return nil
}

// State returns the current state, from memory.
func (s *Switch) State() State {
	s.read.RLock()
	defer s.read.RUnlock()
	return s.state
}

func (s *Switch) set(st State) {
	s.read.Lock()
	s.state = st
	s.read.Unlock()
}

// Pause stops all new automation. The switch is paused in memory even
// when writing the settings fails (pausing is the safe side): the error
// then says it will not survive a restart. Pausing a paused switch
// replaces who and why and keeps Since.
func (s *Switch) Pause(ctx context.Context, by, reason string) error {
	by, reason = strings.TrimSpace(by), strings.TrimSpace(reason)
	if by == "" {
		return errors.New("policy: pause: who pauses is required")
	}
	if len(by) > maxReason || len(reason) > maxReason {
		return fmt.Errorf("policy: pause: by and reason must be at most %d bytes", maxReason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Paused: true, By: by, Reason: reason, Since: s.now().UTC()}
	if old := s.State(); old.Paused {
		st.Since = old.Since
	}
	s.set(st)
	if err := s.put(ctx, st); err != nil {
		return fmt.Errorf("policy: pause: paused in memory only, not persisted: %w", err)
	}
	return nil
}

// Resume lets automation start again. The state changes only once the
// settings hold it: a failure leaves the switch paused.
func (s *Switch) Resume(ctx context.Context, by string) error {
	by = strings.TrimSpace(by)
	if by == "" {
		return errors.New("policy: resume: who resumes is required")
	}
	if len(by) > maxReason {
		return fmt.Errorf("policy: resume: by must be at most %d bytes", maxReason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{By: by, Since: s.now().UTC()}
	if err := s.put(ctx, st); err != nil {
		return fmt.Errorf("policy: resume: still paused: %w", err)
	}
	s.set(st)
	return nil
}

func (s *Switch) put(ctx context.Context, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.settings.PutSetting(ctx, SwitchKey, b)
}

// LoadPolicy returns the policy stored in settings, or fallback when none
// was saved. A stored policy that no longer parses is an error (the
// caller decides whether to start on the fallback).
func LoadPolicy(ctx context.Context, settings Settings, fallback Policy) (Policy, error) {
	raw, err := settings.Setting(ctx, PolicyKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fallback, nil
	case err != nil:
		return Policy{}, fmt.Errorf("policy: load: %w", err)
	}
	p, err := Parse(raw)
	if err != nil {
		return Policy{}, fmt.Errorf("policy: load: stored policy: %w", err)
	}
	return p, nil
}

// SavePolicy validates p and stores it in settings, where LoadPolicy
// finds it at the next start.
func SavePolicy(ctx context.Context, settings Settings, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("policy: save: %w", err)
	}
	if err := settings.PutSetting(ctx, PolicyKey, b); err != nil {
		return fmt.Errorf("policy: save: %w", err)
	}
	return nil
}
