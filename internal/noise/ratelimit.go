package noise

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/keyed"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

// RateLimitedError is the Outcome.Error of a rate-limited raw event.
const RateLimitedError = "rate_limited"

// RateLimiter is the rate limiting stage: a token bucket per source system
// (the webhook payload's "source") that refills at Options.Rate tokens per
// second of batch time up to Options.Burst. Each event takes a token; an
// event that finds the bucket empty is removed from the batch with the
// outcome {Error: "rate_limited"}.
//
// Exempt, taking no token: critical events (reflex never drops a critical
// event for volume), and, when the RateLimiter was given the Dedup stage,
// events Dedup will fold into a kept event (repeats cost a row update, not
// a row, and dropping them would lose their count).
//
// RateLimiter is safe for concurrent use; its state is bounded by
// Options.MaxKeys, and a source's bucket is forgotten once it has been idle
// long enough to be full again. The tokens a batch took are given back if
// the batch is not stored (pipeline.Batch.OnAbort), so that a redelivered
// event costs one token.
type RateLimiter struct {
	rate   float64
	burst  float64
	refill time.Duration // time for an empty bucket to fill: idle buckets are dropped after it
	dedup  *Dedup
	t      *keyed.Table[bucket]
	m      stageMetrics
	sweep  keyed.SweepClock
}

var _ pipeline.Stage = (*RateLimiter)(nil)

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a RateLimiter configured by opts (Rate, Burst,
// MaxKeys, Registerer). dedup may be nil; if not, events that dedup will
// fold take no token (run the RateLimiter before dedup). With opts.Rate 0
// the stage passes every event.
func NewRateLimiter(opts Options, dedup *Dedup) (*RateLimiter, error) {
	r := &RateLimiter{rate: max(0, opts.Rate), burst: opts.burst(), dedup: dedup}
	if r.rate > 0 {
		r.refill = time.Duration(r.burst / r.rate * float64(time.Second))
	}
	r.sweep.Every = max(r.refill, time.Minute)
	var evict func(string)
	r.t = keyed.New[bucket](opts.maxKeys(), func(reason string) { evict(reason) })
	m, err := newStageMetrics(opts.Registerer, stageRateLimit, "reflex_events_rate_limited_total",
		"Events dropped because their source system exceeded its rate limit, by source type.",
		func() float64 { return float64(r.t.Len()) })
	if err != nil {
		return nil, err
	}
	r.m = m
	evict = func(reason string) { m.evictions.WithLabelValues(reason).Inc() }
	return r, nil
}

// Name is the stage's name in processing_errors and metrics.
func (r *RateLimiter) Name() string { return stageRateLimit }

// Process removes the events of b over their source's limit. It registers
// the return of the tokens it took with b.OnAbort.
func (r *RateLimiter) Process(_ context.Context, b *pipeline.Batch) error {
	if r.rate <= 0 {
		return nil
	}
	now := b.Now
	if r.sweep.Due(now) {
		r.Sweep(now)
	}
	var took []string // a source per token taken
	b.OnAbort(func() { r.giveBack(took) })
	var passed map[string]bool // fingerprints that passed in this call: Dedup folds the rest
	out := b.Events[:0]
	for _, e := range b.Events {
		if e.Severity == event.Critical {
			out = append(out, e)
			continue
		}
		if r.dedup != nil {
			fp := fingerprint(e)
			if passed[fp] || r.dedup.Seen(e, now) {
				out = append(out, e)
				continue
			}
		}
		if !r.allow(e.SourceSystem, now) {
			b.SetOutcome(e.RawEventID, pipeline.Outcome{Error: RateLimitedError})
			r.m.events.WithLabelValues(string(e.SourceType)).Inc()
			continue
		}
		took = append(took, e.SourceSystem)
		if r.dedup != nil {
			if passed == nil {
				passed = make(map[string]bool)
			}
			passed[e.Fingerprint] = true
		}
		out = append(out, e)
	}
	clear(b.Events[len(out):])
	b.Events = out
	return nil
}

// allow takes a token from source's bucket at now, if it has one.
func (r *RateLimiter) allow(source string, now time.Time) bool {
	s := r.t.Lock(source)
	defer s.Unlock()
	en := r.t.Get(s, source)
	if en == nil {
		en = r.t.Put(s, source, bucket{tokens: r.burst, last: now})
	} else {
		r.t.Touch(s, en)
	}
	bk := &en.Val
	if now.After(bk.last) {
		// Batches of two lanes may carry slightly different times; the
		// bucket only moves forward.
		bk.tokens = min(r.burst, bk.tokens+now.Sub(bk.last).Seconds()*r.rate)
		bk.last = now
	}
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}

// giveBack returns a token to the bucket of each source (one per entry).
func (r *RateLimiter) giveBack(sources []string) {
	for _, source := range sources {
		s := r.t.Lock(source)
		if en := r.t.Get(s, source); en != nil {
			en.Val.tokens = min(r.burst, en.Val.tokens+1)
		}
		s.Unlock()
	}
}

// Sweep forgets the buckets that have been idle long enough at now to be
// full again (a new bucket starts full, so nothing changes) and returns how
// many it removed. Process sweeps by itself.
func (r *RateLimiter) Sweep(now time.Time) int {
	return r.t.Sweep(func(bk *bucket) bool { return now.Sub(bk.last) >= r.refill })
}

// Len returns the number of source systems in the state.
func (r *RateLimiter) Len() int { return r.t.Len() }
