package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// situation is what the factors read: the input with the request's
// context applied and the target (the root cause, or the event) chosen.
type situation struct {
	in     Input
	ctx    contextual.Context // with the request's context applied
	given  given
	target event.Event
	onRoot bool
	host   string
	// severity is the higher rank of the event's and the root's (an
	// unknown severity counts as info), priority and anomaly likewise
	// (anomaly -1: none).
	severity  int
	priority  int
	anomaly   float64
	threshold float64
}

func newSituation(in Input, g given, threshold float64) *situation {
	s := &situation{in: in, ctx: in.Context, given: g, target: in.Event, threshold: threshold}
	if in.Root != nil && in.Root.ID != in.Event.ID {
		s.target, s.onRoot = *in.Root, true
	}
	s.host = s.target.SourceHost
	if s.host == "" {
		s.host = in.Context.Host
	}
	s.severity = max(in.Event.Severity.Rank(), 0)
	s.priority = in.Event.Priority
	s.anomaly = anomalyScore(in.Event)
	if s.onRoot {
		s.severity = max(s.severity, s.target.Severity.Rank())
		s.priority = max(s.priority, s.target.Priority)
		s.anomaly = max(s.anomaly, anomalyScore(s.target))
	}
	s.priority = min(max(s.priority, 0), 100)
	if g.businessHours != nil {
		s.ctx.BusinessHours.Configured = true
		s.ctx.BusinessHours.Inside = *g.businessHours
	}
	if g.maintenance != nil {
		s.ctx.Maintenance.Active = *g.maintenance
	}
	return s
}

// anomalous reports whether the event or its host shows an anomaly.
func (s *situation) anomalous() bool {
	return s.anomaly >= s.threshold || s.ctx.EventRate.Anomalous
}

// anomalyScore is the event's anomaly score (event_data.metadata.
// anomaly_score, as derived anomaly events carry it), clamped to [0, 1];
// -1 when it has none.
func anomalyScore(ev event.Event) float64 {
	md, _ := ev.Data["metadata"].(map[string]any)
	var v float64
	switch x := md["anomaly_score"].(type) {
	case float64:
		v = x
	case int:
		v = float64(x)
	case int64:
		v = float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return -1
		}
		v = f
	default:
		return -1
	}
	if math.IsNaN(v) {
		return -1
	}
	return min(max(v, 0), 1)
}

func factor(name, value string, contribution float64, detail string, args ...any) store.Factor {
	c := round2(contribution)
	if c == 0 {
		c = 0 // not -0, which would read "-0.00"
	}
	return store.Factor{Name: name, Value: value, Contribution: c, Detail: fmt.Sprintf(detail, args...)}
}

func num(v float64) string { return strconv.FormatFloat(round2(v), 'f', -1, 64) }

// successFactors are the template_success factors, one per candidate,
// best first: the chosen one's lower bound is the base.
func successFactors(ranked []Candidate, chosen *Candidate) []store.Factor {
	out := make([]store.Factor, 0, len(ranked))
	for i := range ranked {
		c := &ranked[i]
		value := fmt.Sprintf("%s for %q (template %d, %s)", num(c.Success.Lower), c.Template.Name, c.Template.ID, c.Template.Type)
		ev := fmt.Sprintf("success lower bound %s, mean %s on %s outcomes and feedback", num(c.Success.Lower), num(c.Success.Mean), num(c.Success.N))
		switch {
		case c.Template.ID == chosen.Template.ID:
			detail := ev + "; the base of the confidence"
			if c.Success.N == 0 {
				detail += " (never run on this pattern: it starts cautious and earns autonomy as it succeeds)"
			}
			out = append(out, factor(FactorTemplateSuccess, value, c.Success.Lower, "%s", detail))
		case c.Success.Demoted:
			out = append(out, factor(FactorTemplateSuccess, value, 0, "%s; demoted to approval-required on this pattern, not recommended for automation", ev))
		default:
			out = append(out, factor(FactorTemplateSuccess, value, 0, "%s; ranked below the chosen template", ev))
		}
	}
	return out
}

func (b *Builtin) baseFactor(ranked []Candidate) store.Factor {
	if len(ranked) == 0 {
		return factor(FactorBase, "no candidate template", b.w.NoCandidateBase,
			"no active response template answers this; the confidence is that of the decision type")
	}
	names := make([]string, len(ranked))
	for i, c := range ranked {
		names[i] = fmt.Sprintf("%q (mean %s on %s)", c.Template.Name, num(c.Success.Mean), num(c.Success.N))
	}
	return factor(FactorBase, "every candidate demoted", b.w.NoCandidateBase,
		"every candidate template is demoted to approval-required on this pattern: %s; none is recommended for automation", strings.Join(names, ", "))
}

// adjustments are the bounded contributions of the situation, in the
// order of the package documentation.
func (b *Builtin) adjustments(s *situation) []store.Factor {
	w := b.w
	in := s.in
	var out []store.Factor

	// The rule and its occurrences.
	if in.Rule != nil {
		out = append(out, factor("rule_match", fmt.Sprintf("%q (rule %d)", in.Rule.Name, in.Rule.ID), w.RuleMatch,
			"the trigger rule matched the event"))
		floor := max(in.Rule.MinCount, 1)
		extra := max(in.Occurrences-floor, 0)
		out = append(out, factor("occurrences", strconv.Itoa(in.Occurrences), min(float64(extra)*w.PerOccurrence, w.MaxOccurrences),
			"%d matching occurrences in the rule's window, %d beyond its min_count of %d", in.Occurrences, extra, floor))
	} else {
		out = append(out, factor("rule_match", "none", 0, "no trigger rule fired for this event (asked through analyze)"))
	}

	// Severity and priority.
	sev := event.SeverityFromRank(s.severity)
	sevDetail := "the event's severity"
	if s.onRoot {
		sevDetail = fmt.Sprintf("the higher of the event's (%s) and its root cause's (%s)", in.Event.Severity, s.target.Severity)
	}
	out = append(out, factor("severity", string(sev), w.Severity*float64(s.severity-2)/2,
		"%s; higher severity gives more weight to acting", sevDetail))
	out = append(out, factor("priority", strconv.Itoa(s.priority), w.Priority*float64(s.priority-50)/50,
		"the severity scorer's priority (0 to 100, 50 neutral)"))

	// Asset criticality and blast radius.
	crit, from := s.criticality()
	var cc float64
	switch crit {
	case "critical":
		cc = -w.Criticality
	case "high":
		cc = -w.Criticality / 2
	case "low":
		cc = w.Criticality / 5
	case "medium":
	default:
		crit, cc = "unknown", -w.Criticality/5
	}
	out = append(out, factor("asset_criticality", crit, cc, "%s; a more critical asset asks for more caution", from))
	nd, ns := len(in.Impact.Dependents), len(in.Impact.Services)
	blast := "nothing known depends on " + s.hostName()
	if nd+ns > 0 {
		blast = "depending on " + s.hostName() + list(in.Impact.Dependents, ": ", "") + list(in.Impact.Services, "; services: ", "") +
			"; a wider blast radius asks for more caution"
	}
	out = append(out, factor("blast_radius", plural(nd, "asset")+", "+plural(ns, "service"),
		-min(float64(nd)*w.PerDependent+float64(ns)*w.PerService, w.MaxBlastRadius), "%s", blast))

	// Context.
	out = append(out, s.businessHours(w), s.maintenance(w), s.changes(w), s.openIncidents(w), s.eventRate(w))

	// The anomaly score.
	if s.anomaly < 0 {
		out = append(out, factor("anomaly_score", "none", 0, "the event carries no anomaly score"))
	} else {
		out = append(out, factor("anomaly_score", num(s.anomaly), w.Anomaly*s.anomaly,
			"the anomaly detector's score (0 to 1; %s or more is anomalous)", num(s.threshold)))
	}

	// The incident and its root cause.
	out = append(out, s.incident(), s.rootCause(w), s.similar())
	return out
}

// criticality returns the target's criticality and where it comes from:
// the request, the impact analyzer, the context's asset, the event's.
func (s *situation) criticality() (string, string) {
	norm := func(c string) string { return strings.ToLower(strings.TrimSpace(c)) }
	switch {
	case s.given.criticality != "":
		return s.given.criticality, "system_criticality from the request"
	case s.in.Impact.Criticality != "":
		return norm(s.in.Impact.Criticality), "the impact analyzer's criticality of " + s.hostName()
	case s.ctx.Asset != nil && s.ctx.Asset.Criticality != "":
		return norm(s.ctx.Asset.Criticality), "the inventory's criticality of " + s.hostName()
	case s.target.Asset != nil && s.target.Asset.Criticality != "":
		return norm(s.target.Asset.Criticality), "the event's asset criticality"
	}
	return "", "no criticality is known for " + s.hostName()
}

func (s *situation) hostName() string {
	if s.host == "" {
		return "the target"
	}
	return s.host
}

func (s *situation) businessHours(w Weights) store.Factor {
	bh := s.ctx.BusinessHours
	from := "per the business calendar"
	if s.given.businessHours != nil {
		from = "per the request"
	}
	switch {
	case !bh.Configured:
		return factor("business_hours", "not configured", 0, "no business calendar is configured")
	case bh.Inside:
		return factor("business_hours", "inside", -w.BusinessHours, "inside business hours, %s: users are active, an action's side effects reach more of them", from)
	}
	return factor("business_hours", "outside", 0, "outside business hours, %s", from)
}

func (s *situation) maintenance(w Weights) store.Factor {
	m := s.ctx.Maintenance
	from := "per the maintenance windows"
	if s.given.maintenance != nil {
		from = "per the request"
	}
	switch {
	case m.Active:
		var ids []string
		for _, win := range m.Windows {
			id := strconv.FormatInt(win.ID, 10)
			if win.Comment != "" {
				id += " " + strconv.Quote(clip(win.Comment, 80))
			}
			ids = append(ids, id)
		}
		return factor("maintenance_window", "active", -w.Maintenance,
			"%s is in a maintenance window, %s%s: the event may be expected, and automation is held", s.hostName(), from, list(ids, ": window ", ""))
	case len(m.DependenciesInMaintenance) > 0:
		return factor("maintenance_window", "dependency", -w.DependencyMaintenance,
			"dependencies in a maintenance window: %s", strings.Join(m.DependenciesInMaintenance, ", "))
	}
	return factor("maintenance_window", "none", 0, "no maintenance window covers %s or its dependencies, %s", s.hostName(), from)
}

func (s *situation) changes(w Weights) store.Factor {
	cs := s.ctx.Changes.Events
	if len(cs) == 0 {
		return factor("recent_changes", "0", 0, "no change event on %s recently", s.hostName())
	}
	var titles []string
	for i, c := range cs {
		if i == 3 {
			titles = append(titles, "...")
			break
		}
		titles = append(titles, fmt.Sprintf("%q (event %d)", clip(c.Title, 80), c.EventID))
	}
	return factor("recent_changes", strconv.Itoa(len(cs)), -min(float64(len(cs))*w.PerChange, w.MaxChanges),
		"recent change events may be the cause, and an action may fight them: %s", strings.Join(titles, ", "))
}

func (s *situation) openIncidents(w Weights) store.Factor {
	inc := s.ctx.Incidents
	if !inc.Available {
		why := "no incident source"
		if inc.Error != "" {
			why = "the incident source failed: " + clip(inc.Error, 120)
		}
		return factor("open_incidents", "unknown", 0, "open incidents are not known (%s)", why)
	}
	var own int64
	if id := incidentID(s.in); id != nil {
		own = *id
	}
	var ids []string
	for _, group := range [][]contextual.IncidentRef{inc.OnHost, inc.OnDependencies} {
		for _, r := range group {
			if r.ID != own {
				ids = append(ids, strconv.FormatInt(r.ID, 10))
			}
		}
	}
	if len(ids) == 0 {
		return factor("open_incidents", "0", 0, "no other open incident on %s or its dependencies", s.hostName())
	}
	return factor("open_incidents", strconv.Itoa(len(ids)), -min(float64(len(ids))*w.PerOpenIncident, w.MaxOpenIncidents),
		"other open incidents on %s or its dependencies (%s): the event may be part of a wider problem", s.hostName(), strings.Join(ids, ", "))
}

func (s *situation) eventRate(w Weights) store.Factor {
	r := s.ctx.EventRate
	if r.Source == "" {
		return factor("event_rate", "unknown", 0, "the host's event rate is not known")
	}
	value := fmt.Sprintf("%s in %s", num(r.Current), r.Interval)
	if r.Anomalous {
		return factor("event_rate", value, -w.EventRate,
			"outside the expected %s to %s of its baseline (score %s): the host is noisier than usual, this event may be one symptom of many",
			num(r.ExpectedLow), num(r.ExpectedHigh), num(r.Score))
	}
	return factor("event_rate", value, 0, "within the expected %s to %s of its baseline", num(r.ExpectedLow), num(r.ExpectedHigh))
}

func (s *situation) incident() store.Factor {
	inc := s.in.Incident
	if inc == nil {
		if s.in.Event.IncidentID != 0 {
			return factor("incident", strconv.FormatInt(int64(s.in.Event.IncidentID), 10), 0, "the event is in this incident (not loaded)")
		}
		return factor("incident", "none", 0, "the event is in no incident")
	}
	return factor("incident", strconv.FormatInt(inc.ID, 10), 0, "%q: %d events on %d hosts, %s; one decision per incident",
		clip(inc.Title, 120), inc.EventCount, len(inc.Hosts), inc.Status)
}

func (s *situation) rootCause(w Weights) store.Factor {
	inc := s.in.Incident
	ev := s.in.Event
	switch {
	case s.onRoot:
		score := ""
		if inc != nil {
			for _, c := range inc.RootCauseRanking {
				if c.EventID == s.target.ID {
					score = fmt.Sprintf(", score %s: %s", num(c.Score), clip(c.Reason, 160))
				}
			}
		}
		return factor("root_cause", fmt.Sprintf("event %d on %s", s.target.ID, s.hostName()), w.RootKnown,
			"event %d (%s on %s) is a symptom; deciding on the incident's probable root cause, event %d (%s on %s%s)",
			ev.ID, ev.EventType, ev.SourceHost, s.target.ID, s.target.EventType, s.hostName(), score)
	case inc == nil:
		return factor("root_cause", "none", 0, "no incident, no root cause to rank")
	case inc.RootEventID == ev.ID:
		return factor("root_cause", fmt.Sprintf("event %d (this one)", ev.ID), w.RootKnown, "the event is its incident's probable root cause")
	case inc.RootEventID == 0:
		return factor("root_cause", "unranked", -w.RootUnknown,
			"the incident's root cause is not ranked yet: acting on a symptom risks treating the wrong host")
	}
	return factor("root_cause", fmt.Sprintf("event %d (not loaded)", inc.RootEventID), -w.RootUnknown,
		"the incident's probable root cause is event %d, which was not available: deciding on this symptom", inc.RootEventID)
}

func (s *situation) similar() store.Factor {
	sim := s.in.Similar
	if len(sim) == 0 {
		return factor("similar_incidents", "0", 0, "no similar past incident")
	}
	counts := map[string]int{}
	resolvedBy := map[string]int{}
	var order []string
	for _, x := range sim {
		o := x.Outcome
		if o == "" {
			o = "no outcome"
		}
		counts[o]++
		if x.Outcome == "successful" && x.TemplateName != "" {
			if resolvedBy[x.TemplateName] == 0 {
				order = append(order, x.TemplateName)
			}
			resolvedBy[x.TemplateName]++
		}
	}
	var parts []string
	for _, o := range []string{"successful", "partially_successful", "failed", "no outcome"} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
		}
	}
	var by []string
	for _, n := range order {
		by = append(by, fmt.Sprintf("%q ×%d", n, resolvedBy[n]))
	}
	return factor("similar_incidents", strconv.Itoa(len(sim)), 0, "%s%s; evidence only (their outcomes already count in the success estimates)",
		strings.Join(parts, ", "), list(by, "; resolved by ", ""))
}

// plural is "1 asset", "2 assets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// list joins xs between prefix and suffix, or is "" for none.
func list(xs []string, prefix, suffix string) string {
	if len(xs) == 0 {
		return ""
	}
	return prefix + strings.Join(xs, ", ") + suffix
}

// conclusion is the reasoning's last line.
func conclusion(s *situation, typ string, conf, sum float64, ranked []Candidate, chosen *Candidate) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "=> %s, confidence %.2f", typ, conf)
	if conf != sum {
		fmt.Fprintf(&sb, " (clamped from %.2f)", sum)
	}
	sb.WriteString(": ")
	switch {
	case chosen != nil:
		fmt.Fprintf(&sb, "recommend %q (template %d, %s; success lower bound %s on %s outcomes and feedback) on %s",
			chosen.Template.Name, chosen.Template.ID, chosen.Template.Type, num(chosen.Success.Lower), num(chosen.Success.N), s.hostName())
	case len(ranked) > 0:
		fmt.Fprintf(&sb, "every candidate template is demoted on this pattern; a human decides on %s", s.hostName())
	case typ == "escalate":
		fmt.Fprintf(&sb, "no response template, and the event is %s: a human decides on %s", event.SeverityFromRank(s.severity), s.hostName())
	case typ == "ignore":
		fmt.Fprintf(&sb, "no response template, the event is %s and shows no anomaly", event.SeverityFromRank(s.severity))
	default:
		fmt.Fprintf(&sb, "no response template; %s on %s needs a look", event.SeverityFromRank(s.severity), s.hostName())
	}
	if s.onRoot {
		fmt.Fprintf(&sb, ", acting on the root cause (event %d), not on the symptom (event %d)", s.target.ID, s.in.Event.ID)
	}
	sb.WriteString(". The policy decides what runs unattended.")
	return sb.String()
}
