// Package metrics is reflex's metric points path. Samples pushed by
// Prometheus remote write (internal/ingest/promwrite) and the InfluxDB
// line protocol (internal/ingest/influx) are not stored as events: they
// go to an in-memory series store, bounded by --metric-max-series, which
// evaluates the metric rules on each sample and feeds the anomaly
// detector (an Observer). Metric checks run scheduled PromQL instant
// queries against a Prometheus server's HTTP API. A rule or a check whose
// condition has held for its "for" raises an event (source type metrics,
// event_data.alert firing) and resolves it (alert resolved, severity
// info) when the condition clears or its series goes stale; those events
// are submitted through the intake like any adapter's.
//
// State lives in memory only: after a restart a condition must hold
// "for" again before it fires again, and an alert whose condition cleared
// while reflex was down is not resolved by it (the incident engine's
// resolve-after closes it).
package metrics

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"time"
)

// MetricName is the label that holds a series' metric name.
const MetricName = "__name__"

// Label is one label pair of a series.
type Label struct {
	Name, Value string
}

// Labels are a series' labels, sorted by name, names unique.
type Labels []Label

// Get answers the value of the label name ("" when absent).
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Name answers the metric name (the __name__ label).
func (ls Labels) Name() string { return ls.Get(MetricName) }

// Sort sorts ls by name.
func (ls Labels) Sort() {
	slices.SortFunc(ls, func(a, b Label) int { return cmp.Compare(a.Name, b.Name) })
}

// Map answers the labels as a map, without the metric name.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		if l.Name != MetricName {
			m[l.Name] = l.Value
		}
	}
	return m
}

// key answers the identity of the series (ls sorted).
func (ls Labels) key() string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteByte(0xff)
		b.WriteString(l.Value)
		b.WriteByte(0xfe)
	}
	return b.String()
}

// String answers the series in Prometheus' notation:
// name{a="1",b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteString(ls.Name())
	b.WriteByte('{')
	first := true
	for _, l := range ls {
		if l.Name == MetricName {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Point is one sample of a series.
type Point struct {
	At    time.Time
	Value float64
}

// Series is a series' labels (sorted) and some of its samples, in time
// order, as a decoder produced them.
type Series struct {
	Labels Labels
	Points []Point
}

// Result is what Append did with a batch.
type Result struct {
	// Accepted is the samples taken.
	Accepted int
	// Dropped is the samples of new series refused because the store
	// holds MaxSeries series.
	Dropped int
}

// Errors of the store.
var (
	// ErrBusy means the alert events waiting for the intake fill their
	// queue: the batch was not taken, and the sender should retry later
	// (answered 503 with Retry-After).
	ErrBusy = errors.New("metrics: alert events queue full")
	// ErrStopped means the store is stopped.
	ErrStopped = errors.New("metrics: stopped")
)
