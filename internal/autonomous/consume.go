package autonomous

import (
	"context"
	"errors"
	"time"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/decision"
)

// Fetcher is the decisions stream's durable consumer
// (bus.DecisionsConsumer).
type Fetcher interface {
	Fetch(ctx context.Context, n int, wait time.Duration) ([]bus.Msg, error)
}

// Bounds of the consumer loop.
const (
	fetchBatch = 16
	fetchWait  = time.Second
	// maxDeliveries is how often a message whose requests keep failing is
	// delivered before it is terminated (logged, its firings left
	// pending).
	maxDeliveries = 10
	retryDelay    = 5 * time.Second
)

// Consume takes decision requests from the stream until ctx ends. A
// message is acknowledged once each of its requests has its decision
// (HandleRequest is idempotent, so a redelivery after a crash decides
// nothing twice); a message that fails is given back and retried, and
// terminated after maxDeliveries.
func (s *Service) Consume(ctx context.Context, f Fetcher) error {
	for {
		msgs, err := f.Fetch(ctx, fetchBatch, fetchWait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("decision requests: fetch failed", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for i := range msgs {
			s.handle(ctx, &msgs[i])
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (s *Service) handle(ctx context.Context, m *bus.Msg) {
	reqs, err := decision.Unpack(m.Data)
	if err != nil {
		s.log.Error("decision request message unreadable: dropped", "msg_id", m.MsgID, "err", err)
		_ = m.Term()
		return
	}
	for _, r := range reqs {
		if err := s.HandleRequest(ctx, r); err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				_ = m.Nak(0)
				return
			}
			if m.NumDelivered >= maxDeliveries {
				s.log.Error("decision request failed too often: dropped; its firing stays pending", "execution_id", r.ExecutionID, "deliveries", m.NumDelivered, "err", err)
				_ = m.Term()
				return
			}
			s.log.Warn("decision request failed: retried", "execution_id", r.ExecutionID, "deliveries", m.NumDelivered, "err", err)
			_ = m.Nak(retryDelay)
			return
		}
	}
	if err := m.Ack(); err != nil {
		s.log.Warn("decision request: ack failed (it will be redelivered and found decided)", "msg_id", m.MsgID, "err", err)
	}
}
