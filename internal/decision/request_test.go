package decision

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

var at = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func request(exec int64) *Request {
	return &Request{
		ExecutionID: exec, RuleID: 7, RuleName: "High CPU Alert", OccurrenceID: 1000 + exec,
		GroupKey: `15:"web-01"`, Occurrences: 1, FiredAt: at,
		Event: event.Event{
			ID: 1000, RawEventID: 1000, EventType: "threshold_breach", Severity: event.High,
			SourceSystem: "prometheus", SourceHost: "web-01", Title: "CPU high",
			Data: map[string]any{"metadata": map[string]any{"cpu_usage": 95.5}}, OccurredAt: at,
			Asset: &event.Asset{Criticality: "high"},
		},
		Correlations: []Correlation{Bounded(event.Correlation{ID: 5, CorrelationID: "c-1", Type: event.CorrelationTimeBased,
			PrimaryEventID: 1000, RelatedEventIDs: []int64{1000, 1001}, Score: 0.8, CreatedAt: at})},
		Templates: []store.ResponseTemplate{{ID: 3, Name: "CPU Investigation Playbook", Type: "investigation",
			TriggerRuleID: 7, Definition: json.RawMessage(`{"actions":[{"type":"diagnostic","script":"check_processes"}]}`)}},
	}
}

func TestPackRoundTrip(t *testing.T) {
	ms, err := Pack([]*Request{request(1), request(2)}, 0)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "decision-requests-1-2-2", ms[0].MsgID)
	got, err := Unpack(ms[0].Data)
	require.NoError(t, err)
	require.Len(t, got, 2)
	r := got[1]
	require.Equal(t, Version, r.V)
	require.Equal(t, int64(2), r.ExecutionID)
	require.Equal(t, "High CPU Alert", r.RuleName)
	require.Equal(t, "high", r.Event.Asset.Criticality, "the typed results come back")
	require.InDelta(t, 95.5, r.Event.Data["metadata"].(map[string]any)["cpu_usage"], 0)
	require.JSONEq(t, `{"actions":[{"type":"diagnostic","script":"check_processes"}]}`, string(r.Templates[0].Definition))
	require.False(t, r.Truncated)
	require.Equal(t, request(2).Correlations, r.Correlations, "the second request of the event reuses its encoding")

	bare := request(3)
	bare.Correlations, bare.Templates = nil, nil
	bm, err := Pack([]*Request{bare}, 0)
	require.NoError(t, err)
	require.Contains(t, string(bm[0].Data), `"correlations":[]`, "an empty list, not null")
	require.Contains(t, string(bm[0].Data), `"templates":[]`)

	again, err := Pack([]*Request{request(1), request(2)}, 0)
	require.NoError(t, err)
	require.Equal(t, ms[0].MsgID, again[0].MsgID, "the same requests make the same id")
}

func TestPackSplitsAtTheBound(t *testing.T) {
	one, err := Pack([]*Request{request(1)}, 0)
	require.NoError(t, err)
	size := len(one[0].Data)
	reqs := []*Request{request(1), request(2), request(3), request(4), request(5)}
	ms, err := Pack(reqs, 2*size+10) // two requests per message
	require.NoError(t, err)
	require.Len(t, ms, 3)
	var ids []int64
	for _, m := range ms {
		require.LessOrEqual(t, len(m.Data), 2*size+10)
		got, err := Unpack(m.Data)
		require.NoError(t, err)
		for _, r := range got {
			ids = append(ids, r.ExecutionID)
		}
	}
	require.Equal(t, []int64{1, 2, 3, 4, 5}, ids, "every request once, in order")
	require.Equal(t, "decision-requests-5-5-1", ms[2].MsgID)
}

func TestPackTruncatesAHugeEvent(t *testing.T) {
	big := request(9)
	big.Event.ID, big.Event.RawEventID = 1001, 1001
	big.Event.Data = map[string]any{"log": strings.Repeat("x", 10000)}
	ms, err := Pack([]*Request{request(1), big}, 4096)
	require.NoError(t, err)
	require.Len(t, ms, 1, "without its data the request fits beside the other")
	require.LessOrEqual(t, len(ms[0].Data), 4096)
	got, err := Unpack(ms[0].Data)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.False(t, got[0].Truncated)
	require.True(t, got[1].Truncated)
	require.Nil(t, got[1].Event.Data)
	require.Equal(t, int64(1001), got[1].Event.ID, "the event is named, to be read from the store")

	big.Templates = []store.ResponseTemplate{{Name: strings.Repeat("t", 10000)}}
	_, err = Pack([]*Request{big}, 4096)
	require.ErrorContains(t, err, "above the message limit")
}

func TestUnpackRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        `{`,
		"message version": `{"v": 2, "requests": []}`,
		"no version":      `{"requests": []}`,
		"no execution":    `{"v": 1, "requests": [{"v": 1}]}`,
		"request version": `{"v": 1, "requests": [{"v": 3, "execution_id": 1}]}`,
		"null request":    `{"v": 1, "requests": [null]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Unpack([]byte(body))
			require.Error(t, err)
		})
	}
	_, err := Unpack([]byte(`{"v": 9, "requests": []}`))
	require.ErrorIs(t, err, ErrVersion)
}

func TestBoundedCorrelation(t *testing.T) {
	ids := make([]int64, 250)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	c := Bounded(event.Correlation{ID: 1, RelatedEventIDs: ids})
	require.Equal(t, 250, c.RelatedTotal)
	require.Len(t, c.RelatedEventIDs, MaxRelated)
	require.Equal(t, int64(151), c.RelatedEventIDs[0], "the latest")
	require.Equal(t, int64(250), c.RelatedEventIDs[MaxRelated-1])
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.Contains(t, string(b), `"related_total":250`)
	require.Contains(t, string(b), `"correlation_id":""`, "the row's fields, flattened")

	small := Bounded(event.Correlation{RelatedEventIDs: []int64{7}})
	require.Equal(t, 1, small.RelatedTotal)
	require.Equal(t, []int64{7}, small.RelatedEventIDs)
}
