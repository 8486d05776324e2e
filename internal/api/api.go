// Package api serves reflex's HTTP APIs: the Event Processing Service
// (NewEvents: webhook intake, event queries, assets, API keys) and the
// operational endpoints every service has (NewOps: /healthz, /readyz,
// /metrics).
//
// Every handler answers errors as JSON ({"error": "...", "field": "..."}),
// including unknown routes (404) and wrong methods (405); a panic in a
// handler is answered with a 500 and counted, never kills the server.
// Routes use the method and wildcard patterns of net/http.ServeMux.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// statusClientClosed is recorded in the metrics and the request log
// (nginx's convention) when the client went away before the answer was
// ready. It is never sent: the connection is closed without an answer.
const statusClientClosed = 499

// Retry-After values, in seconds.
const (
	retryBusy        = "1" // a lane is momentarily full
	retryUnavailable = "5" // the intake log or the store is unavailable
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	// Error says what went wrong, for a human.
	Error string `json:"error"`
	// Field names the request field (query parameter, body field or path
	// segment) at fault, when one is.
	Field string `json:"field,omitempty"`
	// Scope names the missing scope of a 403.
	Scope string `json:"scope,omitempty"`
	// Rejected lists the rejected events of a webhook body in which no
	// event was valid.
	Rejected []Reject `json:"rejected,omitempty"`
}

// writeJSON writes v as the JSON body of a response with this status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a bug can make our own types unencodable.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error: encoding the response failed"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusRequestTimeout {
		// The rest of the body may still arrive: the connection cannot
		// carry another request.
		h.Set("Connection", "close")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError writes the JSON error {"error": msg, "field": field}.
func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, ErrorBody{Error: msg, Field: field})
}

// fieldError is a client error about one request field.
type fieldError struct {
	status int // 400 when zero
	field  string
	msg    string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func badField(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// writeFieldError answers a fieldError.
func writeFieldError(w http.ResponseWriter, fe *fieldError) {
	status := fe.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	msg := fe.msg
	if fe.field != "" {
		msg = fe.field + ": " + fe.msg
	}
	writeError(w, status, msg, fe.field)
}

// reqInfo is what the request middleware learns from the handlers, for
// the request log.
type reqInfo struct {
	keyID string
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// router is the outer handler of a service: it routes with a ServeMux,
// turns the mux's own 404 and 405 answers into JSON, recovers panics, logs
// each request at debug level and records the HTTP metrics.
type router struct {
	service string
	mux     *http.ServeMux
	logger  *slog.Logger
	metrics *httpMetrics
	now     func() time.Time
	// ops, when set, serves opsPaths instead of mux.
	ops http.Handler
}

// opsPaths are the operational endpoints (see NewOps).
var opsPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

func newRouter(service string, logger *slog.Logger, m *httpMetrics, now func() time.Time) *router {
	return &router{service: service, mux: http.NewServeMux(), logger: logger, metrics: m, now: now}
}

// ServeHTTP serves one request.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.ops != nil && opsPaths[r.URL.Path] {
		rt.ops.ServeHTTP(w, r)
		return
	}
	start := rt.now()
	sw := &statusWriter{ResponseWriter: w}
	info := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))

	h, pattern := rt.mux.Handler(r)
	label := pattern
	if pattern == "" {
		label = "unmatched"
	}
	rt.serve(sw, r, h, pattern)

	status := sw.status
	switch {
	case sw.gone:
		status = statusClientClosed
	case status == 0:
		status = http.StatusOK
	}
	elapsed := rt.now().Sub(start)
	rt.metrics.observe(rt.service, label, status, elapsed)
	if rt.logger.Enabled(r.Context(), slog.LevelDebug) {
		rt.logger.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("key_id", info.keyID),
		)
	}
	if sw.gone {
		// Close the connection without an answer; net/http recovers
		// this panic silently.
		panic(http.ErrAbortHandler)
	}
}

// serve runs the handler, recovering a panic into a 500.
func (rt *router) serve(w *statusWriter, r *http.Request, h http.Handler, pattern string) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared, as net/http does
			panic(v)
		}
		rt.metrics.panics.WithLabelValues(rt.service).Inc()
		rt.logger.LogAttrs(r.Context(), slog.LevelError, "panic in HTTP handler",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("handler", pattern),
			slog.Any("panic", v),
		)
		if !w.wrote {
			writeError(w, http.StatusInternalServerError, "internal error", "")
		}
	}()
	if pattern == "" {
		rt.unmatched(w, r, h)
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// unmatched answers a request no pattern matched: the mux's 404 and 405
// become JSON; anything else it does (a redirect to a cleaned path) passes
// through.
func (rt *router) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	cw := &captureWriter{header: make(http.Header)}
	h.ServeHTTP(cw, r)
	switch cw.status {
	case http.StatusNotFound:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, clip(r.URL.Path, 200)), "")
	case http.StatusMethodNotAllowed:
		allow := cw.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; allowed: %s", clip(r.Method, 20), clip(r.URL.Path, 200), allow), "")
	default:
		for k, v := range cw.header {
			w.Header()[k] = v
		}
		if cw.status == 0 {
			cw.status = http.StatusOK
		}
		w.WriteHeader(cw.status)
		_, _ = w.Write(cw.body.Bytes())
	}
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	gone   bool // the client left: nothing is to be written (clientGone)
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status = http.StatusOK
		w.wrote = true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter buffers a small answer of the mux's fallback handlers.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *captureWriter) Header() http.Header { return w.header }

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len() < 4096 {
		w.body.Write(b)
	}
	return len(b), nil
}

// clip shortens s to at most n bytes for quoting in a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// canceled reports whether the request's client went away (or its context
// was otherwise canceled), in which case the error is expected and neither
// logged nor answered with a 5xx.
func canceled(r *http.Request, err error) bool {
	return r.Context().Err() != nil || errors.Is(err, context.Canceled)
}

// clientGone records that the client left before the answer: the router
// counts and logs the request as statusClientClosed and then closes the
// connection without writing anything (a 499 is not an HTTP status).
func clientGone(w http.ResponseWriter) {
	if sw, ok := w.(*statusWriter); ok && !sw.wrote {
		sw.gone = true
		return
	}
	panic(http.ErrAbortHandler)
}

// isReadTimeout reports whether err is the server's read deadline expiring
// while the body was read (http.Server.ReadTimeout): the client is still
// there and gets a 408.
func isReadTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readTimeoutMsg answers a read timeout.
const readTimeoutMsg = "the request body did not arrive within the server's read timeout"

// trimPrefixes removes a leading "pkg: " error prefix for client messages.
func trimPrefixes(msg string, prefixes ...string) string {
	for _, p := range prefixes {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
