// Package pipelinetest holds fakes for tests of the pipeline and its
// stages: Log, an intake log lane in memory whose redeliveries follow the
// delays the runner asks for (run it under testing/synctest to control
// them), and Store, a store in memory that applies repeats.
package pipelinetest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/store"
)

// Log is one lane of an intake log, in memory: a work queue whose Next
// hands out up to MaxBatch ready messages. A Nak makes the message ready
// again after its delay (a timer: under testing/synctest, fake time); an
// Ack or Term removes it. It has no AckWait: an unacknowledged message
// that is neither Nak'ed nor acknowledged stays pending.
type Log struct {
	// MaxBatch bounds what Next returns (default 64).
	MaxBatch int

	mu     sync.Mutex
	lane   bus.Lane
	nextID int64
	ready  []*record
	wake   chan struct{}
	msgs   map[string]*record
	order  []*record
	naks   []time.Duration
	inProg int
	acked  int
	held   bool
}

type record struct {
	id        string
	data      []byte
	delivered uint64
	done      bool
	queued    bool
	naked     bool // a Nak's timer is pending
}

// NewLog returns an empty Log of lane.
func NewLog(lane bus.Lane) *Log {
	return &Log{lane: lane, nextID: 1 << 40, wake: make(chan struct{}, 1), msgs: map[string]*record{}}
}

// Publish appends an envelope of items (received now) and returns the ids
// of its raw events.
func (l *Log) Publish(items ...intake.Item) []int64 {
	l.mu.Lock()
	base := l.nextID
	l.nextID += int64(len(items)) + 1
	l.mu.Unlock()
	env := intake.Envelope{Version: intake.EnvelopeVersion, BaseID: base, ReceivedAt: time.Now(), SourceType: event.SourceWebhook, Events: items}
	data, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	l.PublishRaw(strconv.FormatInt(base, 10), data)
	ids := make([]int64, len(items))
	for i := range ids {
		ids[i] = base + int64(i)
	}
	return ids
}

// PublishRaw appends a message.
func (l *Log) PublishRaw(msgID string, data []byte) {
	l.mu.Lock()
	r := &record{id: msgID, data: data, queued: true}
	l.msgs[msgID] = r
	l.order = append(l.order, r)
	l.ready = append(l.ready, r)
	l.mu.Unlock()
	l.signal()
}

func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Next implements pipeline.Consumer.
func (l *Log) Next(ctx context.Context) ([]bus.Msg, error) {
	for {
		l.mu.Lock()
		if len(l.ready) > 0 && !l.held {
			n := min(len(l.ready), l.maxBatch())
			out := make([]bus.Msg, n)
			for i, r := range l.ready[:n] {
				r.delivered++
				r.queued = false
				out[i] = bus.MsgOf(l.lane, &delivery{l: l, r: r, n: r.delivered})
			}
			l.ready = append(l.ready[:0], l.ready[n:]...)
			more := len(l.ready) > 0
			l.mu.Unlock()
			if more {
				l.signal()
			}
			return out, nil
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *Log) maxBatch() int {
	if l.MaxBatch <= 0 {
		return 64
	}
	return l.MaxBatch
}

// Hold makes Next wait, letting ready messages gather, until Release.
func (l *Log) Hold() {
	l.mu.Lock()
	l.held = true
	l.mu.Unlock()
}

// Release ends a Hold.
func (l *Log) Release() {
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	l.signal()
}

// Pending is the number of messages neither acknowledged nor terminated.
func (l *Log) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.msgs {
		if !r.done {
			n++
		}
	}
	return n
}

// Deliveries is how many times message msgID was delivered.
func (l *Log) Deliveries(msgID string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.msgs[msgID]; r != nil {
		return r.delivered
	}
	return 0
}

// Naks returns the delays of the Naks so far, in order.
func (l *Log) Naks() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.naks...)
}

// Acked is how many messages were acknowledged.
func (l *Log) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

// InProgress is how many InProgress calls were made.
func (l *Log) InProgress() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inProg
}

// delivery is one delivery of a record, as a jetstream.Msg. Methods that
// bus.Msg does not use are left to the nil embedded interface (they
// panic).
type delivery struct {
	jetstream.Msg
	l *Log
	r *record
	n uint64
}

func (d *delivery) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: d.n}, nil
}
func (d *delivery) Data() []byte { return d.r.data }
func (d *delivery) Headers() nats.Header {
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, d.r.id)
	return h
}
func (d *delivery) Reply() string { return "" }

var errSettled = errors.New("pipelinetest: message already acknowledged or terminated")

func (d *delivery) settle(acked bool) error {
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	if d.r.done {
		return errSettled
	}
	d.r.done = true
	if acked {
		d.l.acked++
	}
	return nil
}

func (d *delivery) Ack() error  { return d.settle(true) }
func (d *delivery) Term() error { return d.settle(false) }
func (d *delivery) Nak() error  { return d.NakWithDelay(0) }

func (d *delivery) NakWithDelay(delay time.Duration) error {
	d.l.mu.Lock()
	if d.r.done {
		d.l.mu.Unlock()
		return errSettled
	}
	d.l.naks = append(d.l.naks, delay)
	d.r.naked = true
	d.l.mu.Unlock()
	time.AfterFunc(delay, func() {
		d.l.mu.Lock()
		d.r.naked = false
		if !d.r.done && !d.r.queued {
			d.r.queued = true
			d.l.ready = append(d.l.ready, d.r)
		}
		d.l.mu.Unlock()
		d.l.signal()
	})
	return nil
}

// Expire makes every message that was delivered and neither acknowledged,
// terminated nor Nak'ed ready again, as the end of its AckWait (or a
// restart) would.
func (l *Log) Expire() {
	l.mu.Lock()
	for _, r := range l.order {
		if !r.done && !r.queued && !r.naked {
			r.queued = true
			l.ready = append(l.ready, r)
		}
	}
	l.mu.Unlock()
	l.signal()
}

func (d *delivery) InProgress() error {
	d.l.mu.Lock()
	d.l.inProg++
	d.l.mu.Unlock()
	return nil
}

// Store is a store in memory: it keeps raw and processed events, applies
// repeats to the processed events they name, and can be made to fail.
type Store struct {
	mu sync.Mutex
	// Raw and Processed are what was written, by id.
	Raw       map[int64]event.Raw
	Processed map[int64]event.Event
	// Dups are raw ids written twice; LostRepeats repeats of an event that
	// is not stored.
	Dups        []int64
	LostRepeats []store.Repeat
	// Writes counts WriteBatch calls, failed ones included.
	Writes int
	fail   int
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{Raw: map[int64]event.Raw{}, Processed: map[int64]event.Event{}}
}

// ErrDown is what a failing Store returns.
var ErrDown = errors.New("pipelinetest: database is down")

// FailWrites makes the next n WriteBatch calls fail with ErrDown.
func (s *Store) FailWrites(n int) {
	s.mu.Lock()
	s.fail = n
	s.mu.Unlock()
}

// WriteBatch implements pipeline.Store.
func (s *Store) WriteBatch(_ context.Context, b *store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Writes++
	if s.fail > 0 {
		s.fail--
		return ErrDown
	}
	for _, r := range b.Raw {
		if _, ok := s.Raw[r.ID]; ok {
			s.Dups = append(s.Dups, r.ID)
		}
		s.Raw[r.ID] = r
	}
	for _, e := range b.New {
		s.Processed[e.ID] = e
	}
	for _, rep := range b.Repeats {
		e, ok := s.Processed[rep.EventID]
		if !ok {
			s.LostRepeats = append(s.LostRepeats, rep)
			continue
		}
		e.OccurrenceCount, e.LastSeenAt = rep.OccurrenceCount, rep.LastSeenAt
		s.Processed[rep.EventID] = e
	}
	return nil
}

// StoredRawIDs implements pipeline.Store.
func (s *Store) StoredRawIDs(_ context.Context, ids []int64) (map[int64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]bool{}
	for _, id := range ids {
		if _, ok := s.Raw[id]; ok {
			out[id] = true
		}
	}
	return out, nil
}

// RawLen is the number of raw events stored.
func (s *Store) RawLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Raw)
}

// Lock locks the Store for reading its fields.
func (s *Store) Lock() { s.mu.Lock() }

// Unlock unlocks the Store.
func (s *Store) Unlock() { s.mu.Unlock() }
