// Package promwrite receives Prometheus remote write 1.0
// (POST /api/v1/metrics/write): a snappy block-compressed protobuf
// WriteRequest, decoded by hand with protowire, whose samples go to the
// metrics path (internal/metrics) and never become events one by one.
//
// Answers: 204 once the samples are taken; 400 naming the problem for a
// malformed request (Prometheus does not retry a 4xx); 413 for a body over
// the limit; 415 for another encoding or protocol (remote write 2.0);
// 429 while too many requests are being decoded and 503 while the metric
// alert events queue is full, both with Retry-After (Prometheus retries
// them). Samples of new series beyond --metric-max-series are dropped and
// counted; the request still succeeds, since a retry would not help.
package promwrite

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/klauspost/compress/snappy"

	"github.com/reflex-ops/reflex/internal/metrics"
)

// Adapter and Listener are the metrics' adapter and listener labels.
const (
	Adapter  = "promwrite"
	Listener = "http"
)

// Handler serves remote-write requests.
type Handler struct {
	o   Options
	log *slog.Logger
	sem chan struct{}
}

var _ http.Handler = (*Handler)(nil)

// New answers a Handler.
func New(o Options) (*Handler, error) {
	if o.Sink == nil || o.Metrics == nil {
		return nil, errors.New("promwrite: Options.Sink and Options.Metrics are required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	h := &Handler{o: o, log: o.Logger, sem: make(chan struct{}, o.MaxConcurrent)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// ServeHTTP decodes one WriteRequest and appends its samples.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.o.Metrics
	m.Received.WithLabelValues(Adapter, Listener).Inc()
	reject := func(code int, reason, format string, args ...any) {
		m.Rejected.WithLabelValues(Adapter, Listener, reason).Inc()
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	if err := checkHeaders(r.Header); err != nil {
		reject(http.StatusUnsupportedMediaType, "protocol", "%v", err)
		return
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	default:
		m.Dropped.WithLabelValues(Adapter, Listener, "busy").Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many remote-write requests in progress", http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			reject(http.StatusRequestEntityTooLarge, "too_large", "body larger than %d bytes", h.o.MaxBodyBytes)
			return
		}
		reject(http.StatusBadRequest, "read", "read body: %v", err)
		return
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		reject(http.StatusBadRequest, "snappy", "snappy: %v", err)
		return
	}
	if n > h.o.MaxDecodedBytes {
		reject(http.StatusRequestEntityTooLarge, "too_large", "decompressed body of %d bytes, more than %d", n, h.o.MaxDecodedBytes)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		reject(http.StatusBadRequest, "snappy", "snappy: %v", err)
		return
	}
	batch, err := Decode(raw)
	if err != nil {
		reject(http.StatusBadRequest, "parse", "%v", err)
		return
	}
	res, err := h.o.Sink.Append(batch)
	if err != nil {
		m.Dropped.WithLabelValues(Adapter, Listener, "busy").Inc()
		w.Header().Set("Retry-After", "5")
		http.Error(w, "metrics path busy: "+strings.TrimPrefix(err.Error(), "metrics: "), http.StatusServiceUnavailable)
		return
	}
	m.Accepted.WithLabelValues(Adapter, Listener).Add(float64(res.Accepted))
	if res.Dropped > 0 {
		m.Dropped.WithLabelValues(Adapter, Listener, "series_limit").Add(float64(res.Dropped))
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkHeaders accepts remote write 1.0: Content-Encoding snappy,
// Content-Type application/x-protobuf (proto=prometheus.WriteRequest when
// given) and X-Prometheus-Remote-Write-Version 0.1.x when given.
func checkHeaders(hd http.Header) error {
	if enc := hd.Get("Content-Encoding"); !strings.EqualFold(enc, "snappy") {
		return fmt.Errorf("Content-Encoding %q: remote write needs snappy", enc)
	}
	ct := hd.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-protobuf" {
		return fmt.Errorf("Content-Type %q: remote write needs application/x-protobuf", ct)
	}
	if p, ok := params["proto"]; ok && p != "prometheus.WriteRequest" {
		return fmt.Errorf("proto %q: only remote write 1.0 (prometheus.WriteRequest) is supported", p)
	}
	if v := hd.Get("X-Prometheus-Remote-Write-Version"); v != "" && !strings.HasPrefix(v, "0.1.") {
		return fmt.Errorf("X-Prometheus-Remote-Write-Version %q: only 0.1.0 is supported", v)
	}
	return nil
}

// The metrics store is a Sink.
var _ Sink = (*metrics.Store)(nil)
