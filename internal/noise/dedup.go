package noise

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/keyed"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/store"
)

// Dedup is the deduplication stage. The first event of a fingerprint is
// kept (it flows on and becomes a processed event); a repeat of it within
// the window (measured from the batch time at which the kept event was
// first seen) is removed from the batch and folded into the kept event:
// the kept event's occurrence count grows by one and its last_seen_at
// becomes the repeat's received_at. If the kept event is in the same
// Process call, it is updated in place; otherwise the fold is recorded as a
// store.Repeat. The first event after the window is kept as a new event.
//
// Dedup is safe for concurrent use; its state is bounded by
// Options.MaxKeys and expires after the window. What it applies for a
// batch is undone if the batch is not stored (pipeline.Batch.OnAbort), so
// that a redelivered repeat is counted once.
type Dedup struct {
	window time.Duration
	t      *keyed.Table[kept]
	m      stageMetrics
	sweep  keyed.SweepClock
}

var _ pipeline.Stage = (*Dedup)(nil)

// kept is the state of one fingerprint: the event repeats fold into.
type kept struct {
	id         int64
	occurredAt time.Time // of the kept event: the store locates its partition by it
	count      int       // occurrences so far, the kept event included
	firstSeen  time.Time // batch time at which the kept event was processed
	lastSeen   time.Time // latest received_at of an occurrence
}

// NewDedup returns a Dedup configured by opts (Window, MaxKeys,
// Registerer).
func NewDedup(opts Options) (*Dedup, error) {
	d := &Dedup{window: opts.window()}
	d.sweep.Every = d.window
	var evict func(string)
	d.t = keyed.New[kept](opts.maxKeys(), func(reason string) { evict(reason) })
	m, err := newStageMetrics(opts.Registerer, stageDedup, "reflex_events_deduplicated_total",
		"Events folded into an earlier event with the same fingerprint, by source type.",
		func() float64 { return float64(d.t.Len()) })
	if err != nil {
		return nil, err
	}
	d.m = m
	evict = func(reason string) { m.evictions.WithLabelValues(reason).Inc() }
	return d, nil
}

// dedupUndo reverts one change of Process: a fold into kept event id
// (fold), or the kept event id put for fp, in place of prev if not nil.
type dedupUndo struct {
	fp                     string
	id                     int64
	fold                   bool
	lastSeen, prevLastSeen time.Time // of a fold
	prev                   *kept
}

// Name is the stage's name in processing_errors and metrics.
func (d *Dedup) Name() string { return stageDedup }

// Process deduplicates b.Events in order. Each removed repeat gets the
// outcome {ProcessedEventID: kept event id}. It registers the undo of its
// changes with b.OnAbort.
func (d *Dedup) Process(_ context.Context, b *pipeline.Batch) error {
	now := b.Now
	if d.sweep.Due(now) {
		d.Sweep(now)
	}
	undo := make([]dedupUndo, 0, len(b.Events))
	b.OnAbort(func() { d.undo(undo) })
	inBatch := make(map[int64]*event.Event, len(b.Events))
	var repeatAt map[int64]int // kept event id -> index in b.Repeats
	out := b.Events[:0]
	for _, e := range b.Events {
		fp := fingerprint(e)
		seen := lastSeen(e, now)
		s := d.t.Lock(fp)
		en := d.t.Get(s, fp)
		if en != nil && !d.live(&en.Val, now) {
			d.t.Expire(s, en)
			en = nil
		}
		if en != nil && en.Val.id != e.ID {
			// A repeat: fold it into the kept event.
			k := &en.Val
			undo = append(undo, dedupUndo{fp: fp, id: k.id, fold: true, prevLastSeen: k.lastSeen})
			k.count++
			if seen.After(k.lastSeen) {
				k.lastSeen = seen
			}
			undo[len(undo)-1].lastSeen = k.lastSeen
			st := *k
			s.Unlock()
			if ke := inBatch[st.id]; ke != nil {
				ke.OccurrenceCount = st.count
				ke.LastSeenAt = st.lastSeen
			} else {
				r := store.Repeat{EventID: st.id, OccurredAt: st.occurredAt, OccurrenceCount: st.count, LastSeenAt: st.lastSeen}
				if i, ok := repeatAt[st.id]; ok {
					b.Repeats[i] = r
				} else {
					if repeatAt == nil {
						repeatAt = make(map[int64]int)
					}
					repeatAt[st.id] = len(b.Repeats)
					b.Repeats = append(b.Repeats, r)
				}
			}
			b.SetOutcome(e.RawEventID, pipeline.Outcome{ProcessedEventID: st.id})
			d.m.events.WithLabelValues(string(e.SourceType)).Inc()
			continue
		}
		// A new kept event, or the kept event itself seen again (a batch
		// retried after a failure): it flows on, and its count restarts.
		if e.OccurrenceCount < 1 {
			e.OccurrenceCount = 1
		}
		if e.LastSeenAt.IsZero() {
			e.LastSeenAt = seen
		}
		k := kept{id: e.ID, occurredAt: e.OccurredAt, count: e.OccurrenceCount, firstSeen: now, lastSeen: e.LastSeenAt}
		u := dedupUndo{fp: fp, id: e.ID}
		if en != nil {
			k.firstSeen = en.Val.firstSeen
			prev := en.Val
			u.prev = &prev
		}
		undo = append(undo, u)
		d.t.Put(s, fp, k)
		s.Unlock()
		inBatch[e.ID] = e
		out = append(out, e)
	}
	clear(b.Events[len(out):])
	b.Events = out
	return nil
}

// undo reverts changes of Process, the last first. A change that a later
// batch has overtaken (the fingerprint's kept event is another one now) is
// left alone.
func (d *Dedup) undo(changes []dedupUndo) {
	for i := len(changes) - 1; i >= 0; i-- {
		u := &changes[i]
		s := d.t.Lock(u.fp)
		en := d.t.Get(s, u.fp)
		switch {
		case en == nil || en.Val.id != u.id:
		case u.fold:
			en.Val.count = max(1, en.Val.count-1)
			if en.Val.lastSeen.Equal(u.lastSeen) {
				en.Val.lastSeen = u.prevLastSeen
			}
		case u.prev != nil:
			en.Val = *u.prev
		default:
			d.t.Remove(s, en)
		}
		s.Unlock()
	}
}

// Seen reports whether e would be folded into an earlier event if it were
// processed at now: an event with its fingerprint, other than e itself, is
// kept and its window is still open.
func (d *Dedup) Seen(e *event.Event, now time.Time) bool {
	fp := fingerprint(e)
	s := d.t.Lock(fp)
	defer s.Unlock()
	en := d.t.Get(s, fp)
	return en != nil && en.Val.id != e.ID && d.live(&en.Val, now)
}

// Sweep removes the fingerprints whose window has closed at now and
// returns how many it removed. Process sweeps by itself once per window of
// batch time; a runner may call Sweep too, for example when idle.
func (d *Dedup) Sweep(now time.Time) int {
	return d.t.Sweep(func(k *kept) bool { return !d.live(k, now) })
}

// Warm seeds the state from events stored recently (store.RecentEvents,
// oldest first), so that a restart does not forget the open windows: a
// later repeat of one of them is folded into it. Each event's window is
// taken to have opened at its received_at. Events whose window has closed
// are dropped by the next sweep.
func (d *Dedup) Warm(events []event.Event) {
	for i := range events {
		e := &events[i]
		fp := fingerprint(e)
		k := kept{id: e.ID, occurredAt: e.OccurredAt, count: max(1, e.OccurrenceCount), firstSeen: e.ReceivedAt, lastSeen: e.LastSeenAt}
		if k.firstSeen.IsZero() {
			k.firstSeen = event.TimeOfID(e.ID)
		}
		if k.lastSeen.IsZero() {
			k.lastSeen = k.firstSeen
		}
		s := d.t.Lock(fp)
		if en := d.t.Get(s, fp); en == nil || !en.Val.firstSeen.After(k.firstSeen) {
			d.t.Put(s, fp, k)
		}
		s.Unlock()
	}
}

// Len returns the number of fingerprints in the state.
func (d *Dedup) Len() int { return d.t.Len() }

// live reports whether k's window is open at now.
func (d *Dedup) live(k *kept, now time.Time) bool {
	return now.Sub(k.firstSeen) < d.window
}

// fingerprint is e's fingerprint, computed if the normalizer left it empty.
func fingerprint(e *event.Event) string {
	if e.Fingerprint == "" {
		e.Fingerprint = event.Fingerprint(e)
	}
	return e.Fingerprint
}

// lastSeen is when an occurrence was seen: its received_at, else its
// occurred_at, else now.
func lastSeen(e *event.Event, now time.Time) time.Time {
	switch {
	case !e.ReceivedAt.IsZero():
		return e.ReceivedAt
	case !e.OccurredAt.IsZero():
		return e.OccurredAt
	}
	return now
}
