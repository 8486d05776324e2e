package httpexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

// Type is the executor type this package runs: {"type": "http", ...}.
const Type = "http"

// Defaults and bounds of a Config.
const (
	// DefaultTimeout bounds a request when the definition sets no
	// timeout and the step none either.
	DefaultTimeout = 30 * time.Second
	// MaxTimeout is the longest timeout a definition may set.
	MaxTimeout = 10 * time.Minute
	// MaxOutputLimit is the largest max_output a definition may set: the
	// response body is kept in memory, stored with the step and shown in
	// the progress monitor.
	MaxOutputLimit = 1 << 20
	// MaxHeaders bounds the headers and header_files of a definition
	// together.
	MaxHeaders = 64
	// MaxExpectedStatus bounds the expected_status list.
	MaxExpectedStatus = 32
	// MaxHeaderFileSize is the largest header file New reads.
	MaxHeaderFileSize = 8 << 10

	maxURLTemplate    = 8 << 10  // the url as written
	maxURL            = 16 << 10 // the url once rendered
	maxHeaderTemplate = 8 << 10  // a header value as written
	maxHeaderValue    = 16 << 10 // a header value once rendered
	maxBodyTemplate   = 1 << 20  // the body as written
	maxBody           = 4 << 20  // the body once rendered
	maxHeaderName     = 256
)

// Config is an HTTP step as an action definition writes it, once Parse has
// applied the defaults. A Config that Validate accepts can be given to New.
type Config struct {
	// Method is GET (the default), HEAD, POST, PUT, PATCH or DELETE.
	Method string
	// URL is a template (see executor.Render) that must render to an
	// absolute http or https URL. A value placed in a URL should go
	// through text/template's builtin urlquery, so that "/", "?", "&",
	// "#" or a blank in it stay part of that value:
	// "https://cmdb/api/hosts/{{urlquery .event.source_host}}". (urlquery
	// escapes for a query: a blank becomes "+", which a path keeps as
	// "+".) Userinfo in the URL is sent as basic
	// authentication and never logged; a secret is better kept in
	// HeaderFiles.
	URL string
	// Headers maps a header name to a templated value; each renders to
	// exactly one header value, and a rendered value holding a control
	// character (CR, LF, NUL ...; a tab is allowed) refuses the run.
	Headers map[string]string
	// HeaderFiles maps a header name to the path of a file (absolute)
	// whose content, trimmed of surrounding white space, is the header's
	// value: for secrets such as Authorization. New reads the files; their
	// content is never logged, never in an error, and scrubbed from the
	// Result.
	HeaderFiles map[string]string
	// Body is the templated request body; empty for none. Not allowed
	// with HEAD.
	Body string
	// ExpectedStatus lists the statuses that count as success; empty for
	// any 2xx.
	ExpectedStatus []int
	// Timeout bounds the whole request, the reading of the response body
	// included: DefaultTimeout when absent, at most MaxTimeout. A step's
	// own timeout (Request.Timeout) takes precedence.
	Timeout time.Duration
	// MaxOutput bounds the response body kept in the Result:
	// executor.DefaultMaxOutput when absent, at most MaxOutputLimit.
	MaxOutput int
	// Idempotent says the request may be sent again after a timeout, a
	// broken connection or a 429, 502, 503 or 504: by default true for
	// GET, HEAD, PUT and DELETE, false for POST and PATCH.
	Idempotent bool
}

// methods are the methods a definition may use, with whether each is
// idempotent by default.
var methods = map[string]bool{
	http.MethodGet:    true,
	http.MethodHead:   true,
	http.MethodPut:    true,
	http.MethodDelete: true,
	http.MethodPost:   false,
	http.MethodPatch:  false,
}

// managedHeaders are set by net/http from the request itself; a definition
// cannot set them.
var managedHeaders = []string{
	"Connection", "Content-Length", "Host", "Keep-Alive", "Proxy-Connection",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// Parse decodes spec (its Type must be "http") strictly: every key other
// than "type" must be one of the fields below, once, with a value of its
// type (a JSON null is not a value); then it applies the defaults and
// validates. Keys: method, url, headers, header_files, body,
// expected_status, timeout (a duration such as "30s"), max_output,
// idempotent. Errors wrap executor.ErrInvalid and name the key.
func Parse(spec executor.Spec) (Config, error) {
	if spec.Type != Type {
		return Config{}, invalid("executor type %s is not %q", executor.Quote(spec.Type), Type)
	}
	fields, err := executor.Object(spec.Config)
	if err != nil {
		return Config{}, invalid("%v", err)
	}
	// Defaults first, then what the definition says.
	c := Config{Method: http.MethodGet, Timeout: DefaultTimeout, MaxOutput: executor.DefaultMaxOutput}
	var idempotent *bool
	for _, f := range fields {
		var err error
		switch f.Key {
		case "type":
			// Read by executor.ParseSpec.
		case "method":
			err = executor.DecodeString(f.Val, &c.Method)
			c.Method = strings.ToUpper(c.Method)
		case "url":
			err = executor.DecodeString(f.Val, &c.URL)
		case "headers":
			c.Headers, err = decodeStringMap(f.Val)
		case "header_files":
			c.HeaderFiles, err = decodeStringMap(f.Val)
		case "body":
			err = executor.DecodeString(f.Val, &c.Body)
		case "expected_status":
			err = decodeInts(f.Val, &c.ExpectedStatus)
		case "timeout":
			c.Timeout, err = decodeDuration(f.Val)
		case "max_output":
			err = decodeInt(f.Val, &c.MaxOutput)
		case "idempotent":
			var b bool
			err = decodeBool(f.Val, &b)
			idempotent = &b
		default:
			return Config{}, invalid("unknown key %s", executor.Quote(f.Key))
		}
		if err != nil {
			return Config{}, invalid("%s: %v", f.Key, err)
		}
	}
	if idempotent != nil {
		c.Idempotent = *idempotent
	} else {
		c.Idempotent = methods[c.Method]
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks a Config as a whole: the method, the URL (its template
// parses; written without a template, it is an absolute http or https
// URL), header names (HTTP tokens, each once whatever its case, none that
// net/http manages such as Host or Content-Length), static header values
// without control characters, header file paths (absolute), the body (a
// template that parses; none with HEAD), the expected statuses (100-599),
// the timeout (above 0, at most MaxTimeout) and max_output (above 0, at
// most MaxOutputLimit). Errors wrap executor.ErrInvalid, name the field
// and never quote a template or a header value.
func (c Config) Validate() error {
	if _, ok := methods[c.Method]; !ok {
		return invalid("method %s: want one of GET, HEAD, POST, PUT, PATCH, DELETE", executor.Quote(c.Method))
	}
	if err := c.validateURL(); err != nil {
		return err
	}
	if len(c.Headers)+len(c.HeaderFiles) > MaxHeaders {
		return invalid("headers and header_files: %d headers, at most %d", len(c.Headers)+len(c.HeaderFiles), MaxHeaders)
	}
	seen := map[string]string{}
	for _, name := range sortedKeys(c.Headers) {
		if err := checkHeaderName("headers", name, seen); err != nil {
			return err
		}
		v := c.Headers[name]
		if len(v) > maxHeaderTemplate {
			return invalid("headers %s: longer than %d bytes", name, maxHeaderTemplate)
		}
		if err := checkTemplate(v); err != nil {
			return invalid("headers %s: %v", name, err)
		}
		if !strings.Contains(v, "{{") && !validHeaderValue(v) {
			return invalid("headers %s: the value holds a control character (CR, LF, NUL ...)", name)
		}
	}
	for _, name := range sortedKeys(c.HeaderFiles) {
		if err := checkHeaderName("header_files", name, seen); err != nil {
			return err
		}
		p := c.HeaderFiles[name]
		if p == "" || !filepath.IsAbs(p) {
			return invalid("header_files %s: want an absolute path", name)
		}
	}
	if c.Body != "" && c.Method == http.MethodHead {
		return invalid("body: a HEAD request has no body")
	}
	if len(c.Body) > maxBodyTemplate {
		return invalid("body: longer than %d bytes", maxBodyTemplate)
	}
	if err := checkTemplate(c.Body); err != nil {
		return invalid("body: %v", err)
	}
	if len(c.ExpectedStatus) > MaxExpectedStatus {
		return invalid("expected_status: %d statuses, at most %d", len(c.ExpectedStatus), MaxExpectedStatus)
	}
	for _, s := range c.ExpectedStatus {
		if s < 100 || s > 599 {
			return invalid("expected_status: %d is not an HTTP status (100-599)", s)
		}
	}
	if c.Timeout <= 0 || c.Timeout > MaxTimeout {
		return invalid("timeout %s: want above 0 and at most %s", c.Timeout, MaxTimeout)
	}
	if c.MaxOutput <= 0 || c.MaxOutput > MaxOutputLimit {
		return invalid("max_output %d: want above 0 and at most %d", c.MaxOutput, MaxOutputLimit)
	}
	return nil
}

func (c Config) validateURL() error {
	switch {
	case c.URL == "":
		return invalid("url is required")
	case len(c.URL) > maxURLTemplate:
		return invalid("url: longer than %d bytes", maxURLTemplate)
	}
	if strings.Contains(c.URL, "{{") {
		if err := checkTemplate(c.URL); err != nil {
			return invalid("url: %v", err)
		}
		return nil
	}
	if _, err := parseURL(c.URL); err != nil {
		return invalid("url: %v", err)
	}
	return nil
}

// parseURL parses an URL as rendered: absolute, http or https, with a
// host. Its errors never quote the URL (it may carry a secret).
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the URL: keep only what it says.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("want an absolute http or https URL")
	}
	if u.Host == "" {
		return nil, errors.New("the URL has no host")
	}
	return u, nil
}

// checkHeaderName checks a header name of field and that no other header
// of the definition has the same name in another case.
func checkHeaderName(field, name string, seen map[string]string) error {
	if !validToken(name) || len(name) > maxHeaderName {
		return invalid("%s: %s is not a header name", field, executor.Quote(name))
	}
	canon := http.CanonicalHeaderKey(name)
	if slices.Contains(managedHeaders, canon) {
		return invalid("%s: %s is set by the HTTP client and cannot be configured", field, canon)
	}
	if prev, ok := seen[canon]; ok {
		return invalid("%s: %s is already set by %s", field, name, prev)
	}
	seen[canon] = field + " " + name
	return nil
}

// checkTemplate checks that tmpl parses, with an error that does not
// quote it (executor.Check's does).
func checkTemplate(tmpl string) error {
	if err := executor.Check(tmpl); err != nil {
		return cause(err)
	}
	return nil
}

// cause returns the innermost of executor.Check's and executor.Render's
// errors, text/template's, which names the position and the action but
// does not quote the whole template as their own message does.
func cause(err error) error {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := m.Unwrap(); len(errs) > 0 {
			return errs[len(errs)-1]
		}
	}
	return errors.New("template does not parse")
}

// validToken reports whether s is an HTTP token (RFC 9110 section 5.6.2),
// which a header name is.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v can be sent as one header value: no
// control character but the tab (CR and LF would start another header,
// NUL is refused by servers).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("httpexec: %w: %s", executor.ErrInvalid, fmt.Sprintf(format, args...))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func decodeBool(v json.RawMessage, dst *bool) error {
	if executor.IsNull(v) || json.Unmarshal(v, dst) != nil {
		return errors.New("want true or false")
	}
	return nil
}

func decodeInt(v json.RawMessage, dst *int) error {
	if executor.IsNull(v) || json.Unmarshal(v, dst) != nil {
		return errors.New("want an integer")
	}
	return nil
}

func decodeInts(v json.RawMessage, dst *[]int) error {
	var raw []json.RawMessage
	if executor.IsNull(v) || json.Unmarshal(v, &raw) != nil {
		return errors.New("want a list of integers")
	}
	out := make([]int, 0, len(raw))
	for i, r := range raw {
		var n int
		if err := decodeInt(r, &n); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, n)
	}
	*dst = out
	return nil
}

func decodeStringMap(v json.RawMessage) (map[string]string, error) {
	if executor.IsNull(v) {
		return nil, errors.New("want an object of strings")
	}
	fields, err := executor.Object(v)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		var s string
		if err := executor.DecodeString(f.Val, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", executor.Quote(f.Key), err)
		}
		out[f.Key] = s
	}
	return out, nil
}

func decodeDuration(v json.RawMessage) (time.Duration, error) {
	var s string
	if err := executor.DecodeString(v, &s); err != nil {
		return 0, errors.New(`want a duration such as "30s"`)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf(`%s: want a positive duration such as "30s"`, executor.Quote(s))
	}
	return d, nil
}
