package event

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Severity is reflex's five-level severity scale.
type Severity string

// The severities, from most to least urgent.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// Severities lists every severity from most to least urgent.
var Severities = []Severity{Critical, High, Medium, Low, Info}

// Rank orders severities: critical is 4, info 0, an unknown value -1.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	case Info:
		return 0
	}
	return -1
}

// Valid reports whether s is one of the five severities.
func (s Severity) Valid() bool { return s.Rank() >= 0 }

// Urgent reports whether s travels in the critical lane (critical, high).
func (s Severity) Urgent() bool { return s.Rank() >= High.Rank() }

// SeverityFromRank is the inverse of Rank, clamped to [info, critical].
func SeverityFromRank(r int) Severity {
	switch {
	case r >= 4:
		return Critical
	case r == 3:
		return High
	case r == 2:
		return Medium
	case r == 1:
		return Low
	}
	return Info
}

// words maps the severity vocabularies of common sources to reflex's scale:
// syslog keywords, Prometheus/Alertmanager, PagerDuty, Opsgenie priorities,
// Nagios states, Windows event levels and log levels.
var words = map[string]Severity{
	"critical": Critical, "crit": Critical, "fatal": Critical, "emergency": Critical,
	"emerg": Critical, "alert": Critical, "panic": Critical, "disaster": Critical,
	"p1": Critical, "sev1": Critical, "sev-1": Critical, "down": Critical,
	"high": High, "error": High, "err": High, "major": High, "severe": High,
	"p2": High, "sev2": High, "sev-2": High, "failure": High, "failed": High,
	"medium": Medium, "warning": Medium, "warn": Medium, "moderate": Medium,
	"average": Medium, "p3": Medium, "sev3": Medium, "sev-3": Medium, "minor": Medium,
	"degraded": Medium,
	"low":      Low, "notice": Low, "p4": Low, "sev4": Low, "sev-4": Low, "unknown": Low,
	"info": Info, "informational": Info, "information": Info, "debug": Info,
	"trace": Info, "ok": Info, "resolved": Info, "clear": Info, "cleared": Info,
	"normal": Info, "p5": Info, "sev5": Info, "sev-5": Info, "none": Info, "up": Info,
}

// syslogLevels maps RFC 5424 numeric severities 0 (emergency) to 7 (debug).
var syslogLevels = [8]Severity{Critical, Critical, Critical, High, Medium, Low, Info, Info}

// ErrUnknownSeverity is wrapped by ParseSeverity for a value it cannot map.
var ErrUnknownSeverity = fmt.Errorf("unknown severity")

// ParseSeverity maps a source's severity word or number to reflex's scale.
// Words are matched without regard to case or surrounding space; integers 0
// to 7 are read as syslog severities (0 emergency ... 7 debug).
func ParseSeverity(s string) (Severity, error) {
	w := strings.ToLower(strings.TrimSpace(s))
	if sev, ok := words[w]; ok {
		return sev, nil
	}
	if len(w) == 1 && w[0] >= '0' && w[0] < '0'+byte(len(syslogLevels)) {
		return syslogLevels[w[0]-'0'], nil
	}
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return "", fmt.Errorf("%w %q: want one of critical, high, medium, low, info, a common synonym (error, warning, fatal, P1-P5) or a syslog level 0-7", ErrUnknownSeverity, s)
}

// ParseSeverityJSON maps a JSON severity value, a string or a number, as
// ParseSeverity does.
func ParseSeverityJSON(raw json.RawMessage) (Severity, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return ParseSeverity(s)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return ParseSeverity(n.String())
	}
	return "", fmt.Errorf("%w: must be a string or a number", ErrUnknownSeverity)
}
