package alertmanager

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// DefaultEventType is the event type of an alert without an alertname
// label.
const DefaultEventType = "alert"

// Keys of event_data.
const (
	DataLabels       = "labels"
	DataAnnotations  = "annotations"
	DataGeneratorURL = "generator_url"
	DataFingerprint  = "fingerprint"
	DataReceiver     = "receiver"
	DataGroupKey     = "group_key"
	DataExternalURL  = "external_url"
)

// ResolvedPrefix starts the title of a resolution.
const ResolvedPrefix = "Resolved: "

// Normalizer is the normalizer of event.SourceAlertmanager: it maps a
// Record (see Decode) to the event:
//
//	event_type      the alertname label, default "alert"
//	severity        the severity label (see Severity); info for a resolution
//	source_system   "alertmanager"
//	source_host     the instance label without its port, or host, hostname, node, pod (see Host)
//	source_service  the service label, or else job
//	title           the summary annotation, or else the alertname; "Resolved: " before it for a resolution
//	description     the description annotation, or else message
//	occurred_at     startsAt; for a resolution endsAt (startsAt when it has none)
//	event_data      labels, annotations, generator_url, fingerprint, receiver, group_key, external_url,
//	                alert {key, status, starts_at, ends_at} (event.Alert)
//
// The alert's Key is its fingerprint (see Key).
type Normalizer struct{}

var _ normalize.Normalizer = Normalizer{}

// Normalize decodes raw.Data as a Record and maps it.
func (Normalizer) Normalize(raw *event.Raw) (normalize.Draft, error) {
	var rec Record
	if err := json.Unmarshal(raw.Data, &rec); err != nil {
		return normalize.Draft{}, fmt.Errorf("alertmanager record: %w", err)
	}
	d := AlertDraft(&rec.Alert, SourceSystem)
	setData(d.Event, DataReceiver, rec.Receiver)
	setData(d.Event, DataGroupKey, rec.GroupKey)
	setData(d.Event, DataExternalURL, rec.ExternalURL)
	return d, nil
}

// AlertDraft maps an alert (see Normalizer) to a draft event of
// sourceSystem, without the notification's fields.
func AlertDraft(a *Alert, sourceSystem string) normalize.Draft {
	resolved := a.Status == string(event.AlertResolved)
	e := &event.Event{
		EventType:     strings.TrimSpace(a.Labels["alertname"]),
		Severity:      Severity(a.Labels),
		SourceSystem:  sourceSystem,
		SourceHost:    Host(a.Labels),
		SourceService: Service(a.Labels),
		Title:         first(a.Annotations["summary"], a.Labels["alertname"]),
		Description:   first(a.Annotations["description"], a.Annotations["message"]),
		Alert:         &event.Alert{Key: Key(a.Fingerprint, a.Labels), Status: event.AlertFiring},
	}
	if e.EventType == "" {
		e.EventType = DefaultEventType
	}
	if !a.StartsAt.IsZero() {
		t := a.StartsAt
		e.Alert.StartsAt = &t
	}
	d := normalize.Draft{Event: e, Timestamp: a.StartsAt}
	if resolved {
		e.Severity = event.Info
		e.Alert.Status = event.AlertResolved
		if e.Title != "" {
			e.Title = ResolvedPrefix + e.Title
		}
		if !a.EndsAt.IsZero() {
			t := a.EndsAt
			e.Alert.EndsAt = &t
			d.Timestamp = t
		}
	}
	if len(a.Labels) > 0 {
		e.SetData(DataLabels, a.Labels)
	}
	if len(a.Annotations) > 0 {
		e.SetData(DataAnnotations, a.Annotations)
	}
	setData(e, DataGeneratorURL, a.GeneratorURL)
	setData(e, DataFingerprint, a.Fingerprint)
	return d
}

// setData sets event_data.key to a string that is not empty.
func setData(e *event.Event, key, v string) {
	if v != "" {
		e.SetData(key, v)
	}
}

// first returns the first of vs that is not blank.
func first(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
