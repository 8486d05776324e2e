// Package grafana takes Grafana's alerting webhooks (POST
// /api/v1/events/grafana, a contact point of type webhook): the unified
// alerting payload of Grafana 8 and later, whose alerts are Alertmanager's
// with a few more fields, one event per alert; and the legacy (dashboard)
// alerting payload of Grafana 7 and earlier, one event per notification
// (a legacy notification is one rule's state change: its evalMatches are
// kept in the event, so that the ok that ends it resolves that one event).
//
// Decode tells the two apart (a body with "alerts" is unified, one with
// "ruleName", "ruleId" or "evalMatches" and no "alerts" is legacy),
// validates it strictly and turns it into intake items, each a Record;
// Normalizer maps a Record to the event. The HTTP endpoint is
// alertmanager.Handler with this package's Decode.
package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/alertmanager"
	"github.com/reflex-ops/reflex/internal/intake"
)

// Version is the version of the unified alerting payload.
const Version = "1"

// SourceSystem is the source system of the events.
const SourceSystem = "grafana"

// Notification is the unified alerting webhook payload as Grafana documents
// it (Configure the webhook notifier for Alerting). Title, State and
// Message are the deprecated group-level texts; unknown fields are ignored.
type Notification struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	OrgID             int64             `json:"orgId"`
	Alerts            []json.RawMessage `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           *string           `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Title             string            `json:"title"`
	State             string            `json:"state"`
	Message           string            `json:"message"`
}

// Alert is one alert of a unified notification: Alertmanager's alert and
// Grafana's fields. A value may be null (Grafana's NaN or no data).
type Alert struct {
	alertmanager.Alert
	Values       map[string]*float64 `json:"values,omitempty"`
	ValueString  string              `json:"valueString,omitempty"`
	SilenceURL   string              `json:"silenceURL,omitempty"`
	DashboardURL string              `json:"dashboardURL,omitempty"`
	PanelURL     string              `json:"panelURL,omitempty"`
	ImageURL     string              `json:"imageURL,omitempty"`
}

// grafanaFields are the fields Grafana adds to an alert.
type grafanaFields struct {
	Values       map[string]json.RawMessage `json:"values"`
	ValueString  string                     `json:"valueString"`
	SilenceURL   string                     `json:"silenceURL"`
	DashboardURL string                     `json:"dashboardURL"`
	PanelURL     string                     `json:"panelURL"`
	ImageURL     string                     `json:"imageURL"`
}

// floatMap decodes Grafana's values: numbers, or null, by name.
func floatMap(field string, raw map[string]json.RawMessage) (map[string]*float64, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	m := make(map[string]*float64, len(raw))
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		path := field + "." + alertmanager.Clip(k, 60)
		if err := alertmanager.CheckText(field, k); err != nil {
			return nil, err
		}
		b := bytes.TrimSpace(raw[k])
		if string(b) == "null" {
			m[k] = nil
			continue
		}
		if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
			return nil, alertmanager.Bad(path, "must be a number or null")
		}
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return nil, alertmanager.Bad(path, "%s is out of the range of a float64", alertmanager.Clip(string(b), 40))
		}
		m[k] = &f
	}
	return m, nil
}

// Legacy is the legacy alerting webhook payload (Grafana 7 and earlier; the
// legacy notifier). State is one of alerting, ok, no_data, pending and
// paused.
type Legacy struct {
	Title       string            `json:"title,omitempty"`
	RuleID      int64             `json:"ruleId"`
	RuleName    string            `json:"ruleName"`
	State       string            `json:"state"`
	EvalMatches []EvalMatch       `json:"evalMatches"`
	Message     string            `json:"message,omitempty"`
	RuleURL     string            `json:"ruleUrl,omitempty"`
	ImageURL    string            `json:"imageUrl,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	DashboardID int64             `json:"dashboardId,omitempty"`
	PanelID     int64             `json:"panelId,omitempty"`
	OrgID       int64             `json:"orgId,omitempty"`
}

// EvalMatch is a series that matched a legacy rule's condition; Value is
// null for a null point.
type EvalMatch struct {
	Value  *float64          `json:"value"`
	Metric string            `json:"metric"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// The legacy states.
const (
	StateAlerting = "alerting"
	StateOK       = "ok"
	StateNoData   = "no_data"
	StatePending  = "pending"
	StatePaused   = "paused"
)

// Record is what the adapter submits (raw_events.data): one alert of a
// unified notification with the notification's fields that say where it
// came from, or one legacy notification.
type Record struct {
	Receiver    string  `json:"receiver,omitempty"`
	GroupKey    string  `json:"groupKey,omitempty"`
	ExternalURL string  `json:"externalURL,omitempty"`
	OrgID       int64   `json:"orgId,omitempty"`
	Alert       *Alert  `json:"alert,omitempty"`
	Legacy      *Legacy `json:"legacy,omitempty"`
}

// probe holds the fields that tell the payloads apart.
type probe struct {
	Alerts      json.RawMessage `json:"alerts"`
	RuleName    json.RawMessage `json:"ruleName"`
	RuleID      json.RawMessage `json:"ruleId"`
	EvalMatches json.RawMessage `json:"evalMatches"`
}

// Decode reads a webhook body, unified or legacy, and returns its intake
// items (one per unified alert, one for a legacy notification), or an
// error wrapping alertmanager.ErrBadRequest (with a *alertmanager.FieldError
// naming the field's path) or alertmanager.ErrTooLarge. The second result
// is the number of alerts the body held, when known. maxEventBytes bounds
// one record (0: no limit). It never panics.
func Decode(body []byte, maxEventBytes int) ([]intake.Item, int, error) {
	var p probe
	if err := alertmanager.Unmarshal(body, "", &p); err != nil {
		return nil, 0, err
	}
	switch {
	case p.Alerts != nil:
		return decodeUnified(body, maxEventBytes)
	case p.RuleName != nil || p.RuleID != nil || p.EvalMatches != nil:
		return decodeLegacy(body, maxEventBytes)
	}
	return nil, 0, alertmanager.Bad("alerts", "is required (unified alerting), or ruleName and state (legacy alerting)")
}

func decodeUnified(body []byte, maxBytes int) ([]intake.Item, int, error) {
	var n Notification
	if err := alertmanager.Unmarshal(body, "", &n); err != nil {
		return nil, 0, err
	}
	switch {
	case n.Version != nil && *n.Version != Version:
		return nil, len(n.Alerts), alertmanager.Bad("version", "is %q: this endpoint reads Grafana's webhook payload version %q (and the legacy payload)", alertmanager.Clip(*n.Version, 20), Version)
	case n.Status != string(event.AlertFiring) && n.Status != string(event.AlertResolved):
		return nil, len(n.Alerts), alertmanager.Bad("status", "is %q: want firing or resolved", alertmanager.Clip(n.Status, 20))
	case len(n.Alerts) == 0:
		return nil, 0, alertmanager.Bad("alerts", "holds no alert")
	}
	for _, f := range []struct{ path, v string }{{"receiver", n.Receiver}, {"groupKey", n.GroupKey}, {"externalURL", n.ExternalURL}} {
		if err := alertmanager.CheckText(f.path, f.v); err != nil {
			return nil, len(n.Alerts), err
		}
	}
	items := make([]intake.Item, 0, len(n.Alerts))
	for i, raw := range n.Alerts {
		path := fmt.Sprintf("alerts[%d]", i)
		am, err := alertmanager.DecodeAlert(raw, path)
		if err != nil {
			return nil, len(n.Alerts), err
		}
		var g grafanaFields
		if err := alertmanager.Unmarshal(raw, path, &g); err != nil {
			return nil, len(n.Alerts), err
		}
		values, err := floatMap(path+".values", g.Values)
		if err != nil {
			return nil, len(n.Alerts), err
		}
		a := &Alert{Alert: am, Values: values, ValueString: g.ValueString, SilenceURL: g.SilenceURL,
			DashboardURL: g.DashboardURL, PanelURL: g.PanelURL, ImageURL: g.ImageURL}
		if err := a.check(path); err != nil {
			return nil, len(n.Alerts), err
		}
		rec := Record{Receiver: n.Receiver, GroupKey: n.GroupKey, ExternalURL: n.ExternalURL, OrgID: n.OrgID, Alert: a}
		it, err := alertmanager.Item(path, rec, SourceSystem, am.Labels, am.Status, maxBytes)
		if err != nil {
			return nil, len(n.Alerts), err
		}
		items = append(items, it)
	}
	return items, len(items), nil
}

// check refuses what Grafana's fields cannot store.
func (a *Alert) check(path string) error {
	for _, f := range []struct{ name, v string }{{"valueString", a.ValueString}, {"silenceURL", a.SilenceURL},
		{"dashboardURL", a.DashboardURL}, {"panelURL", a.PanelURL}, {"imageURL", a.ImageURL}} {
		if err := alertmanager.CheckText(path+"."+f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// wireLegacy is a legacy payload on the wire: State is required.
type wireLegacy struct {
	Legacy
	State *string `json:"state"`
}

func decodeLegacy(body []byte, maxBytes int) ([]intake.Item, int, error) {
	var w wireLegacy
	if err := alertmanager.Unmarshal(body, "", &w); err != nil {
		return nil, 1, err
	}
	l := w.Legacy
	if w.State == nil {
		return nil, 1, alertmanager.Bad("state", "is required: alerting, ok, no_data, pending or paused")
	}
	l.State = *w.State
	switch l.State {
	case StateAlerting, StateOK, StateNoData, StatePending, StatePaused:
	default:
		return nil, 1, alertmanager.Bad("state", "is %q: want alerting, ok, no_data, pending or paused", alertmanager.Clip(l.State, 20))
	}
	if strings.TrimSpace(l.RuleName) == "" && l.RuleID == 0 {
		return nil, 1, alertmanager.Bad("ruleName", "is required when ruleId is 0 or absent: it is the alert's identity")
	}
	for _, f := range []struct{ name, v string }{{"title", l.Title}, {"ruleName", l.RuleName}, {"message", l.Message},
		{"ruleUrl", l.RuleURL}, {"imageUrl", l.ImageURL}} {
		if err := alertmanager.CheckText(f.name, f.v); err != nil {
			return nil, 1, err
		}
	}
	if err := alertmanager.CheckMap("tags", l.Tags); err != nil {
		return nil, 1, err
	}
	for i, m := range l.EvalMatches {
		path := "evalMatches[" + strconv.Itoa(i) + "]"
		if err := alertmanager.CheckText(path+".metric", m.Metric); err != nil {
			return nil, 1, err
		}
		if err := alertmanager.CheckMap(path+".tags", m.Tags); err != nil {
			return nil, 1, err
		}
	}
	it, err := alertmanager.Item("the notification", Record{Legacy: &l}, SourceSystem, legacyLabels(&l), legacyStatus(l.State), maxBytes)
	if err != nil {
		return nil, 1, err
	}
	it.Severity = legacySeverity(&l)
	return []intake.Item{it}, 1, nil
}
