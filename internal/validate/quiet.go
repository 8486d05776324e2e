package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/store"
)

// Defaults of the quiet check.
const (
	// DefaultLookback is Options.Lookback's default: how far around the
	// window events are read by occurred_at (the source's clock), so
	// that an event whose source clock is off by up to this much, or a
	// repeat folded into an event that occurred before the window, is
	// still seen.
	DefaultLookback = time.Hour
	// DefaultMaxScan is Options.MaxScan's default.
	DefaultMaxScan = 10_000
)

// ErrNotDue is the answer of CheckQuiet before the check's Due time.
var ErrNotDue = errors.New("validate: quiet check is not due yet")

// QuietCheck is the deferred check of no_new_event_minutes: whether an
// event of the triggering pattern came in for the host in (From, Due].
// It is plain data, derivable again from an execution (its event and
// the step's finish time), so that a restarted service can schedule the
// pending ones anew.
type QuietCheck struct {
	// Host is the triggering event's source_host.
	Host string `json:"host"`
	// Match is the triggering event's pattern.
	Match Match `json:"match"`
	// EventID is the triggering event: a repeat folded into it by
	// deduplication (its last_seen_at moving into the window) counts as
	// a new event too.
	EventID int64 `json:"event_id,omitempty"`
	// From is when the step finished; Due is From plus the minutes.
	From time.Time `json:"from"`
	Due  time.Time `json:"due"`
}

// Match is the pattern of a triggering event: its event type, and its
// log template when it has one, else its fingerprint (the same source,
// host, service, type, severity and title once digits are masked).
type Match struct {
	EventType string `json:"event_type"`
	// TemplateID is the event's log template (event_data.template.id);
	// 0 when it has none.
	TemplateID int64 `json:"template_id,omitempty"`
	// Fingerprint is the event's fingerprint, used when TemplateID is 0;
	// "" matches any event of the type.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Matches reports whether e is of the pattern (its host aside).
func (m Match) Matches(e *event.Event) bool {
	switch {
	case e.EventType != m.EventType:
		return false
	case m.TemplateID != 0:
		return e.Template != nil && e.Template.ID == m.TemplateID
	case m.Fingerprint != "":
		return e.Fingerprint == m.Fingerprint
	}
	return true
}

// String describes the pattern for a detail.
func (m Match) String() string {
	switch {
	case m.TemplateID != 0:
		return fmt.Sprintf("event type %q, log template %d", m.EventType, m.TemplateID)
	case m.Fingerprint != "":
		return fmt.Sprintf("event type %q, fingerprint %s", m.EventType, m.Fingerprint)
	}
	return fmt.Sprintf("event type %q", m.EventType)
}

// QuietFor returns the QuietCheck of the triggering event e for a step
// that finished at from: minutes after it, e's pattern on e's host. It
// fails when e has no host or no event type, which the check needs.
func QuietFor(e *event.Event, from time.Time, minutes int) (QuietCheck, error) {
	switch {
	case e == nil:
		return QuietCheck{}, errors.New("no triggering event in the step's data")
	case e.SourceHost == "":
		return QuietCheck{}, fmt.Errorf("the triggering event %d has no source_host", e.ID)
	case e.EventType == "":
		return QuietCheck{}, fmt.Errorf("the triggering event %d has no event_type", e.ID)
	case minutes <= 0:
		return QuietCheck{}, fmt.Errorf("%d minutes: want above 0", minutes)
	}
	m := Match{EventType: e.EventType}
	if e.Template != nil && e.Template.ID != 0 {
		m.TemplateID = e.Template.ID
	} else {
		m.Fingerprint = e.Fingerprint
	}
	return QuietCheck{
		Host: e.SourceHost, Match: m, EventID: e.ID,
		From: from, Due: from.Add(time.Duration(minutes) * time.Minute),
	}, nil
}

// quietCheck is the QuietCheck of a run: the event of data, from the
// run's end (now when the result has none).
func (v *Validator) quietCheck(minutes int, data map[string]any, res executor.Result) (QuietCheck, error) {
	e, err := dataEvent(data)
	if err != nil {
		return QuietCheck{}, err
	}
	from := res.Finished
	if from.IsZero() {
		from = v.now()
	}
	return QuietFor(e, from, minutes)
}

// dataEvent reads data["event"] (the event as the API shows it, or an
// event.Event) into an event.Event.
func dataEvent(data map[string]any) (*event.Event, error) {
	raw, ok := data["event"]
	if !ok || raw == nil {
		return nil, errors.New("no triggering event in the step's data")
	}
	switch e := raw.(type) {
	case *event.Event:
		return e, nil
	case event.Event:
		return &e, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("the step's event cannot be read: %w", err)
	}
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("the step's event cannot be read: %w", err)
	}
	return &e, nil
}

// CheckQuiet answers a quiet check once it is due (Now at or after
// q.Due): ok when no event of q's pattern came in for q.Host in
// (q.From, q.Due], by the time reflex received it (received_at, or
// last_seen_at for a repeat folded into an event); detail says what was
// found. Before Due it answers ErrNotDue. An error means it could not
// judge (the store failed, ctx ended): try again later.
//
// Events are read by occurred_at from Lookback before From to Lookback
// after Due. A repeat folded into an event whose latest repeat came
// after Due is not seen; checked at Due (the service checks 30 s after
// it), there is none.
// A host with more than MaxScan events of the type in that range is not
// judged quiet.
func (v *Validator) CheckQuiet(ctx context.Context, q QuietCheck) (ok bool, detail string, err error) {
	if now := v.now(); now.Before(q.Due) {
		return false, "", fmt.Errorf("%w: due at %s, now %s", ErrNotDue, q.Due.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if v.events == nil {
		return false, "", errors.New("validate: quiet check: no event store configured")
	}
	in := func(t time.Time) bool { return t.After(q.From) && !t.After(q.Due) }
	if q.EventID != 0 {
		evs, err := v.events.EventsByID(ctx, []int64{q.EventID})
		if err != nil {
			return false, "", fmt.Errorf("validate: quiet check: read event %d: %w", q.EventID, err)
		}
		for _, e := range evs {
			if in(e.LastSeenAt) {
				return false, fmt.Sprintf("event %d repeated at %s (%d occurrences) within %s of the action",
					e.ID, stamp(e.LastSeenAt), e.OccurrenceCount, q.Due.Sub(q.From)), nil
			}
		}
	}
	query := store.EventQuery{
		Host: q.Host, EventType: q.Match.EventType,
		Since: q.From.Add(-v.lookback), Until: q.Due.Add(v.lookback),
		OldestFirst: true, Limit: 1000,
	}
	scanned := 0
	for {
		page, err := v.events.Events(ctx, query)
		if err != nil {
			return false, "", fmt.Errorf("validate: quiet check: read events of %s: %w", q.Host, err)
		}
		if len(page.Unreadable) > 0 {
			v.log.WarnContext(ctx, "quiet check skipped unreadable events", "host", q.Host, "unreadable", len(page.Unreadable))
		}
		for i := range page.Events {
			e := &page.Events[i]
			if e.ID == q.EventID || e.SourceHost != q.Host || !q.Match.Matches(e) {
				continue
			}
			switch {
			case in(e.ReceivedAt):
				return false, fmt.Sprintf("new event %d (%s) on %s at %s, within %s of the action",
					e.ID, q.Match, q.Host, stamp(e.ReceivedAt), q.Due.Sub(q.From)), nil
			case in(e.LastSeenAt):
				return false, fmt.Sprintf("event %d (%s) on %s repeated at %s, within %s of the action",
					e.ID, q.Match, q.Host, stamp(e.LastSeenAt), q.Due.Sub(q.From)), nil
			}
		}
		scanned += len(page.Events) + len(page.Unreadable)
		if !page.More {
			break
		}
		if scanned >= v.maxScan {
			return false, fmt.Sprintf("more than %d events of type %q on %s around the window: not judged quiet",
				v.maxScan, q.Match.EventType, q.Host), nil
		}
		query.AfterTime, query.AfterID = page.NextTime, page.NextID
	}
	return true, fmt.Sprintf("no new event (%s) on %s within %s of the action", q.Match, q.Host, q.Due.Sub(q.From)), nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
