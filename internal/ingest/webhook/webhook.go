// Package webhook decodes the bodies posted to POST /api/v1/events/webhook:
// one JSON event object, a JSON array of them, or NDJSON. It validates each
// event against the webhook payload contract (see Payload) and turns the
// valid ones into intake items, listing each invalid one with its index, the
// field at fault and the reason. It does no I/O; the HTTP handler reads the
// body (and enforces the body size limit) and publishes the items.
//
// Decode never panics, whatever the input. Every event it accepts can be
// stored by both stores: its bytes are valid UTF-8, hold no \u0000 escape or
// unpaired surrogate and no number that PostgreSQL's jsonb cannot represent
// or that the event data decoder (float64) cannot read back.
package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Errors wrapped by Decode for problems with the body as a whole.
var (
	// ErrUnsupportedMediaType: the Content-Type is not one Decode reads
	// (HTTP 415).
	ErrUnsupportedMediaType = errors.New("webhook: unsupported media type")
	// ErrBadRequest: the body is not JSON / NDJSON, not an object or an
	// array, holds no event, or too many (HTTP 400). The wrapping error's
	// message names the problem and, for a syntax error, where it is.
	ErrBadRequest = errors.New("webhook: bad request")
	// ErrEventTooLarge: an event is larger than Options.MaxEventBytes, so
	// that the intake log could not take it (HTTP 413). The wrapping
	// error's message names the event's index and both sizes.
	ErrEventTooLarge = errors.New("webhook: event too large")
)

// Reject is an event of the body that Decode did not accept.
type Reject struct {
	// Index is the event's position in the body, from 0: in the array, or
	// among the non-blank lines of NDJSON. It is the position the event
	// would have had in the response's ids.
	Index int `json:"index"`
	// Field is the top-level field at fault, or, for a value that cannot
	// be stored, its path (metadata.v, tags[2]); empty when the problem is
	// the event as a whole (not an object).
	Field string `json:"field"`
	// Reason says what is wrong, for a human.
	Reason string `json:"reason"`
}

// format is how a body is framed.
type format int

const (
	formatJSON   format = iota // one object or an array of objects
	formatNDJSON               // one object per line
)

// mediaFormat maps a Content-Type header to the body's framing.
func mediaFormat(contentType string) (format, error) {
	if strings.TrimSpace(contentType) == "" {
		return formatJSON, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return 0, fmt.Errorf("%w: malformed Content-Type %q", ErrUnsupportedMediaType, clip(contentType, 100))
	}
	if cs, ok := params["charset"]; ok {
		switch strings.ToLower(cs) {
		case "utf-8", "utf8", "us-ascii":
		default:
			return 0, fmt.Errorf("%w: charset %q: send UTF-8", ErrUnsupportedMediaType, clip(cs, 40))
		}
	}
	switch mt {
	case "application/json":
		return formatJSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return formatNDJSON, nil
	}
	return 0, fmt.Errorf("%w %q: want application/json or application/x-ndjson", ErrUnsupportedMediaType, clip(mt, 100))
}

// Decode reads a webhook body. contentType is the request's Content-Type
// header: application/json (one event object or an array of them; also
// when empty) or NDJSON, one event object per line, blank lines skipped
// (application/x-ndjson, application/ndjson, application/jsonl,
// application/x-jsonlines). A charset parameter other than UTF-8 is
// refused; a leading UTF-8 byte order mark is ignored.
//
// Decode returns the accepted events as intake items, in body order, and
// the rejected ones, one Reject per event (its first problem). err
// (wrapping ErrUnsupportedMediaType, ErrBadRequest or ErrEventTooLarge) is set only when the
// body as a whole cannot be read, and then items and rejects are nil.
// Every event of the body is in exactly one of items and rejects; all of
// them may be rejected. A body holding an event larger than
// Options.MaxEventBytes fails as a whole (ErrEventTooLarge), so that a
// caller publishes either all of its accepted events or none.
//
// Each item's Data is the event's JSON object exactly as sent, compacted
// (insignificant whitespace removed); its SourceSystem is the payload's
// source ("webhook" when absent), its Severity the parsed severity (info
// when absent) and its Host the host as the normalizer will set it.
func Decode(contentType string, body []byte, opts Options) (items []intake.Item, rejects []Reject, err error) {
	f, err := mediaFormat(contentType)
	if err != nil {
		return nil, nil, err
	}
	body = bytes.TrimPrefix(body, utf8BOM)
	var elems [][]byte
	switch f {
	case formatNDJSON:
		elems, err = splitLines(body, opts.maxEvents())
	default:
		elems, err = splitJSON(body, opts.maxEvents())
	}
	if err != nil {
		return nil, nil, err
	}

	// Compact every event into one buffer; each item's Data is a
	// capacity-limited slice of it, so appending to one cannot clobber
	// the next.
	size := 0
	for _, el := range elems {
		size += len(el)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	items = make([]intake.Item, 0, len(elems))
	for i, el := range elems {
		start := buf.Len()
		if err := compact(buf, el); err != nil {
			// The splitters only return valid JSON values.
			rejects = append(rejects, Reject{Index: i, Reason: "invalid JSON"})
			continue
		}
		data := buf.Bytes()[start:buf.Len():buf.Len()]
		if limit := opts.MaxEventBytes; limit > 0 && len(data) > limit {
			return nil, nil, fmt.Errorf("%w: event %d is %d bytes, more than the %d bytes one event may take in the intake log; nothing of this request was accepted", ErrEventTooLarge, i, len(data), limit)
		}
		p, err := parse(data, false)
		if err != nil {
			rejects = append(rejects, toReject(i, err))
			continue
		}
		items = append(items, intake.Item{SourceSystem: p.Source, Severity: p.Severity, Data: data, Host: normalize.Host(p.Host)})
	}
	return items, rejects, nil
}

// toReject converts a Parse error into a Reject of the event at index i.
func toReject(i int, err error) Reject {
	var fe *FieldError
	if errors.As(err, &fe) {
		return Reject{Index: i, Field: fe.Field, Reason: fe.Reason}
	}
	return Reject{Index: i, Reason: err.Error()}
}

// clip shortens s to at most n bytes, on a rune boundary, for quoting in
// an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
