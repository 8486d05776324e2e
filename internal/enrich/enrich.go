package enrich

import (
	"context"
	"errors"
	"slices"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Options configures an Enricher. The zero value is valid.
type Options struct {
	// Registerer registers the stage's metrics; nil does not register.
	Registerer prometheus.Registerer
}

// Enricher is the pipeline stage that adds an event's asset to it. For an
// event whose host is in the inventory it sets the event's Asset (kept in
// event_data.asset) to the asset's environment, criticality, owner, team,
// service and dependencies, adds the tags "env:<environment>", "team:<team>",
// "criticality:<criticality>" and the asset's own tags, and fills in
// source_service from the asset when the event has none. Events of unknown
// hosts pass unchanged. It keeps no state of its own and is safe for
// concurrent use.
type Enricher struct {
	inv    *Inventory
	events *prometheus.CounterVec
}

var _ pipeline.Stage = (*Enricher)(nil)

// New returns an Enricher reading inv, which the caller keeps up to date.
func New(inv *Inventory, opts Options) (*Enricher, error) {
	if inv == nil {
		return nil, errors.New("enrich: new: nil inventory")
	}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_enrich_events_total",
		Help: "Events seen by the enricher, by whether their host is in the asset inventory (result: asset, unknown_host).",
	}, []string{"result"})
	if err := promutil.Register(opts.Registerer, &events); err != nil {
		return nil, err
	}
	return &Enricher{inv: inv, events: events}, nil
}

// Process enriches every event of b whose host is a known asset.
func (en *Enricher) Process(_ context.Context, b *pipeline.Batch) error {
	var known, unknown int
	for _, e := range b.Events {
		if en.Enrich(e) {
			known++
		} else {
			unknown++
		}
	}
	if known > 0 {
		en.events.WithLabelValues("asset").Add(float64(known))
	}
	if unknown > 0 {
		en.events.WithLabelValues("unknown_host").Add(float64(unknown))
	}
	return nil
}

// Enrich adds e's asset to e as Process does, without counting it, and
// reports whether e's host is a known asset.
func (en *Enricher) Enrich(e *event.Event) bool {
	a, ok := en.inv.Get(e.SourceHost)
	if !ok {
		return false
	}
	e.Asset = &event.Asset{
		Criticality:  a.Criticality,
		Dependencies: slices.Clone(a.Dependencies),
		Environment:  a.Environment,
		Owner:        a.Owner,
		Service:      a.Service,
		Team:         a.Team,
	}
	if a.Environment != "" {
		e.Tag(tag("env:" + a.Environment))
	}
	if a.Team != "" {
		e.Tag(tag("team:" + a.Team))
	}
	if a.Criticality != "" {
		e.Tag(tag("criticality:" + a.Criticality))
	}
	for _, t := range a.Tags {
		e.Tag(tag(t))
	}
	if e.SourceService == "" {
		e.SourceService = a.Service
	}
	return true
}

// tag cuts t to MaxTagLen characters, the width of the tags column.
func tag(t string) string {
	if len(t) <= MaxTagLen || utf8.RuneCountInString(t) <= MaxTagLen {
		return t
	}
	n := 0
	for i := range t {
		if n == MaxTagLen {
			return t[:i]
		}
		n++
	}
	return t
}
