// Package intake puts accepted events on the intake log (JetStream) and
// answers only once the log has acknowledged them. Every adapter submits
// through it.
package intake

import (
	"encoding/json"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// Envelope is one intake log message: a block of events accepted together,
// with consecutive ids starting at BaseID, all of one lane and one partition
// (their hosts map to it with event.PartitionOf). The message's JetStream
// msg id is BaseID in decimal, so a republished envelope is deduplicated by
// the log and a redelivered one maps to the same event ids.
type Envelope struct {
	Version    int              `json:"v"`
	BaseID     int64            `json:"base_id"`
	ReceivedAt time.Time        `json:"received_at"`
	SourceType event.SourceType `json:"source_type"`
	Events     []Item           `json:"events"`
}

// Item is one accepted event inside an Envelope.
type Item struct {
	// SourceSystem is the monitoring system that sent it (the webhook
	// payload's "source").
	SourceSystem string `json:"source"`
	// Severity is the severity intake parsed, which picks the lane; the
	// normalizer parses it again from Data.
	Severity event.Severity `json:"severity"`
	// Data is the event exactly as the source sent it.
	Data json.RawMessage `json:"data"`
	// Host is the event's host as its normalizer will set it (trimmed and
	// lowercased); it picks the envelope's partition. It is not encoded:
	// the normalizer reads the host from Data.
	Host string `json:"-"`
}

// Raw returns the raw events of the envelope.
func (e *Envelope) Raw() []event.Raw {
	out := make([]event.Raw, len(e.Events))
	for i, it := range e.Events {
		out[i] = event.Raw{
			ID:           e.BaseID + int64(i),
			SourceSystem: it.SourceSystem,
			SourceType:   e.SourceType,
			Data:         it.Data,
			ReceivedAt:   e.ReceivedAt,
		}
	}
	return out
}
