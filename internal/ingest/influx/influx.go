// Package influx receives the InfluxDB line protocol
// (POST /api/v1/metrics/influx, and the InfluxDB-compatible POST /write
// (1.x) and POST /api/v2/write that Telegraf's influxdb and influxdb_v2
// outputs post to), parsed with influxdata/line-protocol/v2. Each numeric
// field becomes a sample of the series <measurement>_<field> with the
// line's tags as labels (Telegraf's Prometheus naming), fed to the metrics
// path (internal/metrics); it never becomes an event one by one.
//
// Answers: 204 once the samples are taken; 400 naming the first bad lines
// when some do not parse (the good lines are taken, as InfluxDB's
// "partial write" does; Telegraf does not retry a 400); 413 for a body
// over the limit; 429 while too many requests are being decoded and 503
// while the metric alert events queue is full, with Retry-After.
package influx

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/metrics"
)

// Adapter and Listener are the metrics' adapter and listener labels.
const (
	Adapter  = "influx"
	Listener = "http"
)

// Handler serves line-protocol writes.
type Handler struct {
	o   Options
	log *slog.Logger
	sem chan struct{}
}

var _ http.Handler = (*Handler)(nil)

var _ Sink = (*metrics.Store)(nil)

// New answers a Handler.
func New(o Options) (*Handler, error) {
	if o.Sink == nil || o.Metrics == nil {
		return nil, errors.New("influx: Options.Sink and Options.Metrics are required")
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
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{o: o, log: o.Logger, sem: make(chan struct{}, o.MaxConcurrent)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Credentials extracts the API key the way InfluxDB clients send it:
// "Authorization: Token KEY" (2.x), ?p=KEY or the password of basic auth
// (1.x). It is the routes' api.Route.Credentials.
func Credentials(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 6 && strings.EqualFold(a[:6], "token ") {
		return strings.TrimSpace(a[6:])
	}
	if len(a) > 6 && strings.EqualFold(a[:6], "basic ") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a[6:]))
		if err == nil {
			if _, pass, ok := strings.Cut(string(raw), ":"); ok {
				return pass
			}
		}
	}
	return r.URL.Query().Get("p")
}

// errorBody is InfluxDB's error answer: 2.x reads code and message, 1.x
// error.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Error   string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Influxdb-Error", msg)
	w.WriteHeader(code)
	kind := "invalid"
	switch code {
	case http.StatusRequestEntityTooLarge:
		kind = "request too large"
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		kind = "unavailable"
	}
	_ = json.NewEncoder(w).Encode(errorBody{Code: kind, Message: msg, Error: msg})
}

// ServeHTTP decodes one body and appends its samples.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.o.Metrics
	m.Received.WithLabelValues(Adapter, Listener).Inc()
	reject := func(code int, reason, format string, args ...any) {
		m.Rejected.WithLabelValues(Adapter, Listener, reason).Inc()
		writeError(w, code, fmt.Sprintf(format, args...))
	}
	prec, err := ParsePrecision(r.URL.Query().Get("precision"))
	if err != nil {
		reject(http.StatusBadRequest, "precision", "%s", strings.TrimPrefix(err.Error(), "bad request: "))
		return
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	default:
		m.Dropped.WithLabelValues(Adapter, Listener, "busy").Inc()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "too many writes in progress")
		return
	}
	body, status, err := h.read(w, r)
	if err != nil {
		reason := "read"
		switch status {
		case http.StatusRequestEntityTooLarge:
			reason = "too_large"
		case http.StatusUnsupportedMediaType:
			reason = "encoding"
		}
		reject(status, reason, "%v", err)
		return
	}
	batch, st, err := Decode(bytes.NewReader(body), prec, h.o.Now(), DefaultMaxPoints)
	if err != nil {
		reject(http.StatusBadRequest, "parse", "%s", strings.TrimPrefix(err.Error(), "bad request: "))
		return
	}
	if st.Ignored > 0 {
		m.Rejected.WithLabelValues(Adapter, Listener, "not_numeric").Add(float64(st.Ignored))
	}
	res, err := h.o.Sink.Append(batch)
	if err != nil {
		m.Dropped.WithLabelValues(Adapter, Listener, "busy").Inc()
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "metrics path busy: "+strings.TrimPrefix(err.Error(), "metrics: "))
		return
	}
	m.Accepted.WithLabelValues(Adapter, Listener).Add(float64(res.Accepted))
	if res.Dropped > 0 {
		m.Dropped.WithLabelValues(Adapter, Listener, "series_limit").Add(float64(res.Dropped))
	}
	if st.BadLines > 0 {
		reject(http.StatusBadRequest, "parse", "partial write: %d of %d lines rejected: %s",
			st.BadLines, st.Lines, strings.Join(st.Errors, "; "))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// read answers the body, decompressed when gzip, within the limits.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	var tooLarge *http.MaxBytesError
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if errors.As(err, &tooLarge) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", h.o.MaxBodyBytes)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
		return body, 0, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, h.o.MaxDecodedBytes+1))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip: %w", err)
		}
		if int64(len(out)) > h.o.MaxDecodedBytes {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("decompressed body larger than %d bytes", h.o.MaxDecodedBytes)
		}
		return out, 0, nil
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q is not gzip", clip(enc))
	}
}
