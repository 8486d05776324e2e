package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/rules/cond"
)

// RuleTestRequest is the body of POST /api/v1/rules/triggers/{id}/test:
// an event (one webhook payload) to try the rule on, or a time range of
// stored events to backtest it over (since, required, and until, RFC 3339
// times; until defaults to now).
type RuleTestRequest struct {
	Event json.RawMessage `json:"event"`
	Since json.RawMessage `json:"since"`
	Until json.RawMessage `json:"until"`
}

// RuleTestResult is the answer of a rule test: whether the event matches
// the rule and, when it does not, the first condition that failed.
type RuleTestResult struct {
	Matched bool   `json:"matched"`
	Reason  string `json:"reason"`
}

// newTestNormalizer is the normalize stage of the test endpoint: the
// pipeline's normalization of a webhook payload, without metrics.
func newTestNormalizer() (*normalize.Stage, error) {
	return normalize.New(normalize.Options{
		Normalizers: map[event.SourceType]normalize.Normalizer{event.SourceWebhook: webhook.Normalizer{}},
	})
}

// testTrigger serves POST /api/v1/rules/triggers/{id}/test. It changes
// nothing: the event is normalized as the pipeline would normalize it,
// enriched and scored when the server gives PrepareTest (not deduplicated
// or correlated), and matched against the rule's severity threshold and
// conditions; or, for a backtest, the stored events of the range are
// evaluated (see backtest).
func (s *eventsAPI) testTrigger(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	rule, ok := s.findTrigger(w, r)
	if !ok {
		return
	}
	var req RuleTestRequest
	if fe := decodeJSON(w, r, &req, s.maxBody); fe != nil {
		writeFieldError(w, fe)
		return
	}
	backtest := req.Since != nil || req.Until != nil
	switch {
	case backtest && req.Event != nil:
		writeFieldError(w, badField("event", "give either an event or since and until (a backtest), not both"))
		return
	case req.Event == nil && !backtest:
		writeFieldError(w, badField("event", "required: the webhook payload to test (or since and until for a backtest)"))
		return
	}
	var ev *event.Event
	if !backtest {
		var fe *fieldError
		if ev, fe = s.testEvent(req.Event); fe != nil {
			writeFieldError(w, fe)
			return
		}
		if s.prepareTest != nil {
			if err := s.prepareTest(r.Context(), ev); err != nil {
				s.unavailable(w, r, err, "prepare the test event")
				return
			}
		}
	}
	m, err := cond.Compile(rule.Conditions)
	if err != nil {
		// Conditions are compiled before they are stored: only a row
		// changed behind the API's back gets here.
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("the stored conditions of trigger rule %d do not compile: %v", rule.ID, err), "")
		return
	}
	if backtest {
		s.serveBacktest(w, r, rule, m, req)
		return
	}
	writeJSON(w, http.StatusOK, explainRule(rule.SeverityThreshold, m, ev))
}

// explainRule matches ev against a rule's severity threshold, then its
// conditions.
func explainRule(threshold string, m *cond.Matcher, ev *event.Event) RuleTestResult {
	if t := event.Severity(threshold); t.Valid() && ev.Severity.Rank() < t.Rank() {
		return RuleTestResult{Reason: fmt.Sprintf("severity_threshold: %q is below %q", ev.Severity, t)}
	}
	ok, why := m.Explain(ev)
	return RuleTestResult{Matched: ok, Reason: why}
}

// testEvent validates one webhook payload as the webhook endpoint does and
// normalizes it as the pipeline does.
func (s *eventsAPI) testEvent(payload json.RawMessage) (*event.Event, *fieldError) {
	if t := bytes.TrimSpace(payload); len(t) == 0 || t[0] != '{' {
		return nil, badField("event", "must be a JSON object: one webhook event")
	}
	items, rejects, err := s.decode("application/json", payload, s.webhook)
	if len(rejects) > 0 {
		rj := rejects[0]
		if rj.Field == "" {
			return nil, badField("event", "%s", rj.Reason)
		}
		return nil, badField("event."+rj.Field, "%s", rj.Reason)
	}
	if err != nil {
		return nil, badField("event", "%s", trimPrefixes(err.Error(), "webhook: bad request: ", "webhook: "))
	}
	if len(items) != 1 {
		return nil, badField("event", "must be one webhook event")
	}
	now := s.now().UTC()
	raw := event.Raw{
		ID:           event.IDAt(now),
		SourceType:   event.SourceWebhook,
		SourceSystem: items[0].SourceSystem,
		Data:         items[0].Data,
		ReceivedAt:   now,
	}
	ev, err := s.normalizer.Normalize(raw, now)
	if err != nil {
		var pe *webhook.FieldError
		if errors.As(err, &pe) && pe.Field != "" {
			return nil, badField("event."+pe.Field, "%s", pe.Reason)
		}
		return nil, badField("event", "%s", trimPrefixes(err.Error(), "normalize: webhook event: "))
	}
	return ev, nil
}
