package alertmanager

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
)

// DefaultMaxBodyBytes is HandlerOptions.MaxBodyBytes when zero.
const DefaultMaxBodyBytes = 1 << 20

// Listener is the listener label of the HTTP adapters' metrics.
const Listener = "http"

// Reasons of reflex_ingest_rejected_total.
const (
	ReasonTooLarge    = "too_large"   // the body, or one alert, is over its limit (413)
	ReasonMediaType   = "media_type"  // the Content-Type is not JSON (415)
	ReasonParse       = "parse"       // the body is not JSON (400)
	ReasonInvalid     = "invalid"     // a field is missing or wrong (400)
	ReasonUnavailable = "unavailable" // the intake log did not take the alerts (503; the sender retries)
)

// DecodeFunc reads a body into intake items; its second result is the
// number of alerts the body held, for the metrics. Errors wrap
// ErrBadRequest or ErrTooLarge.
type DecodeFunc func(body []byte, maxEventBytes int) ([]intake.Item, int, error)

// Submitter takes the items of one request and returns once they are
// durable (*intake.Submitter, Blocking).
type Submitter interface {
	Submit(ctx context.Context, src event.SourceType, items []intake.Item) ([]int64, error)
}

var _ Submitter = (*intake.Submitter)(nil)

// HandlerOptions configures NewHandler.
type HandlerOptions struct {
	// Adapter names the adapter in the metrics (alertmanager, grafana).
	Adapter string
	// Source is the source type of the events. Required.
	Source event.SourceType
	// Decode reads a body. Required.
	Decode DecodeFunc
	// Submit takes the items. Required.
	Submit Submitter
	// Metrics counts what the endpoint receives. Required.
	Metrics *ingest.Metrics
	// MaxBodyBytes bounds a body (413 above it); zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxEventBytes bounds one alert's record (see Options.MaxEventBytes).
	MaxEventBytes int
	// Logger receives what the sender cannot be told; nil discards.
	Logger *slog.Logger
}

// Handler serves an alert webhook: it reads the body (a JSON object up to
// MaxBodyBytes), decodes it, submits every alert and answers 202 with
// their event ids once all are durable, or an error naming the problem
// (ErrorBody): 400 and the field's path for a bad body, 413 for one too
// large, 415 for a Content-Type that is not JSON, 503 with Retry-After
// when the intake log does not take the alerts (Alertmanager and Grafana
// retry a 5xx, not a 4xx). The caller authenticates the request.
type Handler struct {
	opts HandlerOptions
	log  *slog.Logger
}

// Response is the 202 answer: the id of each alert's event, in body order.
type Response struct {
	Accepted int     `json:"accepted"`
	IDs      []int64 `json:"ids"`
}

// ErrorBody is the answer of a refused request.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// NewHandler returns the handler of opts.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	if opts.Decode == nil || opts.Submit == nil || opts.Metrics == nil || opts.Source == "" {
		return nil, errors.New("alertmanager: handler needs Source, Decode, Submit and Metrics")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Adapter == "" {
		opts.Adapter = string(opts.Source)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, log: log}, nil
}

// ServeHTTP serves one notification.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.opts.Metrics
	received := m.Received.WithLabelValues(h.opts.Adapter, Listener)
	reject := func(n int, reason string) {
		n = max(n, 1)
		received.Add(float64(n))
		m.Rejected.WithLabelValues(h.opts.Adapter, Listener, reason).Add(float64(n))
	}
	if ct := r.Header.Get("Content-Type"); strings.TrimSpace(ct) != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			reject(1, ReasonMediaType)
			writeJSON(w, http.StatusUnsupportedMediaType, ErrorBody{Error: fmt.Sprintf("unsupported media type %q: want application/json", Clip(ct, 100)), Field: "Content-Type"})
			return
		}
	}
	body, err := h.readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			reject(1, ReasonTooLarge)
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: fmt.Sprintf("request body larger than %d bytes: lower max_alerts (Alertmanager) or raise --max-body-bytes", h.opts.MaxBodyBytes)})
		case r.Context().Err() != nil:
			// The sender left: no one to answer.
		case errors.Is(err, os.ErrDeadlineExceeded):
			writeJSON(w, http.StatusRequestTimeout, ErrorBody{Error: "timed out reading the request body; nothing of this request was accepted"})
		default:
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: "reading the request body: " + err.Error()})
		}
		return
	}

	items, n, err := h.decode(body)
	if err != nil {
		var fe *FieldError
		switch {
		case errors.Is(err, ErrTooLarge):
			reject(n, ReasonTooLarge)
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: strings.TrimPrefix(err.Error(), ErrTooLarge.Error()+": ")})
		case errors.As(err, &fe):
			reason := ReasonInvalid
			if strings.HasPrefix(fe.Reason, "invalid JSON") || strings.HasPrefix(fe.Reason, "must be a JSON object") || strings.HasPrefix(fe.Reason, "empty") {
				reason = ReasonParse
			}
			reject(n, reason)
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: fe.Error(), Field: fe.Field})
		default:
			reject(n, ReasonInvalid)
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: err.Error()})
		}
		return
	}
	received.Add(float64(len(items)))

	ids, err := h.opts.Submit.Submit(r.Context(), h.opts.Source, items)
	if err != nil {
		m.Rejected.WithLabelValues(h.opts.Adapter, Listener, ReasonUnavailable).Add(float64(len(items)))
		h.submitFailed(w, r, err)
		return
	}
	m.Accepted.WithLabelValues(h.opts.Adapter, Listener).Add(float64(len(ids)))
	writeJSON(w, http.StatusAccepted, Response{Accepted: len(ids), IDs: ids})
}

// decode runs the decoder, turning a panic (a bug; the decoders are
// fuzzed) into a 400 rather than a dropped connection.
func (h *Handler) decode(body []byte) (items []intake.Item, n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("decoder panicked", "adapter", h.opts.Adapter, "panic", fmt.Sprint(p))
			items, n, err = nil, 0, fmt.Errorf("%w: the body could not be decoded", ErrBadRequest)
		}
	}()
	return h.opts.Decode(body, h.opts.MaxEventBytes)
}

// submitFailed answers an error of Submit: nothing was acknowledged.
func (h *Handler) submitFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case r.Context().Err() != nil:
		// The sender left (or its timeout passed): it will retry.
	case errors.Is(err, intake.ErrTooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: "more alerts than the intake may buffer at once: lower max_alerts"})
	default:
		level := slog.LevelWarn
		if !errors.Is(err, bus.ErrFull) && !errors.Is(err, bus.ErrUnavailable) {
			level = slog.LevelError
		}
		h.log.Log(r.Context(), level, "intake refused a notification", "adapter", h.opts.Adapter, "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "intake log unavailable or full: retry later; nothing of this request was acknowledged"})
	}
}

// readBody reads the request body up to the limit.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeJSON writes v as the JSON body of a response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // our own types always encode
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// BasicPassword is an api.Route's Credentials for senders that can only do
// HTTP basic authentication (Grafana's legacy webhook; Alertmanager's
// basic_auth): the password is the API key, the user name is ignored.
func BasicPassword(r *http.Request) string {
	v := r.Header.Get("Authorization")
	const prefix = "basic "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil {
		return ""
	}
	_, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return ""
	}
	return pass
}
