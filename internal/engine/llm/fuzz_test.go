package llm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// FuzzParseReply feeds chat-completion bodies through Content and
// ParseReply: neither panics, every error is one of the package's, and
// an accepted reply is in range and survives a round trip.
func FuzzParseReply(f *testing.F) {
	body := func(content string) []byte {
		b, _ := json.Marshal(map[string]any{"choices": []map[string]any{{"message": map[string]any{"role": "assistant", "content": content}}}})
		return b
	}
	f.Add(body(`{"decision_type":"automate","confidence":0.9,"reasoning":"ok","recommended_template_ids":[12,11]}`))
	f.Add(body("```json\n" + `{"decision_type":"ignore","confidence":0,"reasoning":"","recommended_template_ids":[]}` + "\n```"))
	f.Add(body(`{"decision_type":"escalate","confidence":1e-3,"reasoning":"x","recommended_template_ids":[1],"extra":true}`))
	f.Add(body(`{"decision_type":"investigate","confidence":1,"reasoning":"x","recommended_template_ids":[1,1]}`))
	f.Add(body(`{"decision_type":"investigate","confidence":-0.0,"reasoning":"\u00e9","recommended_template_ids":[-1]} trailing`))
	f.Add([]byte(`{"choices":[{"message":{"content":null,"refusal":"no"}}]}`))
	f.Add([]byte(`{"error":{"message":"bad"}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		content, err := Content(b)
		if err != nil {
			require.ErrorIs(t, err, ErrEnvelope)
			return
		}
		r, err := ParseReply(content)
		if err != nil {
			require.True(t, errors.Is(err, ErrSchema), "%v", err)
			return
		}
		switch r.DecisionType {
		case store.DecisionInvestigate, store.DecisionAutomate, store.DecisionEscalate, store.DecisionIgnore:
		default:
			t.Fatalf("decision type %q accepted", r.DecisionType)
		}
		require.True(t, r.Confidence >= 0 && r.Confidence <= 1, "confidence %v", r.Confidence)
		require.LessOrEqual(t, len(r.Reasoning), MaxReasoning)
		require.True(t, utf8.ValidString(r.Reasoning))
		seen := map[int64]bool{}
		for _, id := range r.TemplateIDs {
			require.False(t, seen[id], "template %d twice", id)
			seen[id] = true
		}
		again, err := json.Marshal(r)
		require.NoError(t, err)
		r2, err := ParseReply(string(again))
		require.NoError(t, err, "%s", again)
		require.Equal(t, r, r2)
		require.False(t, strings.Contains(string(again), `"extra"`))
	})
}
