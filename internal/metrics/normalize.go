package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Normalizer is the metrics path's normalizer, registered for
// event.SourceMetrics. It maps a Notice to the event's fields:
//
//	event_type      the rule's or check's name
//	severity        the rule's severity when firing, info when resolved
//	source_host     the host label's value (default instance, port stripped)
//	title           the summary ("resolved: " before it for a resolution)
//	event_data      {"metrics": {kind, rule|check, metric|query, value, op,
//	                threshold, labels, reason}, "alert": {key, status,
//	                starts_at, ends_at}}
//	tags            metrics, the kind (rule or check)
//	occurred_at     the sample's (or the run's) time
type Normalizer struct{}

var _ normalize.Normalizer = Normalizer{}

// Normalize decodes raw.Data as a Notice.
func (Normalizer) Normalize(raw *event.Raw) (normalize.Draft, error) {
	var n Notice
	dec := json.NewDecoder(bytes.NewReader(raw.Data))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return normalize.Draft{}, fmt.Errorf("metrics: %w", err)
	}
	if n.Name == "" || n.Key == "" {
		return normalize.Draft{}, errors.New("metrics: notice without name or key")
	}
	if n.Status != event.AlertFiring && n.Status != event.AlertResolved {
		return normalize.Draft{}, fmt.Errorf("metrics: status %q is not firing or resolved", n.Status)
	}
	e := &event.Event{
		EventType:    n.Name,
		Severity:     n.Severity,
		SourceSystem: raw.SourceSystem,
		SourceHost:   n.Host,
		Title:        n.Summary,
		Tags:         []string{"metrics", n.Kind},
	}
	if n.Status == event.AlertResolved {
		e.Severity = event.Info
	}
	md := map[string]any{
		"kind":   n.Kind,
		"value":  n.Value,
		"labels": n.Labels,
	}
	if n.Kind == KindCheck {
		md["check"], md["query"] = n.Name, n.Query
	} else {
		md["rule"], md["metric"] = n.Name, n.Metric
	}
	if n.Op != "" {
		md["op"] = n.Op
	}
	if n.Threshold != nil {
		md["threshold"] = *n.Threshold
	}
	if n.Reason != "" {
		md["reason"] = n.Reason
	}
	e.SetData("metrics", md)
	a := &event.Alert{Key: n.Key, Status: n.Status, EndsAt: n.EndsAt}
	if !n.StartsAt.IsZero() {
		starts := n.StartsAt
		a.StartsAt = &starts
	}
	e.Alert = a
	return normalize.Draft{Event: e, Timestamp: n.At}, nil
}
