// Package normalize is the first pipeline stage: it turns each raw event of
// a batch, as its adapter accepted it, into reflex's common event (see
// event.Event), and fixes the event's time so that it can always be stored
// (see docs/timestamps.md).
//
// For webhook events the mapping is:
//
//	id, raw_event_id   the raw event's id
//	event_type         event_type, default "generic"
//	severity           severity through event.ParseSeverity, default info
//	source_system      the raw event's source system (the payload's source, default "webhook")
//	source_host        host, trimmed and lowercased (may be empty)
//	source_service     service
//	title              title, or else message cut to 500 characters (and trailing space)
//	description        description, or else message when the title is not the whole message
//	event_data         {"metadata": {...}, "extra": {...}, "message": "...", "original_timestamp": ...}
//	tags               tags, lowercased, deduplicated, empty ones dropped (+ "timestamp_adjusted")
//	occurred_at        timestamp (to the microsecond), or received_at when absent or implausible
//	received_at        the raw event's receipt time
//	processed_at       the batch's Now
//	last_seen_at       received_at (receipt times order repeats; a source's clock may be wrong)
//	occurrence_count   1
//	fingerprint        event.Fingerprint
//
// event_data holds only what the payload had: "metadata" is the payload's
// metadata object as sent (so that rules address metadata.cpu_usage),
// "extra" the unknown top-level fields by name, "message" the message when
// neither title nor description holds it in full (both were given, or only
// a description and the message was cut for the title), and
// "original_timestamp" the source's timestamp when it was replaced. Numbers
// in event_data are json.Number, exactly as sent. Later stages add their own
// keys beside these ("asset", "scoring").
package normalize

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Defaults of Options.
const (
	// DefaultMaxAge is the oldest an occurred_at may be relative to
	// received_at: the default retention, so that an event is never
	// written into a partition that retention has dropped.
	DefaultMaxAge = 90 * 24 * time.Hour
	// DefaultMaxFuture is how far ahead of received_at an occurred_at may
	// be, for clock skew between a source and reflex.
	DefaultMaxFuture = 5 * time.Minute
)

// TagTimestampAdjusted marks an event whose occurred_at is its receipt time
// because the source's timestamp was out of bounds.
const TagTimestampAdjusted = "timestamp_adjusted"

// Keys of event_data set by the normalizer.
const (
	DataMetadata          = "metadata"
	DataExtra             = "extra"
	DataMessage           = "message"
	DataOriginalTimestamp = "original_timestamp"
)

// Options configures a Normalizer. The zero value is a safe default.
type Options struct {
	// MaxAge bounds how old occurred_at may be relative to received_at;
	// an older timestamp is replaced by received_at. It should equal the
	// store's retention. Zero or less means DefaultMaxAge.
	MaxAge time.Duration
	// MaxFuture bounds how far ahead of received_at occurred_at may be;
	// a later timestamp is replaced by received_at. Zero or less means
	// DefaultMaxFuture.
	MaxFuture time.Duration
	// Logger receives a warning per raw event that cannot be normalized.
	// Nil discards.
	Logger *slog.Logger
	// Registerer registers the normalizer's metrics; nil does not
	// register them.
	Registerer prometheus.Registerer
}

// Normalizer is the normalize stage. It keeps no state between batches and
// is safe for concurrent use.
type Normalizer struct {
	maxAge    time.Duration
	maxFuture time.Duration
	log       *slog.Logger
	failed    *prometheus.CounterVec
	adjusted  *prometheus.CounterVec
}

var _ pipeline.Stage = (*Normalizer)(nil)

// New returns a Normalizer. If the metrics are already registered with
// opts.Registerer, it shares the registered ones.
func New(opts Options) *Normalizer {
	n := &Normalizer{
		maxAge:    opts.MaxAge,
		maxFuture: opts.MaxFuture,
		log:       opts.Logger,
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_normalize_failed_total",
			Help: "Raw events that could not be normalized (they are stored with a processing error), by source type.",
		}, []string{"source_type"}),
		adjusted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_normalize_timestamp_adjusted_total",
			Help: "Events whose source timestamp was too old or too far in the future and was replaced by the receipt time, by source type.",
		}, []string{"source_type"}),
	}
	if n.maxAge <= 0 {
		n.maxAge = DefaultMaxAge
	}
	if n.maxFuture <= 0 {
		n.maxFuture = DefaultMaxFuture
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "normalize")
	if opts.Registerer != nil {
		for _, c := range []**prometheus.CounterVec{&n.failed, &n.adjusted} {
			if err := promutil.Register(opts.Registerer, c); err != nil {
				n.log.Warn("register metric", "err", err)
			}
		}
	}
	return n
}

// Process appends one event per raw event of b to b.Events, in the order of
// b.Raw. A raw event that cannot be normalized gets an Outcome with the
// error instead. It returns an error only when ctx is done.
func (n *Normalizer) Process(ctx context.Context, b *pipeline.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range b.Raw {
		raw := &b.Raw[i]
		e, adjusted, err := n.normalize(raw, b.Now)
		if err != nil {
			n.failed.WithLabelValues(sourceLabel(raw.SourceType)).Inc()
			n.log.Warn("cannot normalize raw event", "event_id", raw.ID, "source_type", string(raw.SourceType), "err", err)
			b.SetOutcome(raw.ID, pipeline.Outcome{Error: err.Error()})
			continue
		}
		if adjusted {
			n.adjusted.WithLabelValues(sourceLabel(raw.SourceType)).Inc()
		}
		b.Events = append(b.Events, e)
	}
	return nil
}

// Normalize builds the event of one raw event, processed at now. The error
// says why raw cannot be normalized.
func (n *Normalizer) Normalize(raw event.Raw, now time.Time) (*event.Event, error) {
	e, _, err := n.normalize(&raw, now)
	return e, err
}

func (n *Normalizer) normalize(raw *event.Raw, now time.Time) (*event.Event, bool, error) {
	switch raw.SourceType {
	case event.SourceWebhook:
		return n.webhook(raw, now)
	}
	return nil, false, fmt.Errorf("normalize: unsupported source type %q", clip(string(raw.SourceType), 50))
}

// webhook normalizes a raw webhook event.
func (n *Normalizer) webhook(raw *event.Raw, now time.Time) (*event.Event, bool, error) {
	p, err := webhook.Parse(raw.Data)
	if err != nil {
		return nil, false, fmt.Errorf("normalize: webhook event: %w", err)
	}
	received := raw.ReceivedAt
	if received.IsZero() {
		received = event.TimeOfID(raw.ID)
	}
	source := raw.SourceSystem
	if source == "" || utf8.RuneCountInString(source) > webhook.MaxSourceLen {
		source = p.Source
	}
	e := &event.Event{
		ID:              raw.ID,
		RawEventID:      raw.ID,
		EventType:       p.EventType,
		Severity:        p.Severity,
		SourceSystem:    source,
		SourceType:      raw.SourceType,
		SourceHost:      strings.ToLower(p.Host),
		SourceService:   p.Service,
		Title:           p.Title,
		Description:     p.Description,
		ReceivedAt:      received,
		ProcessedAt:     now,
		OccurrenceCount: 1,
		LastSeenAt:      received,
	}
	if e.Title == "" {
		// A cut message may end in space; the title should not.
		e.Title = strings.TrimRightFunc(truncate(p.Message, webhook.MaxTitleLen), unicode.IsSpace)
	}
	if e.Description == "" && e.Title != p.Message {
		e.Description = p.Message
	}
	if p.Metadata != nil {
		e.SetData(DataMetadata, p.Metadata)
	}
	if len(p.Extra) > 0 {
		e.SetData(DataExtra, p.Extra)
	}
	if e.Title != p.Message && e.Description != p.Message {
		e.SetData(DataMessage, p.Message)
	}
	e.Tags = tags(p.Tags)

	adjusted := false
	e.OccurredAt = received
	if p.TimestampRaw != nil {
		t := p.Timestamp.Truncate(time.Microsecond)
		if t.Before(received.Add(-n.maxAge)) || t.After(received.Add(n.maxFuture)) {
			adjusted = true
			e.SetData(DataOriginalTimestamp, original(p.TimestampRaw))
			e.Tag(TagTimestampAdjusted)
		} else {
			e.OccurredAt = t
		}
	}
	e.Fingerprint = event.Fingerprint(e)
	return e, adjusted, nil
}

// tags lowercases and deduplicates tags, dropping empty ones and cutting
// each to webhook.MaxTagLen characters.
func tags(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, t := range in {
		t = truncate(strings.ToLower(strings.TrimSpace(t)), webhook.MaxTagLen)
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// original decodes the source's timestamp value for event_data: a string,
// or a json.Number.
func original(raw json.RawMessage) any {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return json.Number(raw)
}

// truncate cuts s to at most n runes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// clip shortens s to at most n characters for an error message.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	return truncate(s, n) + "..."
}

// sourceLabel bounds the source_type metric label to the known types.
func sourceLabel(t event.SourceType) string {
	switch t {
	case event.SourceWebhook, event.SourceSyslog, event.SourceSNMP, event.SourceEmail, event.SourceMetrics, event.SourceDB:
		return string(t)
	}
	return "unknown"
}
