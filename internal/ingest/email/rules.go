package email

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Fields a rule matches.
const (
	FieldSubject = "subject"
	FieldBody    = "body"
)

// Named groups a rule's regex may capture (see Rule).
const (
	GroupSeverity  = "severity"
	GroupState     = "state"
	GroupStatus    = "status"
	GroupHost      = "host"
	GroupService   = "service"
	GroupEventType = "event_type"
)

var groups = []string{GroupSeverity, GroupState, GroupStatus, GroupHost, GroupService, GroupEventType}

// MaxRuleText bounds the text of the body the rules read, in bytes: alert
// mails say what matters first, and the rules' cost is linear in it.
const MaxRuleText = 16 << 10

// Bounds of a rules file.
const (
	MaxRules     = 200
	maxRegexLen  = 2000
	maxRuleBytes = 1 << 20
)

// ErrRules is wrapped by the errors of a rules file that cannot be used.
var ErrRules = errors.New("email: rules")

// Rule extracts an event's severity, host, service, event type and alert
// status from a mail's subject or body. When Regex matches (its first
// match is used), each of those is taken from the named group of its name
// if it captured something, or else from the fixed value of the rule:
//
//	severity    a severity word (critical, warning, error, P1 ... see
//	            event.ParseSeverity; also Zabbix's and Nagios's words)
//	state       a Nagios-style state (CRITICAL, WARNING, UNKNOWN, DOWN,
//	            UNREACHABLE, OK, UP ...): both the severity and the alert
//	            status (OK and UP resolve, the others fire)
//	status      the alert status: PROBLEM or FIRING fire; RECOVERY,
//	            RESOLVED, OK, UP and CLEARED resolve; other words say nothing
//	host        the event's host
//	service     the event's service
//	event_type  the event's type (lowercased, spaces to underscores)
//
// A value that does not map (an unknown severity word, an empty capture)
// sets nothing, and a later rule may set it.
type Rule struct {
	// Name names the rule in event_data.email.rules (default: rule-N, its
	// place in the file).
	Name string `yaml:"name"`
	// Field is what Regex is matched against: subject or body.
	Field string `yaml:"field"`
	// Regex is an RE2 regular expression (Go's regexp syntax).
	Regex string `yaml:"regex"`
	// Fixed values, used when the regex matches and the group of the same
	// name did not capture.
	Severity  string `yaml:"severity"`
	Status    string `yaml:"status"`
	Host      string `yaml:"host"`
	Service   string `yaml:"service"`
	EventType string `yaml:"event_type"`

	re *regexp.Regexp
}

// RulesFile is the mapping form of a rules file: its rules, and whether
// the built-in rules follow them. A rules file may also be a plain list of
// rules, which the built-in rules follow.
type RulesFile struct {
	Builtin *bool  `yaml:"builtin"`
	Rules   []Rule `yaml:"rules"`
}

// Rules is a compiled list of rules, applied in order: for each of
// severity, host, service, event type and status, the first rule that
// sets it wins. It is safe for concurrent use.
type Rules struct {
	list []*Rule
}

// DefaultRules are the built-in rules: the subject markers of Nagios,
// Icinga, Zabbix and of most mail-sending monitors, then the "Host: ...",
// "Service: ...", "State: ...", "Severity: ..." and "Notification Type:
// ..." lines of their bodies.
func DefaultRules() *Rules {
	r, err := compile(builtinRules())
	if err != nil {
		panic(err) // the built-in rules are tested
	}
	return r
}

func builtinRules() []Rule {
	const state = `CRITICAL|WARNING|UNKNOWN|DOWN|UNREACHABLE|OK|UP`
	return []Rule{
		// ** PROBLEM Service Alert: web-01/HTTP is CRITICAL ** (Nagios, Icinga 1)
		{Name: "nagios-service", Field: FieldSubject, EventType: "service_alert",
			Regex: `^\*\*\s*(?P<status>[A-Z]+)\s+Service Alert:\s*(?P<host>[^/\s]+)/(?P<service>.+?)\s+is\s+(?P<severity>[A-Z]+)\s*\*\*`},
		// ** RECOVERY Host Alert: web-01 is UP **
		{Name: "nagios-host", Field: FieldSubject, EventType: "host_alert",
			Regex: `^\*\*\s*(?P<status>[A-Z]+)\s+Host Alert:\s*(?P<host>\S+)\s+is\s+(?P<severity>[A-Z]+)\s*\*\*`},
		// [PROBLEM] ..., [RECOVERY] ..., [FIRING:2] ... (Icinga 2, Alertmanager)
		{Name: "bracket-status", Field: FieldSubject,
			Regex: `(?i)\[(?P<status>problem|recovery|resolved|firing|ok)(?::\d+)?\]`},
		// [CRITICAL] ..., [WARNING] ..., [OK] is above
		{Name: "bracket-state", Field: FieldSubject,
			Regex: `(?i)\[(?P<state>critical|crit|warning|warn|unknown|down|unreachable)\]`},
		// [ERROR] ..., [P1] ..., [High] ...
		{Name: "bracket-severity", Field: FieldSubject,
			Regex: `(?i)\[(?P<severity>disaster|fatal|emergency|emerg|alert|error|err|high|major|average|medium|minor|low|notice|info|information|p[1-5]|sev-?[1-5])\]`},
		// Problem: ..., Resolved in 5m 3s: ..., PROBLEM - ..., OK: ... (Zabbix and others)
		{Name: "leading-status", Field: FieldSubject,
			Regex: `^\s*(?P<status>PROBLEM|RECOVERY|RESOLVED|OK|Problem|Recovery|Resolved)(?:\s+in\s+[^:]{1,40})?\s*[:!-]\s*`},
		// Host web-01 is DOWN
		{Name: "host-is-state", Field: FieldSubject, EventType: "host_alert",
			Regex: `\bHost\s+(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*)\s+is\s+(?P<state>DOWN|UP|UNREACHABLE)\b`},
		// ... is CRITICAL!
		{Name: "is-state", Field: FieldSubject,
			Regex: `\bis\s+(?P<state>` + state + `)\b!?`},
		{Name: "body-host-is-state", Field: FieldBody, EventType: "host_alert",
			Regex: `\bHost\s+(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*)\s+is\s+(?P<state>DOWN|UP|UNREACHABLE)\b`},
		{Name: "body-notification-type", Field: FieldBody,
			Regex: `(?m)^[ \t]*Notification Type[ \t]*:[ \t]*(?P<status>[A-Za-z]+)`},
		{Name: "body-host", Field: FieldBody,
			Regex: `(?mi)^[ \t]*(?:host|hostname|host name)[ \t]*:[ \t]*(?P<host>[A-Za-z0-9][A-Za-z0-9._:-]*)`},
		{Name: "body-service", Field: FieldBody,
			Regex: `(?mi)^[ \t]*service[ \t]*:[ \t]*(?P<service>\S[^\r\n]*?)[ \t]*$`},
		{Name: "body-state", Field: FieldBody,
			Regex: `(?mi)^[ \t]*(?:state|status)[ \t]*:[ \t]*(?P<state>` + state + `)\b`},
		{Name: "body-severity", Field: FieldBody,
			Regex: `(?mi)^[ \t]*(?:severity|priority|trigger severity)[ \t]*:[ \t]*(?P<severity>[A-Za-z0-9-]+)`},
	}
}

// LoadRules reads a rules file (see ParseRules). An empty path is the
// built-in rules.
func LoadRules(path string) (*Rules, error) {
	if path == "" {
		return DefaultRules(), nil
	}
	f, err := os.Open(path) //nolint:gosec // the operator's own configuration file
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRules, err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxRuleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrRules, path, err)
	}
	if len(b) > maxRuleBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrRules, path, maxRuleBytes)
	}
	r, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseRules parses a rules file: a YAML list of rules, or a mapping with
// "rules" (the list) and "builtin" (false leaves the built-in rules out;
// default true). The file's rules come first; the built-in rules follow.
// Unknown keys are errors.
func ParseRules(b []byte) (*Rules, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRules, err)
	}
	var file RulesFile
	if len(doc.Content) > 0 {
		dec := func(v any) error {
			d := yaml.NewDecoder(bytes.NewReader(b))
			d.KnownFields(true)
			return d.Decode(v)
		}
		var err error
		if doc.Content[0].Kind == yaml.SequenceNode {
			err = dec(&file.Rules)
		} else {
			err = dec(&file)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRules, err)
		}
	}
	if len(file.Rules) > MaxRules {
		return nil, fmt.Errorf("%w: %d rules, at most %d", ErrRules, len(file.Rules), MaxRules)
	}
	for i := range file.Rules {
		if file.Rules[i].Name == "" {
			file.Rules[i].Name = "rule-" + strconv.Itoa(i+1)
		}
	}
	list := file.Rules
	if file.Builtin == nil || *file.Builtin {
		list = append(list, builtinRules()...)
	}
	return compile(list)
}

func compile(list []Rule) (*Rules, error) {
	out := &Rules{list: make([]*Rule, 0, len(list))}
	for i := range list {
		r := list[i]
		if err := r.compile(); err != nil {
			return nil, fmt.Errorf("%w: rule %d (%s): %w", ErrRules, i+1, r.Name, err)
		}
		out.list = append(out.list, &r)
	}
	return out, nil
}

func (r *Rule) compile() error {
	if r.Field != FieldSubject && r.Field != FieldBody {
		return fmt.Errorf("field %q: want subject or body", r.Field)
	}
	if r.Regex == "" {
		return errors.New("regex is empty")
	}
	if len(r.Regex) > maxRegexLen {
		return fmt.Errorf("regex longer than %d bytes", maxRegexLen)
	}
	re, err := regexp.Compile(r.Regex)
	if err != nil {
		return fmt.Errorf("regex: %w", err)
	}
	sets := false
	for _, name := range re.SubexpNames()[1:] {
		if name == "" {
			continue
		}
		if !slices.Contains(groups, name) {
			return fmt.Errorf("regex group %q: want one of %s", name, strings.Join(groups, ", "))
		}
		sets = true
	}
	if r.Severity != "" {
		if _, ok := severityOf(r.Severity); !ok {
			return fmt.Errorf("severity %q: not a severity", r.Severity)
		}
		sets = true
	}
	if r.Status != "" {
		if st := statusOf(r.Status); st != event.AlertFiring && st != event.AlertResolved {
			return fmt.Errorf("status %q: want firing or resolved", r.Status)
		}
		sets = true
	}
	if r.Host != "" || r.Service != "" || r.EventType != "" {
		sets = true
	}
	if !sets {
		return errors.New("sets nothing: give it a named group or a fixed value")
	}
	r.re = re
	return nil
}

// Extracted is what the rules found in a mail (event_data.email's source
// of severity, host, service, event type and alert).
type Extracted struct {
	Severity  event.Severity    `json:"severity,omitempty"`
	Host      string            `json:"host,omitempty"`
	Service   string            `json:"service,omitempty"`
	EventType string            `json:"event_type,omitempty"`
	Status    event.AlertStatus `json:"status,omitempty"`
	// AlertKey is the alert's identity when Status is set (see Extract).
	AlertKey string `json:"alert_key,omitempty"`
	// Rules names the rules that matched, in order.
	Rules []string `json:"rules,omitempty"`
}

// span is a part of the subject a status rule matched.
type span struct{ start, end int }

// Extract applies the rules to a mail's subject and the first MaxRuleText
// bytes of its body; xPriority is its
// X-Priority header, the severity when no rule gives one (1 high, 2
// medium, 4 and 5 low). The severity of a resolution is info; a firing
// alert whose severity nothing gave is medium, any other mail info.
//
// When the status is known, AlertKey is host/service when both are known,
// else the subject without what the status rules matched in it (the
// markers: "[CRITICAL]", "Problem:", "is DOWN" ...), prefixed with host/
// when the host is known, else the host; with none of these there is no
// alert (Status is cleared).
func (rs *Rules) Extract(subject, body, xPriority string) Extracted {
	if len(body) > MaxRuleText {
		body = cutUTF8(body, MaxRuleText)
	}
	var (
		x       Extracted
		strip   []span
		sevSet  bool
		statSet bool
	)
	for _, r := range rs.list {
		text := subject
		if r.Field == FieldBody {
			text = body
		}
		m := r.re.FindStringSubmatchIndex(text)
		if m == nil {
			continue
		}
		x.Rules = append(x.Rules, r.Name)
		get := func(group, fixed string) string {
			if i := r.re.SubexpIndex(group); i > 0 && m[2*i] >= 0 {
				if v := strings.TrimSpace(text[m[2*i]:m[2*i+1]]); v != "" {
					return v
				}
			}
			return fixed
		}
		var sev event.Severity
		var st event.AlertStatus
		if v := get(GroupState, ""); v != "" {
			if s, ok := severityOf(v); ok {
				sev = s
			}
			st = stateStatus(v)
		}
		if v := get(GroupSeverity, r.Severity); v != "" {
			if s, ok := severityOf(v); ok {
				sev = s
			}
		}
		if v := get(GroupStatus, r.Status); v != "" {
			st = statusOf(v)
		}
		if sev != "" && !sevSet {
			x.Severity, sevSet = sev, true
		}
		if st != "" {
			if !statSet {
				x.Status, statSet = st, true
			}
			if r.Field == FieldSubject {
				strip = append(strip, span{m[0], m[1]})
			}
		}
		if v := get(GroupHost, r.Host); v != "" && x.Host == "" {
			x.Host = normalize.Host(v)
		}
		if v := get(GroupService, r.Service); v != "" && x.Service == "" {
			x.Service = normalize.Truncate(v, normalize.MaxServiceLen)
		}
		if v := get(GroupEventType, r.EventType); v != "" && x.EventType == "" {
			x.EventType = eventType(v)
		}
	}
	switch {
	case x.Status == event.AlertResolved:
		x.Severity = event.Info
	case sevSet:
	case x.Status == event.AlertFiring:
		x.Severity = event.Medium
	default:
		x.Severity = priority(xPriority)
	}
	if x.Status != "" {
		x.AlertKey = alertKey(x.Host, x.Service, stripSpans(subject, strip))
		if x.AlertKey == "" {
			x.Status = ""
		}
	}
	return x
}

func alertKey(host, service, subject string) string {
	switch {
	case host != "" && service != "":
		return event.AlertKey(host, service)
	case subject != "" && host != "":
		return event.AlertKey(host, subject)
	case subject != "":
		return event.AlertKey(subject)
	}
	return host
}

// stripSpans removes the spans from s, trims what is left of markers and
// space at its ends and collapses its runs of space.
func stripSpans(s string, spans []span) string {
	if len(spans) > 0 {
		keep := make([]bool, len(s))
		for i := range keep {
			keep[i] = true
		}
		for _, sp := range spans {
			for i := sp.start; i < sp.end; i++ {
				keep[i] = false
			}
		}
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if keep[i] {
				b.WriteByte(s[i])
			} else if i == 0 || keep[i-1] {
				b.WriteByte(' ')
			}
		}
		s = b.String()
	}
	s = strings.Join(strings.Fields(s), " ")
	return strings.Trim(s, " *:!-–—")
}

// severityOf maps a severity or state word to a severity.
func severityOf(v string) (event.Severity, bool) {
	w := strings.ToLower(strings.TrimSpace(v))
	switch w {
	case "problem", "firing":
		return "", false
	case "unreachable":
		return event.High, true
	case "not classified", "recovery", "recovered":
		return event.Info, true
	}
	s, err := event.ParseSeverity(w)
	return s, err == nil
}

// statusOf maps a status word to an alert status ("" when it says none).
func statusOf(v string) event.AlertStatus {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "problem", "firing":
		return event.AlertFiring
	case "recovery", "recovered", "resolved", "ok", "up", "clear", "cleared":
		return event.AlertResolved
	}
	return ""
}

// stateStatus maps a state word to an alert status: the states of a
// recovery resolve, every other state fires.
func stateStatus(v string) event.AlertStatus {
	if st := statusOf(v); st != "" {
		return st
	}
	if s, ok := severityOf(v); ok && s != event.Info {
		return event.AlertFiring
	}
	return ""
}

// priority maps an X-Priority header ("1", "1 (Highest)") to a severity.
func priority(h string) event.Severity {
	h = strings.TrimSpace(h)
	if h == "" {
		return event.Info
	}
	switch h[0] {
	case '1':
		return event.High
	case '2':
		return event.Medium
	case '4', '5':
		return event.Low
	}
	return event.Info
}

// eventType lowercases v and turns its runs of space into underscores.
func eventType(v string) string {
	return normalize.Truncate(strings.Join(strings.Fields(strings.ToLower(v)), "_"), normalize.MaxEventTypeLen)
}
