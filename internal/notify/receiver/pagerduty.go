package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// DefaultPagerDutyURL is the Events API v2 endpoint used when the
// configuration names none.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDuty's limits (Events API v2).
const (
	maxPDSummary  = 1024
	maxPDSource   = 255
	maxPDDedupKey = 255
	// maxPDAlerts is how many alerts custom_details lists.
	maxPDAlerts = 20
)

// pagerDuty triggers (Send) and resolves (Resolve) an incident per group,
// with the group key as dedup key.
type pagerDuty struct {
	p          *poster
	routingKey string
}

var (
	_ notify.Sender = (*pagerDuty)(nil)
	_ Resolver      = (*pagerDuty)(nil)
)

func newPagerDuty(_ string, c *notify.PagerDutyConfig, g *outbound.Guard, opts Options, logger *slog.Logger) (*pagerDuty, error) {
	if c.RoutingKey == "" {
		return nil, errors.New("pagerduty: routing_key is required")
	}
	u := c.URL
	if u == "" {
		u = DefaultPagerDutyURL
	}
	p, err := newPoster("pagerduty", u, g, opts, logger, c.RoutingKey)
	if err != nil {
		return nil, err
	}
	return &pagerDuty{p: p, routingKey: c.RoutingKey}, nil
}

type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger or resolve
	DedupKey    string     `json:"dedup_key"`
	Payload     *pdPayload `json:"payload,omitempty"`
	Client      string     `json:"client,omitempty"`
}

type pdPayload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"` // critical, error, warning, info
	Timestamp     string          `json:"timestamp,omitempty"`
	Component     string          `json:"component,omitempty"`
	Class         string          `json:"class,omitempty"`
	CustomDetails pdCustomDetails `json:"custom_details"`
}

type pdCustomDetails struct {
	Receiver        string         `json:"receiver"`
	GroupKey        string         `json:"group_key"`
	AlertCount      int            `json:"alert_count"`
	Rules           []string       `json:"rules"`
	Hosts           []string       `json:"hosts"`
	Alerts          []notify.Alert `json:"alerts"`
	AlertsTruncated int            `json:"alerts_truncated,omitempty"`
}

// pdSeverity maps reflex's severities to PagerDuty's four: critical,
// high -> error, medium -> warning, low and info -> info; an unknown one
// is error, so that it pages rather than hides.
func pdSeverity(sev string) string {
	switch rank(sev) {
	case 4:
		return "critical"
	case 3:
		return "error"
	case 2:
		return "warning"
	case 1, 0:
		return "info"
	}
	return "error"
}

// DedupKey is the dedup_key PagerDuty gets for a group: the group key, or
// "sha256:<hex>" of it when it is longer than PagerDuty's 255 characters.
// Send and Resolve use the same.
func DedupKey(groupKey string) string {
	if len(groupKey) <= maxPDDedupKey && groupKey != "" {
		return groupKey
	}
	sum := sha256.Sum256([]byte(groupKey))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pagerDutyTrigger renders a group's trigger event. The summary is the
// headline, the source the group's hosts, the severity its most severe
// alert's, the timestamp its earliest firing.
func pagerDutyTrigger(routingKey string, n notify.Notification) pdEvent {
	s := summarize(n)
	var first time.Time
	for _, a := range n.Alerts {
		if first.IsZero() || (!a.FiredAt.IsZero() && a.FiredAt.Before(first)) {
			first = a.FiredAt
		}
	}
	ts := ""
	if !first.IsZero() {
		ts = first.UTC().Format(time.RFC3339Nano)
	}
	source := list(s.hosts, 3, 80)
	if len(s.hosts) == 0 || source == "(none)" {
		source = "reflex"
	}
	alerts := s.alerts
	truncated := 0
	if len(alerts) > maxPDAlerts {
		truncated = len(alerts) - maxPDAlerts
		alerts = alerts[:maxPDAlerts]
	}
	if alerts == nil {
		alerts = []notify.Alert{}
	}
	class := ""
	if len(s.rules) == 1 {
		class = truncate(s.rules[0], 255)
	}
	return pdEvent{
		RoutingKey:  routingKey,
		EventAction: "trigger",
		DedupKey:    DedupKey(n.GroupKey),
		Client:      "reflex",
		Payload: &pdPayload{
			Summary:   truncate(s.headline(), maxPDSummary),
			Source:    truncate(source, maxPDSource),
			Severity:  pdSeverity(s.top),
			Timestamp: ts,
			Class:     class,
			CustomDetails: pdCustomDetails{
				Receiver:        n.Receiver,
				GroupKey:        n.GroupKey,
				AlertCount:      len(n.Alerts),
				Rules:           nonNil(s.rules),
				Hosts:           nonNil(s.hosts),
				Alerts:          alerts,
				AlertsTruncated: truncated,
			},
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Send triggers (or updates, PagerDuty deduplicating by key) the group's
// incident.
func (c *pagerDuty) Send(ctx context.Context, n notify.Notification) error {
	body, err := json.Marshal(pagerDutyTrigger(c.routingKey, n))
	if err != nil {
		return permanent(fmt.Errorf("pagerduty: encode: %w", err))
	}
	return c.p.post(ctx, body, nil)
}

// Resolve resolves the group's incident: event_action "resolve" with the
// group's dedup key.
func (c *pagerDuty) Resolve(ctx context.Context, groupKey string) error {
	body, err := json.Marshal(pdEvent{RoutingKey: c.routingKey, EventAction: "resolve", DedupKey: DedupKey(groupKey)})
	if err != nil {
		return permanent(fmt.Errorf("pagerduty: encode: %w", err))
	}
	return c.p.post(ctx, body, nil)
}
