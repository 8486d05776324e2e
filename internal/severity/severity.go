// Package severity is the last processing stage of the pipeline: it gives
// each event its final severity and a numeric priority (0-100) from the
// source's severity, the criticality of its asset, how often it occurred
// and whether it is correlated, and records the reasons in the event's
// Scoring (kept in event_data.scoring).
package severity

import (
	"context"
	"fmt"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// base is the base priority of each source severity. The steps are 15
// points or more, so that one strong factor (a critical asset, +15) can
// move an event up one level and no factor alone moves it two.
var base = map[event.Severity]int{
	event.Critical: 80,
	event.High:     65,
	event.Medium:   50,
	event.Low:      30,
	event.Info:     10,
}

// criticalityWeight is the priority an asset's criticality adds.
var criticalityWeight = map[string]int{
	"critical": 15,
	"high":     10,
	"medium":   0,
	"low":      -5,
}

// Weights of the other factors.
const (
	maxOccurrenceWeight = 10 // occurrences add 3 × log2(count), at most this
	correlationWeight   = 5
)

// Factor names, the Factor values of Scoring.Factors.
const (
	FactorSourceSeverity   = "source_severity"
	FactorAssetCriticality = "asset_criticality"
	FactorOccurrences      = "occurrences"
	FactorCorrelation      = "correlation"
)

// EscalatedTag is the tag of an event whose severity the scorer raised.
const EscalatedTag = "escalated"

// BasePriority returns the base priority of source severity s (an unknown
// severity counts as info).
func BasePriority(s event.Severity) int {
	if p, ok := base[s]; ok {
		return p
	}
	return base[event.Info]
}

// Options configures a Scorer. The zero value is valid.
type Options struct {
	// Registerer registers the stage's metrics; nil does not register.
	Registerer prometheus.Registerer
}

// Scorer is the severity scoring stage. For each event it computes
//
//	priority = base(source severity)         critical 80, high 65, medium 50, low 30, info 10
//	         + asset criticality             critical +15, high +10, medium 0, low -5
//	         + occurrences                   min(10, floor(3 × log2(occurrence_count)))
//	         + correlation                   +5 if the event has a parent event, is in a
//	                                         time-based group of two events or more, or is
//	                                         the parent of dependent events
//
// clamped to 0..100. The final severity is the source severity raised by
// one level when the priority reaches the next level's base (a high event
// on a critical asset becomes critical); it is never raised by more than
// one level, never raised from info (info means "no problem": ok,
// resolved), and never lowered (an operator must not miss a critical
// because its asset is rated low). A raised event is tagged "escalated".
//
// The reasons are recorded in the event's Scoring, kept in
// event_data.scoring as {"priority", "source_severity", "severity",
// "factors": [{"factor", "weight", "reason"}]}. The asset's criticality is
// read from the event's Asset, set by the enricher. Scorer keeps no state
// and is safe for concurrent use.
type Scorer struct {
	escalated *prometheus.CounterVec
}

var _ pipeline.Stage = (*Scorer)(nil)

// New returns a Scorer.
func New(opts Options) (*Scorer, error) {
	s := &Scorer{escalated: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_events_escalated_total",
		Help: "Events whose severity the scorer raised one level, by final severity.",
	}, []string{"severity"})}
	if err := promutil.Register(opts.Registerer, &s.escalated); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return s, nil
}

// Process scores every event of b. Correlation is read from the event's
// parent_event_id and from b.Correlations, the rows the correlator emitted
// for this batch.
func (s *Scorer) Process(_ context.Context, b *pipeline.Batch) error {
	var groups map[string]bool // time-based groups of 2+ events in this batch
	var parents map[int64]bool // parents of causal groups in this batch
	for _, c := range b.Correlations {
		switch c.Type {
		case event.CorrelationCausal:
			if parents == nil {
				parents = make(map[int64]bool)
			}
			parents[c.PrimaryEventID] = true
		default:
			if groups == nil {
				groups = make(map[string]bool)
			}
			groups[c.CorrelationID] = true
		}
	}
	for _, e := range b.Events {
		var why string
		switch {
		case e.ParentEventID != 0:
			why = fmt.Sprintf("dependent of open critical event %d on a host this asset depends on", e.ParentEventID)
		case e.CorrelationID != "" && groups[e.CorrelationID]:
			why = fmt.Sprintf("one of several events on %s within the correlation window (correlation %s)", e.SourceHost, e.CorrelationID)
		case parents[e.ID]:
			why = "open critical event that events on dependent hosts point to"
		}
		if final := Score(e, why); final != "" {
			s.escalated.WithLabelValues(string(final)).Inc()
		}
	}
	return nil
}

// Score sets e's Priority, Severity, Scoring and, if raised, the
// escalated tag. correlated is the reason the event counts as correlated,
// empty if it does not. It returns the new severity if it raised it, else
// "".
func Score(e *event.Event, correlated string) event.Severity {
	src := e.Severity
	factors := make([]event.ScoringFactor, 0, 4)
	add := func(name string, w int, reason string) int {
		factors = append(factors, event.ScoringFactor{Factor: name, Reason: reason, Weight: w})
		return w
	}

	known := src.Valid()
	if !known {
		src = event.Info
	}
	reason := "source severity " + string(src)
	if !known {
		reason = fmt.Sprintf("unknown source severity %q, scored as info", e.Severity)
	}
	p := add(FactorSourceSeverity, BasePriority(src), reason)

	if c := assetCriticality(e); c != "" {
		if w, ok := criticalityWeight[c]; ok {
			asset := "asset"
			if e.SourceHost != "" {
				asset = "asset " + e.SourceHost
			}
			p += add(FactorAssetCriticality, w, fmt.Sprintf("%s is %s", asset, c))
		}
	}
	if n := e.OccurrenceCount; n > 1 {
		w := min(maxOccurrenceWeight, int(math.Floor(3*math.Log2(float64(n)))))
		p += add(FactorOccurrences, w, fmt.Sprintf("occurred %d times within the deduplication window", n))
	}
	if correlated != "" {
		p += add(FactorCorrelation, correlationWeight, correlated)
	}
	p = max(0, min(100, p))

	final := src
	if r := src.Rank(); r >= event.Low.Rank() && r < event.Critical.Rank() {
		if next := event.SeverityFromRank(r + 1); p >= base[next] {
			final = next
		}
	}
	e.Priority = p
	e.Severity = final
	e.Scoring = &event.Scoring{Factors: factors, Priority: p, Severity: final, SourceSeverity: src}
	if final != src {
		e.Tag(EscalatedTag)
		return final
	}
	return ""
}

// assetCriticality is the criticality of e's asset, set by the enricher.
func assetCriticality(e *event.Event) string {
	if e.Asset == nil {
		return ""
	}
	return e.Asset.Criticality
}
