package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrTooLarge means a message is larger than the server or stream accepts.
var ErrTooLarge = errors.New("bus: message too large")

// Publish appends data to partition 0 of a lane; see PublishPartition.
func (b *Bus) Publish(ctx context.Context, lane Lane, msgID string, data []byte) error {
	return b.PublishPartition(ctx, lane, 0, msgID, data)
}

// PublishPartition appends data to a partition of a lane and returns once the stream has stored it
// (the JetStream publish acknowledgement; embedded, after an fsync). msgID
// is the message's identity: a second publish with the same id within the
// stream's duplicate window (2 minutes) is acknowledged without being stored
// again. Failures wrap ErrFull, ErrUnavailable or ErrTooLarge. Publish is
// safe for concurrent use; concurrent publishers share fsyncs poorly, so
// callers should put many events in one message.
func (b *Bus) PublishPartition(ctx context.Context, lane Lane, partition int, msgID string, data []byte) error {
	if err := b.checkTarget(lane, partition); err != nil {
		return err
	}
	m := &nats.Msg{Subject: b.subject(lane, partition), Data: data, Header: nats.Header{}}
	ack, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(b.opts.Stream))
	if err != nil {
		err = classify(err)
		b.met.publishFailed(err)
		return fmt.Errorf("bus: publish %s: %w", lane, err)
	}
	if ack.Duplicate {
		b.met.duplicates.Inc()
	}
	return nil
}

// checkTarget checks a lane and partition to publish to.
func (b *Bus) checkTarget(lane Lane, partition int) error {
	if !lane.Valid() {
		return fmt.Errorf("bus: publish: %w %q", ErrBadLane, lane)
	}
	if partition < 0 || partition >= b.opts.Partitions {
		return fmt.Errorf("bus: publish: %w: %d of %d", ErrBadPartition, partition, b.opts.Partitions)
	}
	return nil
}

// Message is one message of PublishBatch.
type Message struct {
	Lane Lane
	// Partition is the partition of the lane, in [0, Partitions()).
	Partition int
	MsgID     string
	Data      []byte
}

// BatchError is PublishBatch's error: Errs[i] is the error of message i, nil
// for those that were stored. errors.Is sees through it to the message
// errors.
type BatchError struct {
	Errs []error
}

// Error summarizes the failures.
func (e *BatchError) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return fmt.Sprintf("bus: publish batch: %d of %d messages failed, first: %v", n, len(e.Errs), first)
}

// Unwrap returns the message errors.
func (e *BatchError) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// PublishBatch publishes msgs with asynchronous JetStream publishes, at most
// batchWindow awaiting their acknowledgement at a time, and waits for every
// acknowledgement. The messages reach the stream in the order of msgs (one
// connection), so a partition's messages are stored in that order unless
// one fails. It returns nil when all were stored, or a *BatchError
// naming which were not; those may be published again with the same ids.
func (b *Bus) PublishBatch(ctx context.Context, msgs []Message) error {
	out := make([]asyncMsg, len(msgs))
	for i, msg := range msgs {
		out[i] = asyncMsg{msgID: msg.MsgID, data: msg.Data, refused: b.checkTarget(msg.Lane, msg.Partition)}
		if out[i].refused == nil {
			out[i].subject = b.subject(msg.Lane, msg.Partition)
		}
	}
	dups, err := publishAsync(ctx, b.js, b.opts.Stream, out, func(i int, err error) error {
		b.met.publishFailed(err)
		return fmt.Errorf("bus: publish %s: %w", msgs[i].Lane, err)
	})
	b.met.duplicates.Add(float64(dups))
	return err
}

// asyncMsg is one message of publishAsync. A message with refused set is
// not published: refused is its error.
type asyncMsg struct {
	subject, msgID string
	data           []byte
	refused        error
}

// publishAsync publishes msgs to stream with asynchronous JetStream
// publishes, at most batchWindow awaiting their acknowledgement at a time,
// and waits for every acknowledgement. The messages reach the stream in the
// order of msgs (one connection). It returns how many the stream
// acknowledged as duplicates and, when any failed, a *BatchError whose
// Errs[i] is message i's error: the refused error as it is, or the publish
// error (classified as ErrFull, ErrUnavailable or ErrTooLarge where it is
// one of those) as wrap(i, err) returns it.
func publishAsync(ctx context.Context, js jetstream.JetStream, stream string, msgs []asyncMsg, wrap func(i int, err error) error) (int, error) {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	errs := make([]error, len(msgs))
	dups, failed := 0, false
	fail := func(i int, err error) {
		errs[i] = classify(err)
		failed = true
	}
	wait := func(i int) {
		f := futures[i]
		if f == nil {
			return
		}
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case err := <-f.Err():
			fail(i, err)
		case <-ctx.Done():
			fail(i, ctx.Err())
		}
	}
	stall := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		stall = max(time.Millisecond, time.Until(d))
	}
	for i, msg := range msgs {
		if i >= batchWindow {
			wait(i - batchWindow)
		}
		if msg.refused != nil {
			errs[i] = msg.refused
			failed = true
			continue
		}
		if err := ctx.Err(); err != nil {
			fail(i, err)
			continue
		}
		m := &nats.Msg{Subject: msg.subject, Data: msg.data, Header: nats.Header{}}
		f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(msg.msgID),
			jetstream.WithExpectStream(stream), jetstream.WithStallWait(stall))
		if err != nil {
			fail(i, err)
			continue
		}
		futures[i] = f
	}
	for i := max(0, len(msgs)-batchWindow); i < len(msgs); i++ {
		wait(i)
	}
	if !failed {
		return dups, nil
	}
	for i, e := range errs {
		if e != nil && msgs[i].refused == nil {
			errs[i] = wrap(i, e)
		}
	}
	return dups, &BatchError{Errs: errs}
}

// batchWindow bounds the asynchronous publishes of one PublishBatch that
// await their acknowledgement; the connection allows maxAsyncPending in
// all, and a publish beyond that waits (up to the context's deadline).
const (
	batchWindow     = 128
	maxAsyncPending = 512
)

// classify wraps err in ErrFull, ErrUnavailable or ErrTooLarge when it is
// one of those conditions.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10023, // insufficient resources
			10028, // insufficient memory resources available
			10047: // insufficient storage resources available
			return fmt.Errorf("%w: %w", ErrFull, err)
		case jetstream.JSErrCodeStreamMessageExceedsMaximum:
			return fmt.Errorf("%w: %w", ErrTooLarge, err)
		case 10077: // stream store failed: {err}
			d := strings.ToLower(apiErr.Description)
			switch {
			case strings.Contains(d, "maximum bytes exceeded"),
				strings.Contains(d, "maximum messages exceeded"),
				strings.Contains(d, "maximum messages per subject exceeded"),
				strings.Contains(d, "resources exceeded"):
				return fmt.Errorf("%w: %w", ErrFull, err)
			case strings.Contains(d, "message too large"):
				return fmt.Errorf("%w: %w", ErrTooLarge, err)
			}
		}
		if apiErr.Code == 503 {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs),
		errors.Is(err, jetstream.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrServerShutdown),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrNoServers),
		errors.Is(err, nats.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
