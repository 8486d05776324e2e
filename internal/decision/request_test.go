package decision

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	r := &Request{
		ExecutionID: 42, RuleID: 7, RuleName: "High CPU Alert", OccurrenceID: 1001,
		GroupKey: "web-01", Occurrences: 1, FiredAt: at,
		Event: event.Event{
			ID: 1000, RawEventID: 1000, EventType: "threshold_breach", Severity: event.High,
			SourceSystem: "prometheus", SourceHost: "web-01", Title: "CPU high",
			Data: map[string]any{"metadata": map[string]any{"cpu_usage": 95.5}}, OccurredAt: at,
			Asset: &event.Asset{Criticality: "high"},
		},
		Templates: []store.ResponseTemplate{{ID: 3, Name: "CPU Investigation Playbook", Type: "investigation",
			TriggerRuleID: 7, Definition: json.RawMessage(`{"actions":[{"type":"diagnostic","script":"check_processes"}]}`)}},
	}
	b, err := Encode(r)
	require.NoError(t, err)
	require.Contains(t, string(b), `"correlations":[]`, "an empty list, not null")
	got, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, Version, got.V)
	require.Equal(t, r.RuleName, got.RuleName)
	require.Equal(t, "high", got.Event.Asset.Criticality, "the typed results come back")
	require.InDelta(t, 95.5, got.Event.Data["metadata"].(map[string]any)["cpu_usage"], 0)
	require.JSONEq(t, string(r.Templates[0].Definition), string(got.Templates[0].Definition))
	require.Equal(t, "decision-request-42", MsgID(42))
}

func TestDecodeRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":     `{`,
		"version":      `{"v": 2, "execution_id": 1}`,
		"no version":   `{"execution_id": 1}`,
		"no execution": `{"v": 1}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(body))
			require.Error(t, err)
		})
	}
	_, err := Decode([]byte(`{"v": 9, "execution_id": 1}`))
	require.ErrorIs(t, err, ErrVersion)
}
