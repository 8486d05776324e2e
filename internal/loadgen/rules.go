package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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

// otherTypes and otherSources widen the rules' vocabulary beyond what the
// generator posts, as a real rule set covers many kinds of events: most
// rules never match a given stream.
var (
	otherTypes = []string{"memory_pressure", "login_failed", "cert_expiring", "backup_failed", "deploy_finished",
		"packet_loss", "queue_backlog", "replication_lag", "pod_crashloop", "config_changed", "heartbeat_missed",
		"security_alert", "job_failed", "api_5xx", "dns_failure", "ntp_drift", "raid_degraded", "power_supply"}
	otherSources = []string{"prometheus", "nagios", "zabbix", "datadog", "cloudwatch", "grafana", "sentry", "pagerduty"}
)

// Rules returns n trigger rules of mixed shapes over the vocabulary of the
// generated events and beyond it, the same for the same seed: most pin an
// event type as the seed's rule does (a quarter of those a type the
// generator posts), some a source, a service or a severity, some need
// several occurrences in a window, a few pin nothing the index can use.
func Rules(n int, seed uint64) []Rule {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed)) //nolint:gosec // load shapes, not secrets
	types := append(append([]string(nil), eventTypes...), otherTypes...)
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	source := func() string {
		if r.IntN(2) == 0 {
			return fmt.Sprintf("loadgen-%02d", r.IntN(20))
		}
		return pick(otherSources)
	}
	out := make([]Rule, 0, n)
	for i := range n {
		rule := Rule{Name: fmt.Sprintf("%s%04d", RulePrefix, i+1), TimeWindowMinutes: 5, MinCount: 1, MaxTriggersPerHour: 3}
		typ, typ2 := pick(types), pick(types)
		var doc string
		switch x := i % 20; {
		case x < 8: // the seed's shape
			doc = fmt.Sprintf(`{"event_type": %q, "severity": ["critical", "high"], "metadata.value": {"$gt": %d}}`, typ, 50+r.IntN(50))
		case x < 10:
			doc = fmt.Sprintf(`{"event_type": {"$in": [%q, %q]}, "host": {"$regex": "^host-\\d*%d$"}, "severity": {"$gte": "medium"}}`,
				typ, typ2, r.IntN(10))
			rule.MinCount, rule.TimeWindowMinutes = 3, 10
		case x < 12:
			doc = fmt.Sprintf(`{"source": %q, "event_type": %q, "tags": {"$in": ["production", "pci"]}}`, source(), typ)
		case x < 14:
			doc = fmt.Sprintf(`{"event_type": %q, "event_data.asset.criticality": {"$in": ["critical", "high"]}}`, typ)
			rule.SeverityThreshold = "high"
		case x == 14:
			doc = fmt.Sprintf(`{"severity": {"$gte": "high"}, "service": %q, "$not": {"tags": "staging"}}`, pick(services))
			rule.MaxTriggersPerHour = 10
		case x == 15:
			doc = fmt.Sprintf(`{"$or": [{"event_type": %q, "metadata.value": {"$gte": %d}}, {"event_type": %q, "occurrence_count": {"$gte": 3}}]}`,
				typ, 95+r.IntN(5), typ2)
		case x == 16:
			doc = fmt.Sprintf(`{"source": %q, "metadata.region": {"$startswith": "eu-"}, "occurrence_count": {"$gte": 2}}`, source())
			rule.MinCount, rule.TimeWindowMinutes = 2, 15
		case x == 17:
			doc = fmt.Sprintf(`{"event_type": %q, "$or": [{"title": {"$contains": "timeout"}}, {"description": {"$regex": "(?i)refused|reset"}}]}`, typ)
		case x == 18:
			doc = fmt.Sprintf(`{"event_type": %q, "priority": {"$gte": %d}, "correlation_id": {"$exists": true}}`, typ, 40+r.IntN(40))
		default: // nothing the index can use: host or service first
			if i%40 == 19 {
				doc = fmt.Sprintf(`{"host": "host-%04d", "metadata.value": {"$exists": true}}`, r.IntN(1000))
			} else {
				doc = fmt.Sprintf(`{"service": %q, "title": {"$regex": "(?i)out of (memory|disk)"}}`, pick(services))
			}
		}
		rule.Conditions = json.RawMessage(doc)
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
