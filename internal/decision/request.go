// Package decision is the contract between the rules engine and the
// Autonomous Response Service: the decision request that each firing of a
// trigger rule queues on the decisions stream (bus.Decisions). The rules
// engine encodes requests; the autonomous service decodes them, decides
// whether to investigate, automate, escalate or ignore, and records what
// became of the firing in its rules.rule_executions row.
package decision

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Version is the version of the request format; Decode refuses others.
const Version = 1

// Request asks the Autonomous Response Service to decide what to do about
// one firing of a trigger rule.
type Request struct {
	V int `json:"v"`
	// ExecutionID is the firing's rules.rule_executions row, pending until
	// the autonomous service takes it up. It is the request's identity.
	ExecutionID int64  `json:"execution_id"`
	RuleID      int64  `json:"rule_id"`
	RuleName    string `json:"rule_name"`
	// OccurrenceID is the raw event whose arrival made the rule fire
	// (Event's own raw event, or a repeat folded into it).
	OccurrenceID int64 `json:"occurrence_id"`
	// GroupKey is the rule's group key of the firing (its group_by
	// values), Occurrences how many matching occurrences the window held.
	GroupKey    string    `json:"group_key"`
	Occurrences int       `json:"occurrences"`
	FiredAt     time.Time `json:"fired_at"`
	// Event is the processed event that fired the rule, as stored.
	Event event.Event `json:"event"`
	// Correlations are the correlation groups that involve Event (its
	// time-based group, causal groups), as GET
	// /api/v1/events/{id}/correlations answers them but with at most
	// MaxRelated of each group's related event ids (the latest). Requests
	// of one event in one message carry the same correlations.
	Correlations []Correlation `json:"correlations"`
	// Templates are the rule's active response templates, the candidates
	// of the decision.
	Templates []store.ResponseTemplate `json:"templates"`
	// Truncated marks a request sent without its event's event_data
	// (the request alone would not fit in a message): read the event
	// from the store.
	Truncated bool `json:"truncated,omitempty"`
}

// MaxRelated bounds the related event ids a request's correlation lists:
// a busy host's time-based group can hold thousands.
const MaxRelated = 100

// Correlation is a correlation group in a request: the stored row, its
// related ids cut to the latest MaxRelated, and how many it has in all.
type Correlation struct {
	event.Correlation
	// RelatedTotal is the number of the group's related events; when it
	// is above len(RelatedEventIDs), read the group for all of them.
	RelatedTotal int `json:"related_total"`
}

// Bounded returns c as a request carries it.
func Bounded(c event.Correlation) Correlation {
	out := Correlation{Correlation: c, RelatedTotal: len(c.RelatedEventIDs)}
	if n := len(c.RelatedEventIDs); n > MaxRelated {
		out.RelatedEventIDs = c.RelatedEventIDs[n-MaxRelated:]
	}
	return out
}

// Message is the body of one stream message: the requests of one batch
// of the rules engine, in firing order. Requests are packed so that the
// stream stores (and, embedded, fsyncs) one message per batch rather than
// one per firing.
type Message struct {
	V        int        `json:"v"`
	Requests []*Request `json:"requests"`
}

// Packed is one encoded stream message and its id.
type Packed struct {
	// MsgID identifies the message by the executions it carries: the
	// stream drops a message published again with the same requests
	// within its duplicate window. A consumer must still treat requests as
	// idempotent by ExecutionID: a redelivered batch of the rules engine
	// may pack a request again beside others.
	MsgID string
	Data  []byte
}

// Pack encodes reqs into messages of at most maxBytes each (0: no bound),
// stamping their versions. A request that does not fit in a message of
// its own even without its event's data is an error.
func Pack(reqs []*Request, maxBytes int) ([]Packed, error) {
	var out []Packed
	var cur [][]byte
	var first, last int64
	size := 0
	const frame = len(`{"v":1,"requests":[]}`)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		data := make([]byte, 0, size+frame)
		data = append(data, `{"v":`+strconv.Itoa(Version)+`,"requests":[`...)
		for i, b := range cur {
			if i > 0 {
				data = append(data, ',')
			}
			data = append(data, b...)
		}
		data = append(data, "]}"...)
		out = append(out, Packed{MsgID: fmt.Sprintf("decision-requests-%d-%d-%d", first, last, len(cur)), Data: data})
		cur, size = nil, 0
	}
	events := map[eventKey]encoded{} // several rules often fire on one event
	for _, r := range reqs {
		b, err := encode(r, events)
		if err != nil {
			return nil, err
		}
		if maxBytes > 0 && len(b)+frame > maxBytes {
			// Too large alone: send it without the event's data.
			cp := *r
			cp.Event.Data, cp.Event.Asset, cp.Event.Scoring = nil, nil, nil
			cp.Truncated = true
			if b, err = encode(&cp, nil); err != nil {
				return nil, err
			}
			if len(b)+frame > maxBytes {
				return nil, fmt.Errorf("decision: the request of execution %d is %d bytes, above the message limit %d even without its event's data", r.ExecutionID, len(b), maxBytes)
			}
		}
		if maxBytes > 0 && len(cur) > 0 && size+len(cur)+len(b)+frame > maxBytes {
			flush()
		}
		if len(cur) == 0 {
			first = r.ExecutionID
		}
		last = r.ExecutionID
		cur = append(cur, b)
		size += len(b)
	}
	flush()
	return out, nil
}

// eventKey tells apart the events of requests: one processed event as
// one record of it saw it.
type eventKey struct {
	id, raw int64
	count   int
	seen    int64
}

// wireRequest is a request with its event and correlations encoded
// already.
type wireRequest struct {
	*Request
	Event        json.RawMessage `json:"event"`
	Correlations json.RawMessage `json:"correlations"`
}

// encoded is the encoding of a request's event and correlations.
type encoded struct{ event, corrs json.RawMessage }

// encode encodes one request, stamping its version; events (when not nil)
// caches the encoding of its event and its correlations (the engine reads
// them once per event) for the next requests of the event.
func encode(r *Request, events map[eventKey]encoded) ([]byte, error) {
	r.V = Version
	if r.Correlations == nil {
		r.Correlations = []Correlation{}
	}
	if r.Templates == nil {
		r.Templates = []store.ResponseTemplate{}
	}
	k := eventKey{r.Event.ID, r.Event.RawEventID, r.Event.OccurrenceCount, r.Event.LastSeenAt.UnixNano()}
	enc, ok := events[k]
	if !ok {
		var err error
		if enc.event, err = json.Marshal(r.Event); err != nil {
			return nil, fmt.Errorf("decision: encode the event of execution %d: %w", r.ExecutionID, err)
		}
		if enc.corrs, err = json.Marshal(r.Correlations); err != nil {
			return nil, fmt.Errorf("decision: encode the correlations of execution %d: %w", r.ExecutionID, err)
		}
		if events != nil {
			events[k] = enc
		}
	}
	b, err := json.Marshal(wireRequest{Request: r, Event: enc.event, Correlations: enc.corrs})
	if err != nil {
		return nil, fmt.Errorf("decision: encode request of execution %d: %w", r.ExecutionID, err)
	}
	return b, nil
}

// ErrVersion marks a message or request of a version that Unpack does
// not know.
var ErrVersion = errors.New("decision: unknown version")

// Unpack decodes a stream message into its requests.
func Unpack(b []byte) ([]*Request, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decision: decode message: %w", err)
	}
	if m.V != Version {
		return nil, fmt.Errorf("%w: message version %d (this build reads %d)", ErrVersion, m.V, Version)
	}
	for i, r := range m.Requests {
		switch {
		case r == nil || r.ExecutionID == 0:
			return nil, fmt.Errorf("decision: decode message: request %d has no execution_id", i)
		case r.V != Version:
			return nil, fmt.Errorf("%w: request version %d (this build reads %d)", ErrVersion, r.V, Version)
		}
	}
	return m.Requests, nil
}
