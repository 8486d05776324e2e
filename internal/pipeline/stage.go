// Package pipeline runs the processing stages over batches of raw events
// taken from the intake log, partitioned by host, and stores the result.
package pipeline

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Stage is one step of processing. Process works on the batch in place:
// it may change events, drop them from b.Events (recording an Outcome for
// their raw event), and append to b.Repeats and b.Correlations.
//
// The runner calls Process concurrently on sub-batches with disjoint sets
// of hosts (see Partition): per-host state needs no ordering beyond that,
// but state shared across hosts must be safe for concurrent use. Within a
// sub-batch, events of one host are in intake order.
//
// An error fails the batch. A retryable one (the default: a dependency of
// the stage is down) is retried through the intake log, with backoff, up
// to RunnerOptions.MaxDeliveries deliveries; a permanent one (Permanent, or
// a panic) and a retryable one past that bound make the runner isolate the
// events that fail and store them unprocessed with the error (see Runner).
//
// Processing is idempotent under redelivery: a stage whose state changes
// with the events it sees registers, with Batch.OnAbort, how to undo what
// it applied; the runner undoes it when the batch (or the part of it being
// isolated) is not stored, so that the state only ever reflects what the
// store committed and a redelivered event is applied once. A stage may
// have a Name() string method (see StageName).
type Stage interface {
	Process(ctx context.Context, b *Batch) error
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, b *Batch) error

// Process calls f.
func (f StageFunc) Process(ctx context.Context, b *Batch) error { return f(ctx, b) }

// MultiStage runs stages in order, stopping at the first error, which it
// returns as a *StageError naming the stage (a panic as a *PanicError).
type MultiStage []Stage

// Process runs each stage in turn.
func (ms MultiStage) Process(ctx context.Context, b *Batch) error {
	for _, s := range ms {
		if err := runStage(ctx, StageName(s), s, b); err != nil {
			return err
		}
		if len(b.Events) == 0 {
			return nil
		}
	}
	return nil
}

var _ Stage = MultiStage(nil)

// Batch is the unit of work of the stages.
type Batch struct {
	// Now is the processing time of the batch; stages use it instead of
	// the wall clock so that tests control time.
	Now time.Time
	// Raw holds the raw events of the batch in intake order. Stages read
	// it; the runner fills in each raw event's outcome before storing.
	Raw []event.Raw
	// Events are the events still flowing through the stages.
	Events []*event.Event
	// Outcomes records what happened to raw events that did not become a
	// new processed event, by raw event id: folded into another event by
	// deduplication, rate limited, or rejected by normalization.
	Outcomes map[int64]Outcome
	// Repeats are deduplication hits on events stored by earlier batches,
	// at most one per event id (the latest total wins).
	Repeats []store.Repeat
	// Correlations are correlation rows created or grown by this batch, at
	// most one per CorrelationID (the latest state wins).
	Correlations []event.Correlation

	aborts []func()
}

// OnAbort registers undo, which reverts state changes a stage applied for
// this batch. The runner calls the registered functions, the last first,
// if the batch is not stored (a stage failed, or the runner stopped before
// the store commit); once it is stored they are dropped. undo may run
// while other batches are being processed: it takes the stage's locks like
// Process does. Register before applying, so that a panic midway leaves
// what was applied undoable.
func (b *Batch) OnAbort(undo func()) {
	b.aborts = append(b.aborts, undo)
}

// Abort runs the registered undo functions, the last first, and forgets
// them.
func (b *Batch) Abort() {
	for i := len(b.aborts) - 1; i >= 0; i-- {
		b.aborts[i]()
	}
	b.aborts = nil
}

// Outcome is the fate of a raw event that did not become a new processed
// event.
type Outcome struct {
	// ProcessedEventID is the event it was folded into (0 if none).
	ProcessedEventID int64
	// Error says why it was not processed normally, such as
	// "rate_limited" or a normalization error. Empty for a deduplicated
	// repeat.
	Error string
	// Failed marks a poison event: a stage failed on it for good. It is
	// stored with processed = false and Error in processing_errors.
	Failed bool
}

// SetOutcome records the outcome of raw event id.
func (b *Batch) SetOutcome(id int64, o Outcome) {
	if b.Outcomes == nil {
		b.Outcomes = make(map[int64]Outcome)
	}
	b.Outcomes[id] = o
}

// Partition maps a host to one of n partitions; all events of one host go
// to the same partition. Stages shard their per-host state by it too.
func Partition(host string, n int) int { return event.PartitionOf(host, n) }

// ToStore converts a processed batch into what the store writes: each raw
// event gets its outcome (or the id of the processed event it became),
// and Repeats and Correlations are reduced to the latest entry per key.
func (b *Batch) ToStore() *store.Batch {
	out := &store.Batch{Raw: make([]event.Raw, len(b.Raw))}
	became := make(map[int64]bool, len(b.Events))
	for _, e := range b.Events {
		became[e.RawEventID] = true
		out.New = append(out.New, *e)
	}
	for i, r := range b.Raw {
		r.Processed = true
		if o, ok := b.Outcomes[r.ID]; ok {
			r.Processed = !o.Failed
			r.ProcessedEventID = o.ProcessedEventID
			if o.Error != "" {
				r.ProcessingErrors = append(r.ProcessingErrors, o.Error)
			}
		} else if became[r.ID] {
			r.ProcessedEventID = r.ID
		}
		out.Raw[i] = r
	}
	rep := make(map[int64]int, len(b.Repeats))
	for _, r := range b.Repeats {
		if i, ok := rep[r.EventID]; ok {
			out.Repeats[i] = r
			continue
		}
		rep[r.EventID] = len(out.Repeats)
		out.Repeats = append(out.Repeats, r)
	}
	cor := make(map[string]int, len(b.Correlations))
	for _, c := range b.Correlations {
		if i, ok := cor[c.CorrelationID]; ok {
			out.Correlations[i] = c
			continue
		}
		cor[c.CorrelationID] = len(out.Correlations)
		out.Correlations = append(out.Correlations, c)
	}
	// event_data once, for the store and the processed stream. On an error
	// Data stays nil and the store reports it.
	_ = out.EncodeData()
	return out
}
