package dbcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kinds of Payload.
const (
	// KindCheck is a check whose condition began (firing) or ceased
	// (resolved) to hold.
	KindCheck = "check"
	// KindCheckFailed is a check that began (firing) or ceased
	// (resolved) to fail: its query errored or timed out.
	KindCheckFailed = "check_failed"
	// KindNotify is a PostgreSQL notification.
	KindNotify = "notify"
)

// EventTypeCheckFailed is the event type of a KindCheckFailed event.
const EventTypeCheckFailed = "check_failed"

// Payload is the raw event the adapter submits (events.raw_events.raw_data):
// what the check saw or the notification said, and what the configuration
// made of it. Normalizer maps it to the event.
type Payload struct {
	Kind     string `json:"kind"`
	Database string `json:"database"`
	Driver   string `json:"driver"`
	Host     string `json:"host,omitempty"`
	Severity string `json:"severity"`
	// At is when the check ran or the notification arrived.
	At time.Time `json:"at"`

	// Of a check (KindCheck, KindCheckFailed).
	Check     string   `json:"check,omitempty"`
	Builtin   string   `json:"builtin,omitempty"`
	Condition string   `json:"condition,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	// Status is firing or resolved.
	Status string `json:"status,omitempty"`
	// Since is when the condition began to hold (or the check to fail).
	Since *time.Time `json:"since,omitempty"`
	Title string     `json:"title,omitempty"`
	// Value, RowCount and Rows are the result of the run (see Result).
	Value    *float64         `json:"value,omitempty"`
	RowCount int              `json:"row_count"`
	Rows     []map[string]any `json:"rows,omitempty"`
	// Error is why the check failed, redacted.
	Error string `json:"error,omitempty"`

	// Of a notification (KindNotify).
	Channel   string `json:"channel,omitempty"`
	PID       uint32 `json:"pid,omitempty"`
	EventType string `json:"event_type,omitempty"`
	// Text is the notification's payload, as sent.
	Text string `json:"text,omitempty"`
}

// ErrPayload is wrapped by the errors of ParsePayload.
var ErrPayload = errors.New("dbcheck: payload")

// ParsePayload decodes a raw event's data. Numbers in rows are json.Number.
func ParsePayload(data []byte) (*Payload, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &Payload{}
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPayload, err)
	}
	switch p.Kind {
	case KindCheck, KindCheckFailed, KindNotify:
	default:
		return nil, fmt.Errorf("%w: kind %q: want check, check_failed or notify", ErrPayload, p.Kind)
	}
	if p.Database == "" {
		return nil, fmt.Errorf("%w: no database", ErrPayload)
	}
	if p.Kind != KindNotify && p.Check == "" {
		return nil, fmt.Errorf("%w: no check", ErrPayload)
	}
	return p, nil
}
