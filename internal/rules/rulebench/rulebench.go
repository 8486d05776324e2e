// Package rulebench is the workload of reflex's trigger-rule benchmarks:
// 1,000 (or n) rules of mixed shapes and events of realistic variety,
// drawn from a seeded random source. The evaluation benchmark
// (internal/rules/cond BenchmarkEvaluate) and the load generator's
// --rules use the same rules, so that the two figures of the rules issue
// are about one rule set.
package rulebench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// The vocabulary of the rules and events.
var (
	Types = []string{"threshold_breach", "service_down", "disk_full", "memory_pressure",
		"login_failed", "cert_expiring", "backup_failed", "deploy_finished", "latency_high",
		"error_rate", "packet_loss", "queue_backlog", "replication_lag", "pod_crashloop",
		"oom_killed", "config_changed", "heartbeat_missed", "security_alert", "job_failed",
		"api_5xx", "dns_failure", "ntp_drift", "raid_degraded", "power_supply"}
	Sources       = []string{"prometheus", "nagios", "zabbix", "datadog", "cloudwatch", "grafana", "sentry", "pagerduty"}
	Services      = []string{"nginx", "postgres", "redis", "api", "worker", "kafka", "auth", "billing"}
	Roles         = []string{"web", "db", "cache", "api", "worker", "lb"}
	Metrics       = []string{"cpu_usage", "memory_usage", "disk_usage", "latency_ms", "error_rate", "value"}
	Regions       = []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"}
	Criticalities = []string{"critical", "high", "medium", "low"}
)

// severityOf draws a severity as monitoring streams have them: mostly
// info and low, few critical.
func severityOf(r *rand.Rand) event.Severity {
	switch x := r.IntN(100); {
	case x < 5:
		return event.Critical
	case x < 15:
		return event.High
	case x < 35:
		return event.Medium
	case x < 60:
		return event.Low
	}
	return event.Info
}

// Conditions writes the conditions of n rules of mixed shapes, drawing
// from r: most pin an event type as the seed's rule does, some only a
// source or a severity, a few nothing. A shorter set is a prefix of a
// longer one drawn from the same seed.
func Conditions(r *rand.Rand, n int) []string {
	rules := make([]string, 0, n)
	for i := range n {
		typ, typ2 := pick(r, Types), pick(r, Types)
		metric, src := pick(r, Metrics), pick(r, Sources)
		var doc string
		switch x := i % 20; {
		case x < 8: // the seed's shape
			doc = fmt.Sprintf(`{"event_type": %q, "severity": ["critical", "high"], "metadata.%s": {"$gt": %d}}`,
				typ, metric, 50+r.IntN(50))
		case x < 10:
			doc = fmt.Sprintf(`{"event_type": {"$in": [%q, %q]}, "host": {"$regex": "^%s-\\d+$"}, "severity": {"$gte": "medium"}}`,
				typ, typ2, pick(r, Roles))
		case x < 12:
			doc = fmt.Sprintf(`{"source": %q, "event_type": %q, "tags": {"$in": ["production", "pci"]}}`, src, typ)
		case x < 14:
			doc = fmt.Sprintf(`{"event_type": %q, "event_data.asset.criticality": {"$in": ["critical", "high"]}, "severity": {"$gte": "high"}}`, typ)
		case x == 14:
			doc = fmt.Sprintf(`{"severity": {"$gte": "high"}, "service": %q, "$not": {"tags": "staging"}}`, pick(r, Services))
		case x == 15:
			doc = fmt.Sprintf(`{"$or": [{"event_type": %q, "metadata.%s": {"$gte": %d}}, {"event_type": %q, "occurrence_count": {"$gte": 3}}]}`,
				typ, metric, 60+r.IntN(40), typ2)
		case x == 16:
			doc = fmt.Sprintf(`{"source": %q, "metadata.region": {"$startswith": %q}, "occurrence_count": {"$gte": 2}}`,
				src, pick(r, Regions)[:3])
		case x == 17:
			doc = fmt.Sprintf(`{"event_type": %q, "$or": [{"title": {"$contains": "timeout"}}, {"description": {"$regex": "(?i)refused|reset"}}]}`, typ)
		case x == 18:
			doc = fmt.Sprintf(`{"event_type": %q, "priority": {"$gte": %d}, "event_data.asset.environment": "production", "correlation_id": {"$exists": true}}`,
				typ, 40+r.IntN(40))
		default: // nothing indexed: host or service first
			if i%40 == 19 {
				doc = fmt.Sprintf(`{"host": "%s-%03d", "metadata.%s": {"$exists": true}}`, pick(r, Roles), r.IntN(200), metric)
			} else {
				doc = fmt.Sprintf(`{"service": %q, "title": {"$regex": "(?i)out of (memory|disk)"}}`, pick(r, Services))
			}
		}
		rules = append(rules, doc)
	}
	return rules
}

// Events makes n events as the pipeline hands them on: the webhook's
// metadata with json.Number values, an asset for most hosts, a scoring.
func Events(r *rand.Rand, n int) []*event.Event {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	events := make([]*event.Event, 0, n)
	for i := range n {
		role := pick(r, Roles)
		host := fmt.Sprintf("%s-%03d", role, r.IntN(200))
		typ := Types[min(r.IntN(len(Types)), r.IntN(len(Types)))] // some types more common
		sev := severityOf(r)
		metric := pick(r, Metrics)
		e := &event.Event{
			ID:            int64(i + 1),
			EventType:     typ,
			Severity:      sev,
			SourceSystem:  pick(r, Sources),
			SourceType:    event.SourceWebhook,
			SourceHost:    host,
			SourceService: pick(r, Services),
			Title:         fmt.Sprintf("%s on %s: %s above threshold", typ, host, metric),
			Description:   pick(r, []string{"", "connection refused by upstream", "request timeout after 30s", "value above threshold for 5m"}),
			Data: map[string]any{"metadata": map[string]any{
				metric:      json.Number(fmt.Sprint(r.IntN(100))),
				"threshold": json.Number("90"),
				"region":    pick(r, Regions),
			}},
			Tags:            []string{pick(r, []string{"production", "staging"}), "team-" + role},
			OccurredAt:      base.Add(time.Duration(i) * time.Millisecond),
			OccurrenceCount: 1 + r.IntN(3),
			Priority:        r.IntN(100),
			Scoring:         &event.Scoring{Priority: 50, Severity: sev, SourceSeverity: sev},
		}
		if r.IntN(10) < 7 {
			e.Asset = &event.Asset{Criticality: pick(r, Criticalities), Environment: pick(r, []string{"production", "staging"}), Team: role}
		}
		if r.IntN(4) == 0 {
			e.CorrelationID = fmt.Sprintf("c-%d", i)
		}
		events = append(events, e)
	}
	return events
}

// pick draws one of vals.
func pick(r *rand.Rand, vals []string) string { return vals[r.IntN(len(vals))] }
