package policy

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// memSettings is an in-memory Settings whose writes can be made to fail.
type memSettings struct {
	mu      sync.Mutex
	m       map[string]json.RawMessage
	failPut error
	failGet error
}

func newMemSettings() *memSettings { return &memSettings{m: map[string]json.RawMessage{}} }

func (s *memSettings) Setting(_ context.Context, key string) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failGet != nil {
		return nil, s.failGet
	}
	v, ok := s.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return append(json.RawMessage(nil), v...), nil
}

func (s *memSettings) PutSetting(_ context.Context, key string, value json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut != nil {
		return s.failPut
	}
	s.m[key] = append(json.RawMessage(nil), value...)
	return nil
}

func TestSwitch(t *testing.T) {
	ctx := t.Context()
	settings := newMemSettings()
	_, err := NewSwitch(ctx, nil)
	require.Error(t, err)

	sw, err := NewSwitch(ctx, settings)
	require.NoError(t, err)
	require.False(t, sw.State().Paused, "never written: not paused")
	require.Equal(t, "running", sw.State().String())

	require.Error(t, sw.Pause(ctx, " ", "no one"))
	before := time.Now().UTC()
	require.NoError(t, sw.Pause(ctx, "alice", "incident 42"))
	st := sw.State()
	require.True(t, st.Paused)
	require.Equal(t, "alice", st.By)
	require.Equal(t, "incident 42", st.Reason)
	require.False(t, st.Since.Before(before))
	require.Contains(t, st.String(), "paused by alice since ")

	// Pausing again keeps Since.
	require.NoError(t, sw.Pause(ctx, "bob", "still"))
	require.Equal(t, st.Since, sw.State().Since)
	require.Equal(t, "bob", sw.State().By)

	// A restart loads the state.
	again, err := NewSwitch(ctx, settings)
	require.NoError(t, err)
	require.Equal(t, sw.State(), again.State())

	// A failed write resumes nothing.
	settings.failPut = errors.New("disk full")
	require.ErrorContains(t, sw.Resume(ctx, "carol"), "still paused")
	require.True(t, sw.State().Paused)
	settings.failPut = nil

	require.NoError(t, sw.Resume(ctx, "carol"))
	require.False(t, sw.State().Paused)
	require.Equal(t, "carol", sw.State().By)
	require.NoError(t, again.Reload(ctx))
	require.False(t, again.State().Paused, "Reload sees another process's change")

	// A failed write still pauses, in memory, and says so.
	settings.failPut = errors.New("disk full")
	require.ErrorContains(t, sw.Pause(ctx, "dave", "fire"), "in memory only")
	require.True(t, sw.State().Paused)
	settings.failPut = nil
	fresh, err := NewSwitch(ctx, settings)
	require.NoError(t, err)
	require.False(t, fresh.State().Paused, "the failed pause was not persisted")

	settings.failGet = errors.New("db down")
	_, err = NewSwitch(ctx, settings)
	require.ErrorContains(t, err, "db down")
	settings.failGet = nil

	settings.m[SwitchKey] = json.RawMessage(`"garbage"`)
	_, err = NewSwitch(ctx, settings)
	require.ErrorContains(t, err, "stored state")
}

func TestSwitchConcurrent(t *testing.T) {
	ctx := t.Context()
	sw, err := NewSwitch(ctx, newMemSettings())
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if i%2 == 0 {
					_ = sw.Pause(ctx, "a", "b")
				} else {
					_ = sw.Resume(ctx, "c")
				}
				_ = sw.State()
			}
		})
	}
	wg.Wait()
	// The memory and the settings agree after the storm.
	again, err := NewSwitch(ctx, sw.settings)
	require.NoError(t, err)
	require.Equal(t, sw.State().Paused, again.State().Paused)
}

func TestLoadSavePolicy(t *testing.T) {
	ctx := t.Context()
	settings := newMemSettings()
	fallback := Default()
	fallback.ApprovalTTL = Duration(2 * time.Hour)
	p, err := LoadPolicy(ctx, settings, fallback)
	require.NoError(t, err)
	require.Equal(t, fallback, p, "nothing saved: the fallback")

	custom := Default()
	custom.RiskLevels["high"] = RiskRule{Unattended: true, MinConfidence: 0.99}
	custom.Hours = &Hours{Days: []string{"mon-fri"}, From: "09:00", To: "17:00", TimeZone: "Europe/Berlin"}
	require.NoError(t, SavePolicy(ctx, settings, custom))
	p, err = LoadPolicy(ctx, settings, fallback)
	require.NoError(t, err)
	require.Equal(t, custom, p)

	invalid := Default()
	invalid.ApprovalTTL = 0
	require.ErrorIs(t, SavePolicy(ctx, settings, invalid), ErrInvalid)
	p, err = LoadPolicy(ctx, settings, fallback)
	require.NoError(t, err)
	require.Equal(t, custom, p, "an invalid policy is not saved")

	settings.failPut = errors.New("disk full")
	require.ErrorContains(t, SavePolicy(ctx, settings, Default()), "disk full")
	settings.failPut = nil

	settings.m[PolicyKey] = json.RawMessage(`{"unknown": 1}`)
	_, err = LoadPolicy(ctx, settings, fallback)
	require.ErrorContains(t, err, "stored policy")
	settings.failGet = errors.New("db down")
	_, err = LoadPolicy(ctx, settings, fallback)
	require.ErrorContains(t, err, "db down")
}
