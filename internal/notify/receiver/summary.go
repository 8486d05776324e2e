package receiver

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/notify"
)

// summary is what the human-facing receivers (Slack, Teams, email,
// PagerDuty) say about a group: counts, the distinct rules, hosts and
// severities, and the alerts most severe first.
type summary struct {
	n          notify.Notification
	rules      []string // distinct, in order of appearance
	hosts      []string
	severities []string // distinct, most severe first
	top        string   // the most severe
	alerts     []notify.Alert
}

func summarize(n notify.Notification) summary {
	s := summary{n: n, alerts: append([]notify.Alert(nil), n.Alerts...)}
	sort.SliceStable(s.alerts, func(i, j int) bool {
		return rank(s.alerts[i].Severity) > rank(s.alerts[j].Severity)
	})
	seenRule, seenHost, seenSev := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, a := range n.Alerts {
		if !seenRule[a.RuleName] {
			seenRule[a.RuleName] = true
			s.rules = append(s.rules, a.RuleName)
		}
		if !seenHost[a.SourceHost] {
			seenHost[a.SourceHost] = true
			s.hosts = append(s.hosts, a.SourceHost)
		}
		if !seenSev[a.Severity] {
			seenSev[a.Severity] = true
			s.severities = append(s.severities, a.Severity)
		}
	}
	sort.SliceStable(s.severities, func(i, j int) bool { return rank(s.severities[i]) > rank(s.severities[j]) })
	if len(s.severities) > 0 {
		s.top = s.severities[0]
	}
	return s
}

// rank orders reflex severities; an unknown one ranks below info.
func rank(sev string) int { return event.Severity(strings.ToLower(sev)).Rank() }

// count is "1 alert" or "n alerts".
func (s summary) count() string {
	if len(s.n.Alerts) == 1 {
		return "1 alert"
	}
	return fmt.Sprintf("%d alerts", len(s.n.Alerts))
}

// headline is one line: "[CRITICAL] 3 alerts firing: High CPU Alert on
// db-01, db-02". It is plain text (no markup), without control characters.
func (s summary) headline() string {
	h := fmt.Sprintf("%s firing", s.count())
	if s.top != "" {
		h = "[" + strings.ToUpper(oneLine(s.top, 16)) + "] " + h
	}
	if len(s.rules) > 0 {
		h += ": " + list(s.rules, 3, 60)
	}
	if len(s.hosts) > 0 {
		h += " on " + list(s.hosts, 3, 60)
	}
	return h
}

// line is one alert as plain text: "critical db-01: CPU 97% (High CPU
// Alert, event 123, 2024-12-01T10:00:00Z)".
func line(a notify.Alert) string {
	title := a.Title
	if title == "" {
		title = a.RuleName
	}
	return fmt.Sprintf("%s %s: %s (%s, event %d, %s)", oneLine(a.Severity, 16), oneLine(a.SourceHost, 80),
		oneLine(title, 200), oneLine(a.RuleName, 80), a.EventID, a.FiredAt.UTC().Format(time.RFC3339))
}

// list joins up to limit distinct values, each shortened to width, with
// "and N more" after.
func list(values []string, limit, width int) string {
	shown := values
	if len(shown) > limit {
		shown = shown[:limit]
	}
	parts := make([]string, len(shown))
	for i, v := range shown {
		parts[i] = oneLine(v, width)
		if parts[i] == "" {
			parts[i] = "(none)"
		}
	}
	s := strings.Join(parts, ", ")
	if more := len(values) - len(shown); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// oneLine makes an untrusted value fit one line of at most limit runes:
// control characters (newlines among them) become spaces, runs of space
// fold, and a long value ends in "…".
func oneLine(s string, limit int) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return truncate(strings.TrimSpace(b.String()), limit)
}

// truncate shortens s to at most limit runes, the last one "…".
func truncate(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}
