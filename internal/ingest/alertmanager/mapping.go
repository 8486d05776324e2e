package alertmanager

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
)

// FieldError is a problem with one field of a body: Field is its path
// (alerts[2].labels.severity; empty for the body as a whole), Reason what
// is wrong. It wraps ErrBadRequest.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap returns ErrBadRequest.
func (e *FieldError) Unwrap() error { return ErrBadRequest }

// Bad returns the *FieldError of field.
func Bad(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Unmarshal decodes the JSON object data into v (a pointer to a struct),
// ignoring unknown fields, and converts a decoding error into a
// *FieldError whose path starts with path (the object's place in the
// body; empty for the body itself). Trailing data after the object is an
// error.
func Unmarshal(data []byte, path string, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return Bad(path, "empty: want a JSON object")
	}
	if trimmed[0] != '{' {
		return Bad(path, "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return jsonError(err, path)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Bad(path, "must hold one JSON object and nothing after it")
	}
	return nil
}

// jsonError names the field of a decoding error.
func jsonError(err error, path string) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Bad(path, "invalid JSON: unexpected end of the body")
	case errors.As(err, &syntax):
		return Bad(path, "invalid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		return Bad(join(path, typ.Field), "must be %s, not %s", jsonType(typ.Type.String()), typ.Value)
	}
	return Bad(path, "invalid JSON: %v", err)
}

// join appends field to the path of its object.
func join(path, field string) string {
	switch {
	case field == "":
		return path
	case path == "":
		return field
	}
	return path + "." + field
}

// jsonType names a Go type the way a JSON user would.
func jsonType(t string) string {
	switch {
	case t == "string" || t == "*string":
		return "a string"
	case strings.HasPrefix(t, "map["):
		if strings.HasSuffix(t, "]string") {
			return "an object of strings"
		}
		return "an object"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "*int"):
		return "an integer"
	case strings.Contains(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	}
	return "an object"
}

// ParseTime parses an RFC 3339 time; "" and Go's zero time
// (0001-01-01T00:00:00Z, which Alertmanager and Grafana send for "none")
// are the zero time.
func ParseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Bad(field, "%q is not an RFC 3339 time", Clip(s, 40))
	}
	if t.IsZero() {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// CheckText refuses a string that no store can hold: one with a NUL
// character (JSON's \u0000; decoding has already replaced invalid UTF-8).
func CheckText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return Bad(field, "contains a NUL character")
	}
	return nil
}

// CheckMap applies CheckText to the keys and values of m.
func CheckMap(field string, m map[string]string) error {
	for k, v := range m {
		if err := CheckText(field, k); err != nil {
			return err
		}
		if err := CheckText(field+"."+Clip(k, 60), v); err != nil {
			return err
		}
	}
	return nil
}

// StringMap decodes an object of strings (labels, annotations), naming the
// first value that is not a string (in key order) by its path, and refusing
// NUL characters (see CheckText). A null value is "". It returns nil for
// a nil raw.
func StringMap(field string, raw map[string]json.RawMessage) (map[string]string, error) {
	if raw == nil {
		return nil, nil
	}
	m := make(map[string]string, len(raw))
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		path := field + "." + Clip(k, 60)
		if err := CheckText(field, k); err != nil {
			return nil, err
		}
		var v string
		if err := json.Unmarshal(raw[k], &v); err != nil {
			return nil, Bad(path, "must be a string, not %s", jsonKind(raw[k]))
		}
		if err := CheckText(path, v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// jsonKind names the kind of a JSON value.
func jsonKind(v json.RawMessage) string {
	switch b := bytes.TrimSpace(v); {
	case len(b) == 0:
		return "nothing"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == '"':
		return "string"
	}
	return "number"
}

// Clip shortens s to at most n bytes, on a rune boundary, for quoting in
// an error message.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// severityWords are the severity label's values event.ParseSeverity does
// not know.
var severityWords = map[string]event.Severity{
	"page": event.Critical, "pager": event.Critical,
}

// DefaultSeverity is the severity of a firing alert whose severity label is
// absent or says nothing reflex knows.
const DefaultSeverity = event.Medium

// Severity maps an alert's severity label to reflex's scale: page and
// critical to critical, error/high/major to high, warning/warn/minor to
// medium, low/notice to low, info/none to info (and the other words of
// event.ParseSeverity); absent or unknown is DefaultSeverity. It is the
// severity of a firing alert: a resolution is info.
func Severity(labels map[string]string) event.Severity {
	v := strings.ToLower(strings.TrimSpace(labels["severity"]))
	if v == "" {
		return DefaultSeverity
	}
	if s, ok := severityWords[v]; ok {
		return s
	}
	if s, err := event.ParseSeverity(v); err == nil {
		return s
	}
	return DefaultSeverity
}

// hostLabels are the labels that name an alert's host, in order of
// preference.
var hostLabels = []string{"instance", "host", "hostname", "node", "pod"}

// Host is the host of an alert: the first of its instance, host, hostname,
// node and pod labels that is set, without a port (web-01:9100 is web-01,
// [2001:db8::1]:9100 is 2001:db8::1) and, for a URL (a blackbox probe's
// instance), its host name. It may be empty.
func Host(labels map[string]string) string {
	for _, l := range hostLabels {
		if v := strings.TrimSpace(labels[l]); v != "" {
			return hostOf(v)
		}
	}
	return ""
}

// hostOf strips the port, or the URL around a host.
func hostOf(v string) string {
	if strings.Contains(v, "://") {
		if u, err := url.Parse(v); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	if h, _, err := net.SplitHostPort(v); err == nil && h != "" {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
}

// Service is the service of an alert: its service label, or else its job
// label (the Prometheus scrape job). It may be empty.
func Service(labels map[string]string) string {
	if v := strings.TrimSpace(labels["service"]); v != "" {
		return v
	}
	return strings.TrimSpace(labels["job"])
}

// Key is an alert's event.Alert Key: its fingerprint, which Alertmanager
// and Grafana compute from its labels, or, from a sender that gives none,
// "labels/" and a SHA-256 digest of its sorted label pairs, so that the
// firing and the resolution of one label set always share a key.
func Key(fingerprint string, labels map[string]string) string {
	if fp := strings.TrimSpace(fingerprint); fp != "" {
		return event.AlertKey(fp)
	}
	names := slices.Sorted(maps.Keys(labels))
	h := sha256.New()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0})
	}
	return event.AlertKey("labels", hex.EncodeToString(h.Sum(nil))[:32])
}
