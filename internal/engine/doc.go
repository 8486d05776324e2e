// Package engine is the decision layer of the Autonomous Response
// Service: from an event, the rule that fired, its incident, the context
// of its host and the candidate response templates with their observed
// success, it proposes a decision (investigate, automate, escalate or
// ignore) with a confidence and the reasoning behind it. It proposes
// only: the execution threshold and the policy (per risk level,
// approvals, the kill switch, maintenance holds) are the service's.
//
// Builtin is the engine that needs no network; package engine/llm wraps
// it with an optional language model and falls back on it.
//
// # The built-in model
//
// The confidence is a sum of signed contributions, each a factor of the
// decision, clamped to [0, 1] and every term rounded to two decimals, so
// that the lines of the reasoning add up to the confidence shown:
//
//	confidence = clamp(base + Σ adjustments)
//
// The base is the chosen template's success on this pattern: the lower
// bound (5% quantile) of its Beta posterior (see package learning). A
// template never run has a lower bound of 0.05, so that its decision
// stays far below the default execution threshold of 0.8 whatever the
// adjustments (they add at most +0.26 with the default Weights); fifteen
// successes in a row take the bound to 0.83, and every failure or piece
// of negative feedback lowers it. Without a chosen template (no
// candidate, or every candidate demoted) the base is
// Weights.NoCandidateBase (0.5): the confidence is then that of
// escalating, investigating or ignoring.
//
// The adjustments, with the default Weights (each bounded):
//
//	rule_match          +0.05 when a trigger rule fired
//	occurrences         +0.01 per occurrence beyond the rule's min_count, at most +0.03
//	severity            +0.06 critical, +0.03 high, 0 medium, -0.03 low, -0.06 info
//	priority            (priority-50)/50 × 0.03: -0.03 to +0.03
//	asset_criticality   -0.10 critical, -0.05 high, 0 medium, +0.02 low, -0.02 unknown
//	blast_radius        -0.01 per dependent asset, -0.02 per dependent service, at most -0.10
//	business_hours      -0.03 inside business hours (users are active), else 0
//	maintenance_window  -0.30 when a window covers the host, -0.05 when one covers a dependency
//	recent_changes      -0.03 per change event in the window, at most -0.09
//	open_incidents      -0.03 per other open incident on the host or its dependencies, at most -0.09
//	event_rate          -0.05 when the host's event rate is outside its baseline's range
//	anomaly_score       +score × 0.05 (the event's anomaly score, 0 to 1)
//	root_cause          +0.02 acting on a ranked root cause, -0.05 in an incident without one
//
// Every adjustment is monotone in what it sees: a higher severity,
// priority or anomaly score never lowers the confidence; a more critical
// asset, a larger blast radius, a maintenance window, more changes or
// more open incidents never raise it. incident and similar_incidents are
// shown with a contribution of 0: the incident's weight is its root
// cause's, and the outcomes of similar past decisions are already
// counted in the success estimates (counting them again would count
// them twice).
//
// # The decision type
//
// Candidates are ranked by standing (a demoted template last), then by
// the lower bound of their success, then by its mean, then by id. The
// best one that is not demoted is chosen, and its type gives the
// decision's: investigation → investigate, remediation → automate,
// escalation → escalate. When every candidate is demoted the decision is
// escalate (a demoted template is never recommended for automation: its
// steps are marked approval-required). Without candidates: escalate for
// a high or critical event, ignore for an info or low one without an
// anomaly (an anomaly score at or above AnomalyThreshold, or an
// anomalous event rate), investigate otherwise.
//
// # Root causes
//
// When the event is a symptom in an incident whose probable root cause
// is another event (Input.Root), the decision is made on the root: its
// host is the decision's host, the higher of the two severities,
// priorities and anomaly scores count, and the root_cause factor and
// the conclusion say so. The pattern stays the fired rule's, so that
// the same firing learns under one key.
package engine
