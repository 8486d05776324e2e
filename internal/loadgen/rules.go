package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"

	"github.com/reflex-ops/reflex/internal/rules/rulebench"
)

// RulePrefix starts the names of the rules that Rules makes, so that a
// second run finds its rules in place.
const RulePrefix = "loadgen rule "

// Rule is a trigger rule as POST /api/v1/rules/triggers takes it.
type Rule struct {
	Name               string          `json:"name"`
	Conditions         json.RawMessage `json:"conditions"`
	SeverityThreshold  string          `json:"severity_threshold,omitempty"`
	TimeWindowMinutes  int             `json:"time_window_minutes"`
	MinCount           int             `json:"min_count"`
	MaxTriggersPerHour int             `json:"max_triggers_per_hour"`
}

// Rules returns n trigger rules, the same for the same seed, whose
// conditions are the rule set of the evaluation benchmark
// (rulebench.Conditions: mixed shapes over a wide vocabulary, of which the
// generated events use a part, as a real rule set covers many kinds of
// events), with windows and throttles by shape: most fire on each match
// at most 3 times an hour per host, some need 2 or 3 occurrences within
// a window, one in twenty allows 10 an hour. A shorter set is a prefix of
// a longer one.
func Rules(n int, seed uint64) []Rule {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed)) //nolint:gosec // load shapes, not secrets
	docs := rulebench.Conditions(r, n)
	out := make([]Rule, 0, n)
	for i, doc := range docs {
		rule := Rule{Name: fmt.Sprintf("%s%04d", RulePrefix, i+1), Conditions: json.RawMessage(doc),
			TimeWindowMinutes: 5, MinCount: 1, MaxTriggersPerHour: 3}
		switch i % 20 {
		case 8, 9:
			rule.MinCount, rule.TimeWindowMinutes = 3, 10
		case 14:
			rule.MaxTriggersPerHour = 10
		case 16:
			rule.MinCount, rule.TimeWindowMinutes = 2, 15
		}
		out = append(out, rule)
	}
	return out
}

// ensureRules creates the first o.Rules rules of Rules(o.Rules, 1) that the
// server does not have yet (a 409: a rule of that name exists) and reports
// how many it created.
func ensureRules(ctx context.Context, o Options) (int, error) {
	created := 0
	for _, rule := range Rules(o.Rules, 1) {
		body, err := json.Marshal(rule)
		if err != nil {
			return created, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL+"/api/v1/rules/triggers", bytes.NewReader(body))
		if err != nil {
			return created, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+o.Token)
		resp, err := o.Client.Do(req)
		if err != nil {
			return created, fmt.Errorf("loadgen: create rule %q: %w", rule.Name, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			return created, fmt.Errorf("loadgen: create rule %q: %s: %s", rule.Name, resp.Status, bytes.TrimSpace(msg))
		}
	}
	return created, nil
}
