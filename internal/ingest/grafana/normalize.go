package grafana

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/alertmanager"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// DefaultLegacyEventType is the event type of a legacy notification
// without a rule name.
const DefaultLegacyEventType = "grafana_alert"

// Keys of event_data beside alertmanager's.
const (
	DataValues       = "values"
	DataValueString  = "value_string"
	DataSilenceURL   = "silence_url"
	DataDashboardURL = "dashboard_url"
	DataPanelURL     = "panel_url"
	DataImageURL     = "image_url"
	DataOrgID        = "org_id"

	DataRuleID      = "rule_id"
	DataRuleName    = "rule_name"
	DataRuleURL     = "rule_url"
	DataState       = "state"
	DataEvalMatches = "eval_matches"
	DataTags        = "tags"
	DataDashboardID = "dashboard_id"
	DataPanelID     = "panel_id"
	DataMessage     = "message"
)

// Normalizer is the normalizer of event.SourceGrafana. A unified alert maps
// as Alertmanager's does (see alertmanager.Normalizer), with values,
// value_string, silence_url, dashboard_url, panel_url, image_url and
// org_id added to event_data. A legacy notification maps to:
//
//	event_type      ruleName, default "grafana_alert"
//	severity        the rule's severity tag (see alertmanager.Severity) for alerting and no_data;
//	                info for ok, pending and paused
//	source_system   "grafana"
//	source_host     the rule's instance, host, hostname, node or pod tag, or else the one
//	                such tag all evalMatches share (see alertmanager.Host)
//	source_service  the service or job tag, likewise
//	title           title ("[Alerting] Panel Title alert"), or else ruleName
//	description     message
//	occurred_at     the receipt time (the payload has no time)
//	event_data      rule_id, rule_name, rule_url, state, eval_matches, tags, image_url,
//	                dashboard_id, panel_id, org_id, alert (for alerting, no_data and ok)
//
// alerting and no_data fire, ok resolves, under the key
// grafana-legacy/org=O/rule=ID (or, for a rule id 0, org=O/dashboard=D/
// panel=P/name=NAME); pending and paused are events without an alert.
type Normalizer struct{}

var _ normalize.Normalizer = Normalizer{}

// Normalize decodes raw.Data as a Record and maps it.
func (Normalizer) Normalize(raw *event.Raw) (normalize.Draft, error) {
	var rec Record
	if err := json.Unmarshal(raw.Data, &rec); err != nil {
		return normalize.Draft{}, fmt.Errorf("grafana record: %w", err)
	}
	switch {
	case rec.Alert != nil:
		return unifiedDraft(&rec), nil
	case rec.Legacy != nil:
		return legacyDraft(rec.Legacy), nil
	}
	return normalize.Draft{}, errors.New("grafana record: neither alert nor legacy")
}

func unifiedDraft(rec *Record) normalize.Draft {
	a := rec.Alert
	d := alertmanager.AlertDraft(&a.Alert, SourceSystem)
	e := d.Event
	if len(a.Values) > 0 {
		e.SetData(DataValues, a.Values)
	}
	for _, f := range []struct{ key, v string }{
		{DataValueString, a.ValueString}, {DataSilenceURL, a.SilenceURL}, {DataDashboardURL, a.DashboardURL},
		{DataPanelURL, a.PanelURL}, {DataImageURL, a.ImageURL},
		{alertmanager.DataReceiver, rec.Receiver}, {alertmanager.DataGroupKey, rec.GroupKey},
		{alertmanager.DataExternalURL, rec.ExternalURL},
	} {
		if f.v != "" {
			e.SetData(f.key, f.v)
		}
	}
	if rec.OrgID != 0 {
		e.SetData(DataOrgID, rec.OrgID)
	}
	return d
}

func legacyDraft(l *Legacy) normalize.Draft {
	labels := legacyLabels(l)
	e := &event.Event{
		EventType:     strings.TrimSpace(l.RuleName),
		Severity:      legacySeverity(l),
		SourceSystem:  SourceSystem,
		SourceHost:    alertmanager.Host(labels),
		SourceService: alertmanager.Service(labels),
		Title:         l.Title,
		Description:   l.Message,
	}
	if e.EventType == "" {
		e.EventType = DefaultLegacyEventType
	}
	if strings.TrimSpace(e.Title) == "" {
		e.Title = l.RuleName
	}
	if status := legacyStatus(l.State); status != "" {
		e.Alert = &event.Alert{Key: legacyKey(l), Status: event.AlertStatus(status)}
	}
	e.SetData(DataRuleID, l.RuleID)
	if l.RuleName != "" {
		e.SetData(DataRuleName, l.RuleName)
	}
	e.SetData(DataState, l.State)
	if len(l.EvalMatches) > 0 {
		e.SetData(DataEvalMatches, l.EvalMatches)
	}
	if len(l.Tags) > 0 {
		e.SetData(DataTags, l.Tags)
	}
	for _, f := range []struct{ key, v string }{{DataRuleURL, l.RuleURL}, {DataImageURL, l.ImageURL}} {
		if f.v != "" {
			e.SetData(f.key, f.v)
		}
	}
	for _, f := range []struct {
		key string
		v   int64
	}{{DataDashboardID, l.DashboardID}, {DataPanelID, l.PanelID}, {DataOrgID, l.OrgID}} {
		if f.v != 0 {
			e.SetData(f.key, f.v)
		}
	}
	return normalize.Draft{Event: e}
}

// legacyStatus is the alert status of a legacy state: alerting and no_data
// fire, ok resolves, pending and paused are no alert ("").
func legacyStatus(state string) string {
	switch state {
	case StateAlerting, StateNoData:
		return string(event.AlertFiring)
	case StateOK:
		return string(event.AlertResolved)
	}
	return ""
}

// legacySeverity is the severity of a legacy notification.
func legacySeverity(l *Legacy) event.Severity {
	if legacyStatus(l.State) != string(event.AlertFiring) {
		return event.Info
	}
	return alertmanager.Severity(l.Tags)
}

// legacyKey is the Alert.Key of a legacy rule: its id within its
// organization, or, for rule id 0 (Grafana's test notification), its
// dashboard, panel and name.
func legacyKey(l *Legacy) string {
	org := "org=" + strconv.FormatInt(l.OrgID, 10)
	if l.RuleID != 0 {
		return event.AlertKey("grafana-legacy", org, "rule="+strconv.FormatInt(l.RuleID, 10))
	}
	return event.AlertKey("grafana-legacy", org, "dashboard="+strconv.FormatInt(l.DashboardID, 10),
		"panel="+strconv.FormatInt(l.PanelID, 10), "name="+l.RuleName)
}

// legacyLabels are the labels a legacy notification's host and service come
// from: the rule's tags, and the host and service tags every evalMatch
// agrees on.
func legacyLabels(l *Legacy) map[string]string {
	labels := make(map[string]string, len(l.Tags)+2)
	for _, k := range []string{"instance", "host", "hostname", "node", "pod", "service", "job"} {
		if v, ok := l.Tags[k]; ok {
			labels[k] = v
			continue
		}
		if v, ok := shared(l.EvalMatches, k); ok {
			labels[k] = v
		}
	}
	for k, v := range l.Tags {
		if _, ok := labels[k]; !ok {
			labels[k] = v
		}
	}
	return labels
}

// shared returns the value of tag k when every evalMatch has the same one.
func shared(ms []EvalMatch, k string) (string, bool) {
	var v string
	for i, m := range ms {
		mv, ok := m.Tags[k]
		if !ok || (i > 0 && mv != v) {
			return "", false
		}
		v = mv
	}
	return v, len(ms) > 0
}
