package api

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/intake"
)

// WebhookResponse is the 202 answer of POST /api/v1/events/webhook.
//
// IDs holds the id of each accepted event, in body order. When no event
// was rejected, ids[k] is the id of the body's event k and Indexes is
// omitted. When some were, Indexes[k] is the body index of the event whose
// id is IDs[k], and Rejected lists the others.
type WebhookResponse struct {
	Accepted int      `json:"accepted"`
	IDs      []int64  `json:"ids"`
	Indexes  []int    `json:"indexes,omitempty"`
	Rejected []Reject `json:"rejected,omitempty"`
}

const sourceWebhook = event.SourceWebhook

// IntakeHeadroom is the room an intake log message needs beside the data of
// the one event it carries (the envelope: ids, time, source and severity,
// escaped). A server whose log takes messages of up to M bytes sets
// webhook.Options.MaxEventBytes to M - IntakeHeadroom, so that every event
// the webhook accepts fits, and, to accept a body of --max-body-bytes
// holding one event, runs the embedded log with a max payload of at least
// that limit + IntakeHeadroom.
const IntakeHeadroom = intake.EnvelopeHeadroom

// Bounds of EmbeddedMaxPayload: NATS's default max payload, and the size
// above which NATS warns that large messages hurt the server.
const (
	minEmbeddedPayload = 1 << 20
	maxEmbeddedPayload = 8 << 20
)

// EmbeddedMaxPayload is the max payload of an embedded intake log that
// takes every webhook body of up to maxBody bytes, even one that is a
// single event: maxBody + IntakeHeadroom, from 1 MiB to 8 MiB (above that,
// MaxEventBytes refuses the events that do not fit).
func EmbeddedMaxPayload(maxBody int64) int32 {
	return int32(min(max(maxBody+IntakeHeadroom, minEmbeddedPayload), maxEmbeddedPayload))
}

// MaxEventBytes is webhook.Options.MaxEventBytes for an intake log whose
// messages take up to maxPayload bytes.
func MaxEventBytes(maxPayload int64) int {
	return int(max(maxPayload-IntakeHeadroom, 1))
}

// postWebhook serves POST /api/v1/events/webhook.
func (s *eventsAPI) postWebhook(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	body, err := s.readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			s.intake.rejected.WithLabelValues(string(sourceWebhook), rejectTooLarge).Inc()
			writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body larger than %d bytes: send smaller batches", s.maxBody), "")
		case isReadTimeout(err):
			writeError(w, http.StatusRequestTimeout, readTimeoutMsg+"; nothing of this request was accepted", "")
		case canceled(r, err):
			clientGone(w)
		default:
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error(), "")
		}
		return
	}

	items, rejects, err := s.decode(r.Header.Get("Content-Type"), body, s.webhook)
	if err != nil {
		if errors.Is(err, webhook.ErrEventTooLarge) {
			s.intake.rejected.WithLabelValues(string(sourceWebhook), rejectTooLarge).Inc()
			writeError(w, http.StatusRequestEntityTooLarge, trimPrefixes(err.Error(), "webhook: event too large: "), "")
			return
		}
		if errors.Is(err, webhook.ErrUnsupportedMediaType) {
			s.intake.rejected.WithLabelValues(string(sourceWebhook), rejectUnsupportedMedia).Inc()
			writeError(w, http.StatusUnsupportedMediaType, trimPrefixes(err.Error(), "webhook: "), "Content-Type")
			return
		}
		s.intake.rejected.WithLabelValues(string(sourceWebhook), rejectMalformed).Inc()
		writeError(w, http.StatusBadRequest, trimPrefixes(err.Error(), "webhook: bad request: ", "webhook: "), "")
		return
	}

	s.intake.received.WithLabelValues(string(sourceWebhook)).Add(float64(len(items) + len(rejects)))
	if len(rejects) > 0 {
		s.intake.rejected.WithLabelValues(string(sourceWebhook), rejectInvalid).Add(float64(len(rejects)))
	}
	if len(items) == 0 {
		writeAllRejected(w, rejects)
		return
	}

	ids, err := s.submit.Submit(r.Context(), sourceWebhook, items)
	if err != nil {
		s.submitFailed(w, r, err)
		return
	}
	resp := WebhookResponse{Accepted: len(ids), IDs: ids}
	if len(rejects) > 0 {
		resp.Indexes = acceptedIndexes(len(items), rejects)
		resp.Rejected = rejects
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// readBody reads the request body up to the limit.
func (s *eventsAPI) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxBody {
		return nil, &http.MaxBytesError{Limit: s.maxBody}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength)) // at most maxBody
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeAllRejected answers a body in which no event was valid: 400 with
// the rejects; with one event, the error names its field and reason.
func writeAllRejected(w http.ResponseWriter, rejects []Reject) {
	e := ErrorBody{Rejected: rejects}
	switch len(rejects) {
	case 0:
		e.Error = "the body holds no event"
	case 1:
		rj := rejects[0]
		e.Field = rj.Field
		e.Error = "event rejected: " + rj.Reason
		if rj.Field != "" {
			e.Error = "event rejected: " + rj.Field + ": " + rj.Reason
		}
	default:
		e.Error = fmt.Sprintf("all %d events were rejected; see rejected", len(rejects))
	}
	writeJSON(w, http.StatusBadRequest, e)
}

// submitFailed answers an error of Submit: nothing was acknowledged.
func (s *eventsAPI) submitFailed(w http.ResponseWriter, r *http.Request, err error) {
	var itemErr *intake.ItemError
	switch {
	case r.Context().Err() != nil:
		clientGone(w)
	case errors.Is(err, intake.ErrBusy):
		w.Header().Set("Retry-After", retryBusy)
		writeError(w, http.StatusTooManyRequests, "intake is busy: retry after 1 second; nothing of this request was accepted", "")
	case errors.Is(err, bus.ErrTooLarge):
		// Decode checks each event against Options.MaxEventBytes before
		// anything is published, so this means that limit is not set (or
		// not below the log's): say what may have happened.
		s.logger.LogAttrs(r.Context(), slog.LevelError, "api: intake log refused a message as too large; set the webhook's MaxEventBytes below its limit", slog.Any("err", err))
		writeError(w, http.StatusRequestEntityTooLarge, "an event is larger than the intake log's message limit; the request was not acknowledged, but events of it published before that one may have been stored", "")
	case errors.Is(err, bus.ErrFull), errors.Is(err, bus.ErrUnavailable):
		s.logger.LogAttrs(r.Context(), slog.LevelWarn, "api: intake refused a batch", slog.Any("err", err))
		w.Header().Set("Retry-After", retryUnavailable)
		writeError(w, http.StatusServiceUnavailable, "intake log unavailable or full: retry after 5 seconds; the request was not acknowledged", "")
	case errors.As(err, &itemErr):
		// The decoder accepted an item intake refuses: a bug, but the
		// client's input is what it is about.
		s.logger.LogAttrs(r.Context(), slog.LevelError, "api: intake refused a decoded item", slog.Any("err", err))
		writeError(w, http.StatusBadRequest, fmt.Sprintf("event %d could not be accepted: %v", itemErr.Index, itemErr.Err), "")
	default:
		s.unavailable(w, r, err, "submit events")
	}
}

// acceptedIndexes returns the body indexes of the accepted events: the
// first n indexes that no reject names (every event is either accepted or
// rejected, in body order).
func acceptedIndexes(n int, rejects []Reject) []int {
	rejected := make(map[int]bool, len(rejects))
	for _, rj := range rejects {
		rejected[rj.Index] = true
	}
	out := make([]int, 0, n)
	for i := 0; len(out) < n; i++ {
		if !rejected[i] {
			out = append(out, i)
		}
	}
	return out
}
