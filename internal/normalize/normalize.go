// Package normalize is the first pipeline stage: it turns each raw event of
// a batch, as its adapter accepted it, into reflex's common event (see
// event.Event), and fixes the event's time so that it can always be stored
// (see docs/timestamps.md).
//
// Each adapter owns the mapping of its own payloads: it implements
// Normalizer, and the server registers it for the adapter's source type in
// Options.Normalizers (the webhook's is webhook.Normalizer, in
// internal/ingest/webhook). The stage dispatches each raw event to the
// normalizer of its source type, then applies what every source shares
// (Clean):
//
//	id, raw_event_id   the raw event's id
//	source_type        the raw event's source type
//	source_system      the raw event's source system, or else the normalizer's, or else the source type
//	event_type         default "generic"
//	severity           default info when the normalizer gave none
//	source_host        trimmed, lowercased, cut to 255 characters (may be empty)
//	title              cut to 500 characters and trailing space; default the description's start, or the event type
//	tags               lowercased, deduplicated, empty ones dropped, each cut to 50 characters
//	occurred_at        the source's timestamp (to the microsecond), or received_at when absent or implausible
//	received_at        the raw event's receipt time (default the time of its id)
//	processed_at       the batch's Now
//	last_seen_at       received_at (receipt times order repeats; a source's clock may be wrong)
//	occurrence_count   1
//	fingerprint        event.Fingerprint
//
// Text fields are made valid UTF-8 without NUL bytes. When the source's
// timestamp is replaced, event_data keeps it as "original_timestamp" and
// the event is tagged "timestamp_adjusted". A raw event whose source type
// has no normalizer goes to Options.Fallback, or else fails with
// ErrNoNormalizer (it is stored raw with the error, never dropped).
package normalize

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
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
	// DefaultEventType is the event type of an event whose normalizer
	// gave none.
	DefaultEventType = "generic"
)

// Column sizes of events.processed_events, in characters: Clean cuts the
// fields to them.
const (
	MaxSourceLen    = 100
	MaxEventTypeLen = 100
	MaxHostLen      = 255
	MaxServiceLen   = 100
	MaxTitleLen     = 500
	MaxTagLen       = 50
)

// TagTimestampAdjusted marks an event whose occurred_at is its receipt time
// because the source's timestamp was out of bounds.
const TagTimestampAdjusted = "timestamp_adjusted"

// Keys of event_data set by normalizers. DataOriginalTimestamp is set by
// the stage; the others are the webhook's and are kept here so that every
// adapter uses the same names for the same things.
const (
	DataMetadata          = "metadata"
	DataExtra             = "extra"
	DataMessage           = "message"
	DataOriginalTimestamp = "original_timestamp"
)

// ErrNoNormalizer means a raw event's source type has no normalizer
// registered (and there is no fallback).
var ErrNoNormalizer = errors.New("normalize: no normalizer for source type")

// Normalizer maps a raw event of one source type to a Draft. It is an
// adapter's half of normalization: it decodes raw.Data and fills in the
// event's fields; the stage does the rest (see Clean). It must be safe for
// concurrent use and must not keep raw. An error says why raw cannot be
// normalized: the raw event is stored with it as its processing error.
type Normalizer interface {
	Normalize(raw *event.Raw) (Draft, error)
}

// NormalizerFunc adapts a function to Normalizer.
type NormalizerFunc func(raw *event.Raw) (Draft, error)

// Normalize calls f.
func (f NormalizerFunc) Normalize(raw *event.Raw) (Draft, error) { return f(raw) }

// Draft is what a Normalizer makes of a raw event.
type Draft struct {
	// Event has the fields the source gave: EventType, Severity,
	// SourceSystem, SourceHost, SourceService, Title, Description, Tags
	// and Data. The stage sets the ids, times, source type, counts and
	// fingerprint; a normalizer need not.
	Event *event.Event
	// Timestamp is the source's time of the event. The source gave none
	// when it is zero and OriginalTimestamp is nil.
	Timestamp time.Time
	// OriginalTimestamp is Timestamp as the source wrote it (a string or
	// a json.Number), kept in event_data when Timestamp is out of bounds.
	// Nil means Timestamp formatted in RFC 3339.
	OriginalTimestamp any
}

// Options configures a Stage. The zero value is a safe default, with no
// normalizer registered.
type Options struct {
	// Normalizers maps each source type to its adapter's normalizer.
	Normalizers map[event.SourceType]Normalizer
	// Fallback normalizes raw events of a source type that is not in
	// Normalizers. Nil: they fail with ErrNoNormalizer.
	Fallback Normalizer
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
	// Registerer registers the stage's metrics; nil does not register
	// them.
	Registerer prometheus.Registerer
}

// Stage is the normalize stage. It keeps no state between batches and is
// safe for concurrent use.
type Stage struct {
	byType    map[event.SourceType]Normalizer
	fallback  Normalizer
	maxAge    time.Duration
	maxFuture time.Duration
	log       *slog.Logger
	failed    *prometheus.CounterVec
	adjusted  *prometheus.CounterVec
}

var _ pipeline.Stage = (*Stage)(nil)

// New returns a Stage. If the metrics are already registered with
// opts.Registerer, it shares the registered ones. A nil normalizer in
// opts.Normalizers is an error.
func New(opts Options) (*Stage, error) {
	n := &Stage{
		byType:    make(map[event.SourceType]Normalizer, len(opts.Normalizers)),
		fallback:  opts.Fallback,
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
	for t, norm := range opts.Normalizers {
		if norm == nil {
			return nil, fmt.Errorf("normalize: nil normalizer for source type %q", t)
		}
		n.byType[t] = norm
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
	return n, nil
}

// Process appends one event per raw event of b to b.Events, in the order of
// b.Raw. A raw event that cannot be normalized gets an Outcome with the
// error instead. It returns an error only when ctx is done.
func (n *Stage) Process(ctx context.Context, b *pipeline.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range b.Raw {
		raw := &b.Raw[i]
		e, adjusted, err := n.normalize(raw, b.Now)
		if err != nil {
			n.failed.WithLabelValues(sourceLabel(raw.SourceType)).Inc()
			n.log.Warn("cannot normalize raw event", "event_id", raw.ID, "source_type", clip(string(raw.SourceType), 50), "err", err)
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
func (n *Stage) Normalize(raw event.Raw, now time.Time) (*event.Event, error) {
	e, _, err := n.normalize(&raw, now)
	return e, err
}

func (n *Stage) normalize(raw *event.Raw, now time.Time) (*event.Event, bool, error) {
	norm, ok := n.byType[raw.SourceType]
	if !ok {
		norm = n.fallback
	}
	if norm == nil {
		return nil, false, fmt.Errorf("%w %q", ErrNoNormalizer, clip(string(raw.SourceType), 50))
	}
	d, err := norm.Normalize(raw)
	if err == nil && d.Event == nil {
		err = errors.New("normalizer returned no event")
	}
	if err != nil {
		return nil, false, fmt.Errorf("normalize: %s event: %w", clip(string(raw.SourceType), 50), err)
	}
	adjusted := Clean(d, raw, now, n.maxAge, n.maxFuture)
	return d.Event, adjusted, nil
}

// Clean applies to d.Event what every source shares (see the package
// documentation) and reports whether the source's timestamp was replaced.
// maxAge and maxFuture bound the timestamp relative to the receipt time.
func Clean(d Draft, raw *event.Raw, now time.Time, maxAge, maxFuture time.Duration) bool {
	e := d.Event
	received := raw.ReceivedAt
	if received.IsZero() {
		received = event.TimeOfID(raw.ID)
	}
	e.ID = raw.ID
	e.RawEventID = raw.ID
	e.SourceType = raw.SourceType
	e.ReceivedAt = received
	e.ProcessedAt = now
	e.LastSeenAt = received
	e.OccurrenceCount = 1

	if s := text(raw.SourceSystem); s != "" && utf8.RuneCountInString(s) <= MaxSourceLen {
		e.SourceSystem = s
	}
	e.SourceSystem = field(e.SourceSystem, MaxSourceLen)
	if e.SourceSystem == "" {
		e.SourceSystem = field(string(raw.SourceType), MaxSourceLen)
	}
	e.EventType = field(e.EventType, MaxEventTypeLen)
	if e.EventType == "" {
		e.EventType = DefaultEventType
	}
	if !e.Severity.Valid() {
		e.Severity = event.Info
	}
	e.SourceHost = Host(e.SourceHost)
	e.SourceService = field(e.SourceService, MaxServiceLen)
	e.Description = text(e.Description)
	e.Title = Title(e.Title)
	if e.Title == "" {
		e.Title = Title(e.Description)
	}
	if e.Title == "" {
		e.Title = e.EventType
	}
	cleanAlert(e)
	e.Tags = tags(e.Tags)

	adjusted := false
	e.OccurredAt = received
	if !d.Timestamp.IsZero() || d.OriginalTimestamp != nil {
		t := d.Timestamp.Truncate(time.Microsecond)
		if t.Before(received.Add(-maxAge)) || t.After(received.Add(maxFuture)) {
			adjusted = true
			orig := d.OriginalTimestamp
			if orig == nil {
				orig = d.Timestamp.Format(time.RFC3339Nano)
			}
			e.SetData(DataOriginalTimestamp, orig)
			e.Tag(TagTimestampAdjusted)
		} else {
			e.OccurredAt = t
		}
	}
	e.Fingerprint = event.Fingerprint(e)
	return adjusted
}

// TagResolved marks the resolution of an alert.
const TagResolved = "resolved"

// cleanAlert makes e's Alert storable: a key of valid text within
// event.MaxAlertKeyLen (a longer one is hashed), a status of firing unless
// it says resolved. An alert without a key is no alert. A resolution is
// info (it must not page or match a severity rule) and tagged resolved.
func cleanAlert(e *event.Event) {
	a := e.Alert
	if a == nil {
		return
	}
	a.Key = strings.TrimSpace(text(a.Key))
	if len(a.Key) > event.MaxAlertKeyLen {
		a.Key = event.AlertKey(a.Key)
	}
	if a.Key == "" {
		e.Alert = nil
		return
	}
	if a.Status != event.AlertResolved {
		a.Status = event.AlertFiring
	}
	for _, t := range []**time.Time{&a.StartsAt, &a.EndsAt} {
		if *t != nil && ((*t).IsZero() || (*t).Year() < 1970) {
			*t = nil // Alertmanager's "0001-01-01T00:00:00Z": not set
		} else if *t != nil {
			v := (*t).UTC().Truncate(time.Microsecond)
			*t = &v
		}
	}
	if a.Status == event.AlertResolved {
		e.Severity = event.Info
		e.Tags = append(e.Tags, TagResolved)
	}
}

// Host is a source's host as the event holds it: trimmed, lowercased,
// storable and cut to MaxHostLen characters. Adapters set intake.Item.Host
// with it, so that an event's intake partition is its host's.
func Host(s string) string { return field(strings.ToLower(s), MaxHostLen) }

// Title cuts s to a title: at most MaxTitleLen characters, without
// surrounding space (a cut message may end in space; the title should not).
func Title(s string) string {
	return strings.TrimRightFunc(truncate(strings.TrimSpace(text(s)), MaxTitleLen), unicode.IsSpace)
}

// field trims s, makes it storable text and cuts it to n characters.
func field(s string, n int) string {
	return strings.TrimSpace(truncate(text(strings.TrimSpace(s)), n))
}

// text makes s valid UTF-8 without NUL bytes, which no store column can
// hold. It does not allocate when s is already so.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// tags lowercases and deduplicates tags, dropping empty ones and cutting
// each to MaxTagLen characters.
func tags(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, t := range in {
		t = truncate(strings.ToLower(strings.TrimSpace(text(t))), MaxTagLen)
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

// Truncate cuts s to at most n characters (runes), on a rune boundary.
func Truncate(s string, n int) string { return truncate(s, n) }

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
