// Package alertmanager takes Prometheus Alertmanager's webhook notifications
// (POST /api/v1/events/alertmanager, a webhook_configs receiver): each
// alert of a notification becomes one event of source type alertmanager,
// which fires, and later resolves, under the alert's fingerprint (see
// event.Alert).
//
// Decode validates a notification body (the webhook payload, version 4)
// strictly and turns its alerts into intake items, each a Record; Handler
// is the HTTP endpoint, which answers 2xx only once every alert of the
// body is durable on the intake log; Normalizer maps a Record to the event.
// The mapping of labels to severity, host and service (Severity, Host,
// Service, Key) is shared with the Grafana adapter, whose unified-alerting
// webhook sends the same alerts with a few more fields.
package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Version is the webhook payload version this package reads (Alertmanager
// 0.x has sent "4" since 0.15).
const Version = "4"

// SourceSystem is the source system of the events (raw_events.source_system).
const SourceSystem = "alertmanager"

// ErrBadRequest is wrapped by Decode's errors about the body: the JSON is
// malformed or a field is missing, of the wrong type or has a value the
// payload does not allow. Its *FieldError names the field's path.
var ErrBadRequest = errors.New("bad request")

// ErrTooLarge is wrapped by Decode when one alert, as submitted, would be
// larger than an intake log message can carry (MaxEventBytes).
var ErrTooLarge = errors.New("alert too large")

// Notification is the webhook payload, as Alertmanager documents it
// (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
// Fields that later payload versions may add are ignored.
type Notification struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []json.RawMessage `json:"alerts"`
}

// Alert is one alert of a notification, validated: Status is firing or
// resolved, Labels is never nil, StartsAt is set and EndsAt is zero when
// the payload had none (Alertmanager sends 0001-01-01T00:00:00Z then).
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
}

// wireAlert is an alert as it is on the wire, before its times are parsed.
type wireAlert struct {
	Status       *string                    `json:"status"`
	Labels       map[string]json.RawMessage `json:"labels"`
	Annotations  map[string]json.RawMessage `json:"annotations"`
	StartsAt     *string                    `json:"startsAt"`
	EndsAt       string                     `json:"endsAt"`
	GeneratorURL string                     `json:"generatorURL"`
	Fingerprint  string                     `json:"fingerprint"`
}

// Record is what the adapter submits per alert (raw_events.data): the alert
// and the notification's fields that say where it came from.
type Record struct {
	Receiver    string `json:"receiver,omitempty"`
	GroupKey    string `json:"groupKey,omitempty"`
	ExternalURL string `json:"externalURL,omitempty"`
	Alert       Alert  `json:"alert"`
}

// Options configures Decode. The zero value is a safe default.
type Options struct {
	// MaxEventBytes bounds one record's encoding, in bytes (what an intake
	// log message can carry); a body with a larger alert fails as a whole
	// (ErrTooLarge). Zero or less means no limit.
	MaxEventBytes int
}

// Decode reads a notification body and returns one intake item per alert,
// in body order, or an error wrapping ErrBadRequest (with a *FieldError
// naming the field at fault, such as alerts[2].labels.severity) or
// ErrTooLarge; the body is taken or refused as a whole. The second result
// is the number of alerts the body held, when it could be read that far
// (for the metrics). It never panics, whatever the input.
func Decode(body []byte, opts Options) ([]intake.Item, int, error) {
	var n Notification
	if err := Unmarshal(body, "", &n); err != nil {
		return nil, 0, err
	}
	switch {
	case n.Version != Version:
		return nil, len(n.Alerts), Bad("version", "is %q: this endpoint reads Alertmanager's webhook payload version %q", Clip(n.Version, 20), Version)
	case n.Status != string(event.AlertFiring) && n.Status != string(event.AlertResolved):
		return nil, len(n.Alerts), Bad("status", "is %q: want firing or resolved", Clip(n.Status, 20))
	case len(n.Alerts) == 0:
		return nil, 0, Bad("alerts", "holds no alert")
	}
	for _, f := range []struct {
		path string
		v    string
	}{{"receiver", n.Receiver}, {"groupKey", n.GroupKey}, {"externalURL", n.ExternalURL}} {
		if err := CheckText(f.path, f.v); err != nil {
			return nil, len(n.Alerts), err
		}
	}
	items := make([]intake.Item, 0, len(n.Alerts))
	for i, raw := range n.Alerts {
		path := fmt.Sprintf("alerts[%d]", i)
		a, err := DecodeAlert(raw, path)
		if err != nil {
			return nil, len(n.Alerts), err
		}
		rec := Record{Receiver: n.Receiver, GroupKey: n.GroupKey, ExternalURL: n.ExternalURL, Alert: a}
		it, err := Item(path, rec, SourceSystem, rec.Alert.Labels, rec.Alert.Status, opts.MaxEventBytes)
		if err != nil {
			return nil, len(n.Alerts), err
		}
		items = append(items, it)
	}
	return items, len(items), nil
}

// DecodeAlert reads one alert object of a notification, path being its
// place in the body (alerts[i]), into the Alert it validates. Unknown
// fields are ignored.
func DecodeAlert(raw []byte, path string) (Alert, error) {
	var w wireAlert
	if err := Unmarshal(raw, path, &w); err != nil {
		return Alert{}, err
	}
	return w.alert(path)
}

// alert validates w.
func (w *wireAlert) alert(path string) (Alert, error) {
	a := Alert{GeneratorURL: w.GeneratorURL, Fingerprint: w.Fingerprint}
	switch {
	case w.Status == nil:
		return a, Bad(path+".status", "is required: firing or resolved")
	case *w.Status != string(event.AlertFiring) && *w.Status != string(event.AlertResolved):
		return a, Bad(path+".status", "is %q: want firing or resolved", Clip(*w.Status, 20))
	case w.Labels == nil:
		return a, Bad(path+".labels", "is required: an object of strings")
	case w.StartsAt == nil:
		return a, Bad(path+".startsAt", "is required: an RFC 3339 time")
	}
	a.Status = *w.Status
	var err error
	if a.Labels, err = StringMap(path+".labels", w.Labels); err != nil {
		return a, err
	}
	if a.Annotations, err = StringMap(path+".annotations", w.Annotations); err != nil {
		return a, err
	}
	if a.StartsAt, err = ParseTime(path+".startsAt", *w.StartsAt); err != nil {
		return a, err
	}
	if a.StartsAt.IsZero() {
		return a, Bad(path+".startsAt", "is the zero time: an alert has a start")
	}
	if a.EndsAt, err = ParseTime(path+".endsAt", w.EndsAt); err != nil {
		return a, err
	}
	if err := CheckText(path+".generatorURL", a.GeneratorURL); err != nil {
		return a, err
	}
	if err := CheckText(path+".fingerprint", a.Fingerprint); err != nil {
		return a, err
	}
	return a, nil
}

// Item encodes rec as the intake item of one alert: its severity (which
// picks the lane: info for a resolution) and host (the partition) are the
// ones the normalizer will give the event. path names the alert in errors.
func Item(path string, rec any, sourceSystem string, labels map[string]string, status string, maxBytes int) (intake.Item, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		// Every value was decoded from JSON and checked: only a bug
		// gets here.
		return intake.Item{}, fmt.Errorf("%w: %s: %w", ErrBadRequest, path, err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if maxBytes > 0 && len(data) > maxBytes {
		return intake.Item{}, fmt.Errorf("%w: %s is %d bytes, more than the %d bytes one event may take in the intake log; nothing of this request was accepted", ErrTooLarge, path, len(data), maxBytes)
	}
	sev := Severity(labels)
	if status == string(event.AlertResolved) {
		sev = event.Info
	}
	return intake.Item{SourceSystem: sourceSystem, Severity: sev, Data: data, Host: normalize.Host(Host(labels))}, nil
}
