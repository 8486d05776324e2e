package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// alertState is one alert's place: pending since the condition began to
// hold, firing once it held for its "for".
type alertState struct {
	since    time.Time // when the condition began to hold; zero: it does not
	firing   bool
	firedAt  time.Time
	lastSeen time.Time
}

// step moves the state by one observation of the condition at at and
// answers what changed.
func (a *alertState) step(holds bool, at time.Time, forDur time.Duration) (fire, resolve bool) {
	a.lastSeen = at
	if !holds {
		a.since = time.Time{}
		if a.firing {
			a.firing = false
			return false, true
		}
		return false, false
	}
	if a.since.IsZero() {
		a.since = at
	}
	if !a.firing && at.Sub(a.since) >= forDur {
		a.firing, a.firedAt = true, at
		return true, false
	}
	return false, false
}

// idle reports whether the state holds nothing worth keeping.
func (a *alertState) idle() bool { return !a.firing && a.since.IsZero() }

// Kinds of Notice.
const (
	KindRule  = "rule"
	KindCheck = "check"
)

// Reasons of a resolution.
const (
	ReasonCleared = "cleared" // the condition no longer holds
	ReasonStale   = "stale"   // the series stopped reporting (or a stale marker)
	ReasonStopped = "absent"  // the series left the check's result
)

// Notice is an alert event as the metrics path submits it: the intake
// item's Data, which Normalizer maps to the event.
type Notice struct {
	Kind      string            `json:"kind"`
	Name      string            `json:"name"`
	Status    event.AlertStatus `json:"status"`
	Severity  event.Severity    `json:"severity"`
	Host      string            `json:"host,omitempty"`
	Summary   string            `json:"summary"`
	Value     any               `json:"value"` // a float64, or "NaN", "+Inf", "-Inf"
	Op        string            `json:"op,omitempty"`
	Threshold *float64          `json:"threshold,omitempty"`
	Metric    string            `json:"metric,omitempty"`
	Query     string            `json:"query,omitempty"`
	Labels    map[string]string `json:"labels"`
	Key       string            `json:"key"`
	StartsAt  time.Time         `json:"starts_at"`
	EndsAt    *time.Time        `json:"ends_at,omitempty"`
	At        time.Time         `json:"at"`
	Reason    string            `json:"reason,omitempty"`
}

// jsonValue answers v as JSON can hold it.
func jsonValue(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return v
}

// hostOf answers the host of a series: the label named hostLabel, with a
// port stripped, or else the host label.
func hostOf(ls Labels, hostLabel string) string {
	h := ls.Get(hostLabel)
	if h == "" {
		h = ls.Get("host")
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return h
}

// notice builds the event of an alert's change.
func notice(kind, name string, a *Alerting, c Condition, ls Labels, status event.AlertStatus, st *alertState, at time.Time, v float64) Notice {
	host := hostOf(ls, a.HostLabel)
	n := Notice{
		Kind: kind, Name: name, Status: status, Severity: a.severity, Host: host,
		Value: jsonValue(v), Op: c.Op, Threshold: c.Threshold, Labels: ls.Map(),
		Key: event.AlertKey(name, labelKey(ls)), StartsAt: st.firedAt.UTC(), At: at.UTC(),
	}
	if kind == KindRule {
		n.Metric = ls.Name()
	}
	if status == event.AlertResolved {
		n.Severity = event.Info
		end := at.UTC()
		n.EndsAt = &end
	}
	n.Summary = summary(a.Summary, name, host, c, ls, v)
	if status == event.AlertResolved {
		n.Summary = "resolved: " + n.Summary
	}
	return n
}

// labelKey answers the sorted label pairs as a=b,c=d (the metric name
// included as __name__).
func labelKey(ls Labels) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "=" + l.Value
	}
	return strings.Join(parts, ",")
}

// summary expands the template (or the default one).
func summary(tmpl, name, host string, c Condition, ls Labels, v float64) string {
	if tmpl == "" {
		series := ls.String()
		if ls.Name() == "" && len(ls) == 0 {
			series = "result"
		}
		tmpl = name + ": " + series + " = {{value}}"
		if c.Op != "" {
			tmpl += " " + c.Op + " {{threshold}}"
		}
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.Index(tmpl[i:], "}}")
		if j < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		ref := strings.TrimSpace(tmpl[i+2 : i+j])
		switch {
		case ref == "value":
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		case ref == "host":
			b.WriteString(host)
		case ref == "name":
			b.WriteString(name)
		case ref == "threshold":
			if c.Threshold != nil {
				b.WriteString(strconv.FormatFloat(*c.Threshold, 'g', -1, 64))
			}
		case strings.HasPrefix(ref, "labels."):
			b.WriteString(ls.Get(strings.TrimPrefix(ref, "labels.")))
		default:
			b.WriteString(tmpl[i : i+j+2])
		}
		tmpl = tmpl[i+j+2:]
	}
	return normalize.Title(b.String())
}

// Submitter takes the alert events (*intake.Submitter).
type Submitter interface {
	Submit(ctx context.Context, src event.SourceType, items []intake.Item) ([]int64, error)
}

// sender submits notices in order through a bounded queue.
type sender struct {
	sub    Submitter
	log    *slog.Logger
	q      chan Notice
	wg     sync.WaitGroup
	source string

	submitted *prometheus.CounterVec
	dropped   *prometheus.CounterVec
}

const (
	queueSize      = 4096
	busyAt         = queueSize * 3 / 4
	submitAttempts = 5
	submitTimeout  = 10 * time.Second
)

// enqueue queues n; false when the queue is full (counted).
func (s *sender) enqueue(n Notice) bool {
	select {
	case s.q <- n:
		return true
	default:
		s.dropped.WithLabelValues(n.Kind, "queue_full").Inc()
		s.log.Warn("metric alert event dropped: queue full", "alert", n.Name, "status", n.Status)
		return false
	}
}

// busy reports whether the queue is nearly full.
func (s *sender) busy() bool { return len(s.q) >= busyAt }

// run submits the queued notices until the queue is closed and empty;
// a failed submission is retried (with backoff) a few times, then dropped
// and counted.
func (s *sender) run(ctx context.Context) {
	defer s.wg.Done()
	for n := range s.q {
		s.submit(ctx, n)
	}
}

func (s *sender) submit(ctx context.Context, n Notice) {
	data, err := json.Marshal(n)
	if err != nil { // cannot happen: every value is encodable
		s.dropped.WithLabelValues(n.Kind, "encode").Inc()
		return
	}
	item := intake.Item{SourceSystem: s.source, Severity: n.Severity, Data: data, Host: normalize.Host(n.Host)}
	if n.Kind == KindCheck {
		item.SourceSystem = "prometheus"
	}
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, submitTimeout)
		_, err = s.sub.Submit(sctx, event.SourceMetrics, []intake.Item{item})
		cancel()
		if err == nil {
			s.submitted.WithLabelValues(n.Kind, string(n.Status)).Inc()
			return
		}
		if attempt == submitAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	s.dropped.WithLabelValues(n.Kind, "intake").Inc()
	s.log.Error("metric alert event not submitted", "alert", n.Name, "status", n.Status, "err", err)
}

// String of a notice, for logs and tests.
func (n Notice) String() string {
	return fmt.Sprintf("%s %s %s host=%s key=%s", n.Kind, n.Name, n.Status, n.Host, n.Key)
}
