package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric names the load generator reads from the server's /metrics.
const (
	processedMetric = "reflex_events_processed_total"
	latencyMetric   = "reflex_intake_to_processed_seconds"
	rulesMetric     = "reflex_rules_records_total"
	firingsMetric   = "reflex_rule_firings_total"
	ingestAccepted  = "reflex_ingest_accepted_total"
	ingestRejected  = "reflex_ingest_rejected_total"
	ingestDropped   = "reflex_ingest_dropped_total"
)

// snapshot is what the load generator reads from one scrape.
type snapshot struct {
	processed float64
	// rules counts the records the rules engine evaluated (hasRules: the
	// server runs it); fired and suppressed its firings.
	rules             float64
	hasRules          bool
	fired, suppressed float64
	// latency is the intake-to-processed histogram per lane: cumulative
	// bucket counts by upper bound.
	latency map[string]histogram
	// The adapters' counters (every adapter and listener summed).
	ingestAccepted, ingestRejected, ingestDropped float64
}

type histogram struct {
	count   float64
	buckets map[float64]float64 // upper bound -> cumulative count
}

func scrape(ctx context.Context, client *http.Client, url string) (snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return snapshot{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return snapshot{}, fmt.Errorf("loadgen: scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return snapshot{}, fmt.Errorf("loadgen: scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return snapshot{}, fmt.Errorf("loadgen: parse metrics: %w", err)
	}
	s := snapshot{latency: map[string]histogram{}}
	if f := fams[processedMetric]; f != nil {
		for _, m := range f.GetMetric() {
			s.processed += m.GetCounter().GetValue()
		}
	}
	for name, dst := range map[string]*float64{ingestAccepted: &s.ingestAccepted, ingestRejected: &s.ingestRejected, ingestDropped: &s.ingestDropped} {
		for _, m := range fams[name].GetMetric() {
			*dst += m.GetCounter().GetValue()
		}
	}
	if f := fams[rulesMetric]; f != nil {
		s.hasRules = true
		for _, m := range f.GetMetric() {
			s.rules += m.GetCounter().GetValue()
		}
	}
	if f := fams[firingsMetric]; f != nil {
		for _, m := range f.GetMetric() {
			switch label(m, "outcome") {
			case "fired":
				s.fired += m.GetCounter().GetValue()
			case "suppressed":
				s.suppressed += m.GetCounter().GetValue()
			}
		}
	}
	if f := fams[latencyMetric]; f != nil {
		for _, m := range f.GetMetric() {
			lane := label(m, "lane")
			h := s.latency[lane]
			if h.buckets == nil {
				h.buckets = map[float64]float64{}
			}
			h.count += float64(m.GetHistogram().GetSampleCount())
			for _, b := range m.GetHistogram().GetBucket() {
				h.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
			h.buckets[math.Inf(1)] = h.count
			s.latency[lane] = h
		}
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sub is the histogram of observations made between before and h.
func (h histogram) sub(before histogram) histogram {
	out := histogram{count: h.count - before.count, buckets: map[float64]float64{}}
	for ub, c := range h.buckets {
		out.buckets[ub] = c - before.buckets[ub]
	}
	return out
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear interpolation inside the bucket that holds it. It returns
// NaN for an empty histogram.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(h.buckets))
	for ub := range h.buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	rank := q * h.count
	prevBound, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := h.buckets[ub]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return prevBound
			}
			if c == prevCount {
				return ub
			}
			return prevBound + (ub-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = ub, c
	}
	return prevBound
}
