package cond

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

var (
	benchTypes = []string{"threshold_breach", "service_down", "disk_full", "memory_pressure",
		"login_failed", "cert_expiring", "backup_failed", "deploy_finished", "latency_high",
		"error_rate", "packet_loss", "queue_backlog", "replication_lag", "pod_crashloop",
		"oom_killed", "config_changed", "heartbeat_missed", "security_alert", "job_failed",
		"api_5xx", "dns_failure", "ntp_drift", "raid_degraded", "power_supply"}
	benchSources  = []string{"prometheus", "nagios", "zabbix", "datadog", "cloudwatch", "grafana", "sentry", "pagerduty"}
	benchServices = []string{"nginx", "postgres", "redis", "api", "worker", "kafka", "auth", "billing"}
	benchRoles    = []string{"web", "db", "cache", "api", "worker", "lb"}
	benchMetrics  = []string{"cpu_usage", "memory_usage", "disk_usage", "latency_ms", "error_rate", "value"}
	benchRegions  = []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"}
	benchCrit     = []string{"critical", "high", "medium", "low"}
)

// benchSeverity draws a severity as monitoring streams have them: mostly
// info and low, few critical.
func benchSeverity(r *rand.Rand) event.Severity {
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

// benchRules writes n rules of mixed shapes: most pin an event type as the
// seed's rule does, some only a source or a severity, a few nothing.
func benchRules(r *rand.Rand, n int) []string {
	rules := make([]string, 0, n)
	for i := range n {
		typ, typ2 := pick(r, benchTypes), pick(r, benchTypes)
		metric, src := pick(r, benchMetrics), pick(r, benchSources)
		var doc string
		switch x := i % 20; {
		case x < 8: // the seed's shape
			doc = fmt.Sprintf(`{"event_type": %q, "severity": ["critical", "high"], "metadata.%s": {"$gt": %d}}`,
				typ, metric, 50+r.IntN(50))
		case x < 10:
			doc = fmt.Sprintf(`{"event_type": {"$in": [%q, %q]}, "host": {"$regex": "^%s-\\d+$"}, "severity": {"$gte": "medium"}}`,
				typ, typ2, pick(r, benchRoles))
		case x < 12:
			doc = fmt.Sprintf(`{"source": %q, "event_type": %q, "tags": {"$in": ["production", "pci"]}}`, src, typ)
		case x < 14:
			doc = fmt.Sprintf(`{"event_type": %q, "event_data.asset.criticality": {"$in": ["critical", "high"]}, "severity": {"$gte": "high"}}`, typ)
		case x == 14:
			doc = fmt.Sprintf(`{"severity": {"$gte": "high"}, "service": %q, "$not": {"tags": "staging"}}`, pick(r, benchServices))
		case x == 15:
			doc = fmt.Sprintf(`{"$or": [{"event_type": %q, "metadata.%s": {"$gte": %d}}, {"event_type": %q, "occurrence_count": {"$gte": 3}}]}`,
				typ, metric, 60+r.IntN(40), typ2)
		case x == 16:
			doc = fmt.Sprintf(`{"source": %q, "metadata.region": {"$startswith": %q}, "occurrence_count": {"$gte": 2}}`,
				src, pick(r, benchRegions)[:3])
		case x == 17:
			doc = fmt.Sprintf(`{"event_type": %q, "$or": [{"title": {"$contains": "timeout"}}, {"description": {"$regex": "(?i)refused|reset"}}]}`, typ)
		case x == 18:
			doc = fmt.Sprintf(`{"event_type": %q, "priority": {"$gte": %d}, "event_data.asset.environment": "production", "correlation_id": {"$exists": true}}`,
				typ, 40+r.IntN(40))
		default: // nothing indexed: host or service first
			if i%40 == 19 {
				doc = fmt.Sprintf(`{"host": "%s-%03d", "metadata.%s": {"$exists": true}}`, pick(r, benchRoles), r.IntN(200), metric)
			} else {
				doc = fmt.Sprintf(`{"service": %q, "title": {"$regex": "(?i)out of (memory|disk)"}}`, pick(r, benchServices))
			}
		}
		rules = append(rules, doc)
	}
	return rules
}

// benchEvents makes n events as the pipeline hands them on: the webhook's
// metadata with json.Number values, an asset for most hosts, a scoring.
func benchEvents(r *rand.Rand, n int) []*event.Event {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	events := make([]*event.Event, 0, n)
	for i := range n {
		role := pick(r, benchRoles)
		host := fmt.Sprintf("%s-%03d", role, r.IntN(200))
		typ := benchTypes[min(r.IntN(len(benchTypes)), r.IntN(len(benchTypes)))] // some types more common
		sev := benchSeverity(r)
		metric := pick(r, benchMetrics)
		e := &event.Event{
			ID:            int64(i + 1),
			EventType:     typ,
			Severity:      sev,
			SourceSystem:  pick(r, benchSources),
			SourceType:    event.SourceWebhook,
			SourceHost:    host,
			SourceService: pick(r, benchServices),
			Title:         fmt.Sprintf("%s on %s: %s above threshold", typ, host, metric),
			Description:   pick(r, []string{"", "connection refused by upstream", "request timeout after 30s", "value above threshold for 5m"}),
			Data: map[string]any{"metadata": map[string]any{
				metric:      json.Number(fmt.Sprint(r.IntN(100))),
				"threshold": json.Number("90"),
				"region":    pick(r, benchRegions),
			}},
			Tags:            []string{pick(r, []string{"production", "staging"}), "team-" + role},
			OccurredAt:      base.Add(time.Duration(i) * time.Millisecond),
			OccurrenceCount: 1 + r.IntN(3),
			Priority:        r.IntN(100),
			Scoring:         &event.Scoring{Priority: 50, Severity: sev, SourceSeverity: sev},
		}
		if r.IntN(10) < 7 {
			e.Asset = &event.Asset{Criticality: pick(r, benchCrit), Environment: pick(r, []string{"production", "staging"}), Team: role}
		}
		if r.IntN(4) == 0 {
			e.CorrelationID = fmt.Sprintf("c-%d", i)
		}
		events = append(events, e)
	}
	return events
}

// BenchmarkEvaluate evaluates events against 1,000 active rules of mixed
// shapes: index, then the candidates' matchers, as the rules engine does
// (index); and every matcher on every event, for comparison (scan).
func BenchmarkEvaluate(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 6))
	docs := benchRules(r, 1000)
	events := benchEvents(r, 4096)
	idx := NewIndex()
	rules := make(map[int64]*Matcher, len(docs))
	all := make([]*Matcher, 0, len(docs))
	for i, doc := range docs {
		m, err := Compile(json.RawMessage(doc))
		if err != nil {
			b.Fatal(doc, err)
		}
		rules[int64(i+1)] = m
		all = append(all, m)
		idx.Add(int64(i+1), m)
	}
	b.Run("index", func(b *testing.B) {
		var dst []int64
		cands, matched := 0, 0
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			e := events[i%len(events)]
			dst = idx.Candidates(e, dst[:0])
			cands += len(dst)
			for _, id := range dst {
				if rules[id].Match(e) {
					matched++
				}
			}
		}
		reportRate(b, cpuTime()-cpu)
		b.ReportMetric(float64(cands)/float64(b.N), "candidates/event")
		b.ReportMetric(float64(matched)/float64(b.N), "matches/event")
	})
	b.Run("scan", func(b *testing.B) {
		matched := 0
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			e := events[i%len(events)]
			for _, m := range all {
				if m.Match(e) {
					matched++
				}
			}
		}
		reportRate(b, cpuTime()-cpu)
		b.ReportMetric(float64(matched)/float64(b.N), "matches/event")
	})
}

// reportRate reports events per second of wall time and, where the
// process's CPU time is known, per second of CPU time: on a machine shared
// with other work the second is the figure per core (run with -cpu 1).
func reportRate(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}
