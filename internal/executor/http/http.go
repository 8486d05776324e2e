// Package httpexec is the executor of the Autonomous Response Service's
// HTTP steps (action definitions with {"executor": {"type": "http", ...}}):
// one request, its method, URL, headers and body rendered from the step's
// data with executor.Render, sent through the outbound guard, and its
// answer turned into an executor.Result. (The directory is
// internal/executor/http; the package is named httpexec so as not to
// shadow net/http.)
//
// What it guarantees:
//
//   - Every connection goes through an outbound.Guard: loopback, private,
//     link-local and metadata addresses are refused unless the operator
//     allowed them with --outbound-allow, at connect time, redirects
//     included. A refusal of the first request fails the step with
//     executor.ErrRefused: nothing was sent.
//   - A rendered value is one value: a URL that does not parse as an
//     absolute http or https URL, or a header value with a control
//     character (CR, LF, NUL ...: an event field trying to add a header)
//     refuses the run with executor.ErrRefused before anything is sent.
//     Values placed in a URL should go through text/template's urlquery.
//   - Secrets stay secret: header_files are read once by New, sent only to
//     the URL's own host and scheme (a redirect elsewhere drops them), never
//     logged, never in an error, and scrubbed from the response body kept
//     in the Result; the URL is reported as scheme://host/... (see
//     outbound.RedactURL), never with its userinfo, path or query.
//   - The response body is read to a bound (max_output); the request, the
//     body's reading included, to a timeout.
//   - A failure says whether it is worth retrying (executor.Retryable):
//     for an idempotent request, a timeout, a broken connection and the
//     statuses 429, 502, 503 and 504; for any request, a connection that
//     could not be opened (nothing was sent). Never a refusal, another
//     status, or the end of the caller's context.
//
// Result: ExitCode is the HTTP status (-1 when there was no response),
// Output the response body (bounded), Outputs "status" (the status as
// decimal, empty without a response), "body" and "output" (both the body).
package httpexec

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// UserAgent is the User-Agent of a request whose definition sets none.
const UserAgent = "reflex"

// redacted replaces a secret in a response body.
const redacted = "[redacted]"

// drainBound is how much of a response body beyond max_output is read (and
// dropped) so that the connection can be reused.
const drainBound = 64 << 10

// Options are the dependencies of an Executor.
type Options struct {
	// Guard is the outbound guard every request goes through. Required.
	Guard *outbound.Guard
	// Logger receives a debug record of each request (method, URL as
	// scheme://host/..., status, duration; never a header or a body).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock of Result.Started and Finished. Default time.Now.
	Now func() time.Time
}

// StatusError is the failure of a request that was answered with a status
// the definition does not expect.
type StatusError struct {
	// Code is the status received.
	Code int
	// Expected are the statuses that would have succeeded; empty for any
	// 2xx.
	Expected []int
}

// Error says which status came and which were expected.
func (e *StatusError) Error() string {
	want := "2xx"
	if len(e.Expected) > 0 {
		s := make([]string, len(e.Expected))
		for i, c := range e.Expected {
			s[i] = strconv.Itoa(c)
		}
		want = strings.Join(s, ", ")
	}
	text := http.StatusText(e.Code)
	if text == "" {
		return fmt.Sprintf("status %d, want %s", e.Code, want)
	}
	return fmt.Sprintf("status %d (%s), want %s", e.Code, text, want)
}

// Executor runs the HTTP request of one action definition. It is built
// once per definition by New and is safe for concurrent use.
type Executor struct {
	cfg     Config
	guard   *outbound.Guard
	logger  *slog.Logger
	now     func() time.Time
	headers []header // templated, by name
	files   []header // from header_files, by name
	secrets []string // what is scrubbed from a body
	scrub   *strings.Replacer
	ua      bool // the definition sets User-Agent
}

var _ executor.Executor = (*Executor)(nil)

type header struct{ name, value string }

// New returns the Executor of cfg, which must pass Validate. It reads the
// header files now: a file that cannot be read, is empty once trimmed,
// is larger than MaxHeaderFileSize or holds a control character is an
// error naming the header and the path (never the content). Errors wrap
// executor.ErrInvalid.
func New(cfg Config, opts Options) (*Executor, error) {
	if opts.Guard == nil {
		return nil, fmt.Errorf("httpexec: %w: an outbound guard is required", executor.ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Executor{
		cfg:    cfg,
		guard:  opts.Guard,
		logger: opts.Logger.With("component", "executor", "executor", Type),
		now:    opts.Now,
	}
	for _, name := range sortedKeys(cfg.Headers) {
		canon := http.CanonicalHeaderKey(name)
		e.headers = append(e.headers, header{name: canon, value: cfg.Headers[name]})
		e.ua = e.ua || canon == "User-Agent"
	}
	for _, name := range sortedKeys(cfg.HeaderFiles) {
		canon := http.CanonicalHeaderKey(name)
		v, err := readHeaderFile(canon, cfg.HeaderFiles[name])
		if err != nil {
			return nil, err
		}
		e.files = append(e.files, header{name: canon, value: v})
		e.secrets = append(e.secrets, secretForms(v)...)
		e.ua = e.ua || canon == "User-Agent"
	}
	e.scrub = scrubber(e.secrets)
	return e, nil
}

// readHeaderFile reads the value of a header from path.
func readHeaderFile(name, path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator's configured header file
	if err != nil {
		return "", fmt.Errorf("httpexec: %w: header_files %s: %s: %w", executor.ErrInvalid, name, path, pathErr(err))
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose
	b, err := io.ReadAll(io.LimitReader(f, MaxHeaderFileSize+1))
	if err != nil {
		return "", fmt.Errorf("httpexec: %w: header_files %s: %s: %w", executor.ErrInvalid, name, path, pathErr(err))
	}
	if len(b) > MaxHeaderFileSize {
		return "", fmt.Errorf("httpexec: %w: header_files %s: %s is larger than %d bytes", executor.ErrInvalid, name, path, MaxHeaderFileSize)
	}
	v := strings.TrimSpace(string(b))
	switch {
	case v == "":
		return "", fmt.Errorf("httpexec: %w: header_files %s: %s is empty", executor.ErrInvalid, name, path)
	case !validHeaderValue(v):
		return "", fmt.Errorf("httpexec: %w: header_files %s: %s holds a control character (one line is one header value)", executor.ErrInvalid, name, path)
	}
	return v, nil
}

// pathErr drops the path an *os.PathError repeats.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// secretForms are the forms of a secret header value that an answer may
// echo: the value, and the credentials of "<scheme> <credentials>"
// (Authorization: Bearer ...).
func secretForms(v string) []string {
	out := []string{v}
	if _, cred, ok := strings.Cut(v, " "); ok && len(strings.TrimSpace(cred)) >= 8 {
		out = append(out, strings.TrimSpace(cred))
	}
	return out
}

// scrubber replaces each secret by redacted, the longest first so that a
// secret holding another is replaced whole; nil without secrets.
func scrubber(secrets []string) *strings.Replacer {
	var uniq []string
	for _, s := range secrets {
		if s != "" && !slices.Contains(uniq, s) {
			uniq = append(uniq, s)
		}
	}
	if len(uniq) == 0 {
		return nil
	}
	slices.SortStableFunc(uniq, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(uniq))
	for _, s := range uniq {
		pairs = append(pairs, s, redacted)
	}
	return strings.NewReplacer(pairs...)
}

// Execute sends the request rendered from req.Data and waits for its
// answer, within req.Timeout (the definition's timeout when 0). See the
// package documentation for the Result and the errors: an error wrapping
// executor.ErrRefused (nothing was sent: a template that does not
// render, a URL that is not absolute http(s), a header value with a
// control character, the guard's refusal), executor.ErrTimeout, a
// *StatusError, the context's error when ctx ended first, or a transport
// error; executor.Retryable says which are worth a retry.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	res := executor.Result{ExitCode: -1, Outputs: outputs("", nil)}
	timeout := e.cfg.Timeout
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logger := e.logger.With("execution_id", req.ExecutionID, "step", req.Step)

	hreq, secrets, err := e.request(runCtx, req.Data)
	if err != nil {
		logger.DebugContext(ctx, "http step refused", "err", err)
		return res, err
	}
	what := e.cfg.Method + " " + outbound.RedactURL(hreq.URL.String())
	logger = logger.With("method", e.cfg.Method, "url", outbound.RedactURL(hreq.URL.String()))

	client := e.guard.HTTPClient(timeout)
	redirected := false
	client.CheckRedirect = e.checkRedirect(client.CheckRedirect, &redirected)

	started := e.now()
	resp, err := client.Do(hreq)
	if err != nil {
		err = e.failure(ctx, what, err, redirected)
		if redirected || !errors.Is(err, executor.ErrRefused) {
			res.Started, res.Finished = started, e.now()
		}
		logger.DebugContext(ctx, "http step failed", "err", err)
		return res, err
	}
	defer resp.Body.Close()
	body, truncated, rerr := readBody(resp.Body, e.cfg.MaxOutput, secrets)
	res.Started, res.Finished = started, e.now()
	res.ExitCode = resp.StatusCode
	res.Output, res.Truncated = body, truncated
	res.Outputs = outputs(strconv.Itoa(resp.StatusCode), body)
	logger = logger.With("status", resp.StatusCode, "bytes", len(body), "truncated", truncated, "duration", res.Finished.Sub(res.Started))

	if rerr != nil {
		err := e.failure(ctx, what+": reading the response", rerr, true)
		logger.DebugContext(ctx, "http step failed", "err", err)
		return res, err
	}
	if !e.expected(resp.StatusCode) {
		err := fmt.Errorf("httpexec: %s: %w", what, &StatusError{Code: resp.StatusCode, Expected: slices.Clone(e.cfg.ExpectedStatus)})
		if e.cfg.Idempotent && retryableStatus(resp.StatusCode) {
			err = executor.MarkRetryable(err)
		}
		logger.DebugContext(ctx, "http step failed", "err", err)
		return res, err
	}
	logger.DebugContext(ctx, "http step done")
	return res, nil
}

// request renders the request of data. Its errors wrap
// executor.ErrRefused and quote neither a template nor a rendered value.
// It returns the secrets to scrub from the answer: the header files' and
// the URL's userinfo.
func (e *Executor) request(ctx context.Context, data map[string]any) (*http.Request, *secretSet, error) {
	raw, err := render("url", e.cfg.URL, data, maxURL)
	if err != nil {
		return nil, nil, err
	}
	u, err := parseURL(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("httpexec: url: %w: %w", executor.ErrRefused, err)
	}
	var body io.Reader
	if e.cfg.Body != "" {
		b, err := render("body", e.cfg.Body, data, maxBody)
		if err != nil {
			return nil, nil, err
		}
		body = strings.NewReader(b)
	}
	hreq, err := http.NewRequestWithContext(ctx, e.cfg.Method, raw, body)
	if err != nil {
		return nil, nil, fmt.Errorf("httpexec: %w: %w", executor.ErrRefused, outbound.StripURLError(err))
	}
	for _, h := range e.headers {
		v, err := render("headers "+h.name, h.value, data, maxHeaderValue)
		if err != nil {
			return nil, nil, err
		}
		if !validHeaderValue(v) {
			return nil, nil, fmt.Errorf("httpexec: headers %s: %w: the rendered value holds a control character (CR, LF, NUL ...)", h.name, executor.ErrRefused)
		}
		hreq.Header[h.name] = []string{v}
	}
	for _, h := range e.files {
		hreq.Header[h.name] = []string{h.value}
	}
	if !e.ua {
		hreq.Header.Set("User-Agent", UserAgent)
	}
	s := &secretSet{list: e.secrets, scrub: e.scrub}
	if u.User != nil {
		user := u.User.Username()
		pass, _ := u.User.Password()
		s.list = append(slices.Clone(e.secrets), u.User.String(), base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		if pass != "" {
			s.list = append(s.list, pass, url.QueryEscape(pass))
		}
		s.scrub = scrubber(s.list)
	}
	return hreq, s, nil
}

// render renders one field's template, refusing a value longer than max.
func render(field, tmpl string, data map[string]any, maxLen int) (string, error) {
	v, err := executor.Render(tmpl, data)
	if err != nil {
		return "", fmt.Errorf("httpexec: %s: %w: %w", field, executor.ErrRefused, cause(err))
	}
	if len(v) > maxLen {
		return "", fmt.Errorf("httpexec: %s: %w: rendered to %d bytes, at most %d", field, executor.ErrRefused, len(v), maxLen)
	}
	return v, nil
}

// checkRedirect wraps the guard's redirect check: it records that a
// redirect was followed (a refusal after one is not "nothing was sent"),
// and drops the header files' headers from a request to another host or
// from https to http, as net/http does for Authorization and Cookie.
func (e *Executor) checkRedirect(next func(*http.Request, []*http.Request) error, redirected *bool) func(*http.Request, []*http.Request) error {
	strip := false
	return func(r *http.Request, via []*http.Request) error {
		*redirected = true
		first := via[0].URL
		if r.URL.Host != first.Host || (first.Scheme == "https" && r.URL.Scheme != "https") {
			strip = true
		}
		if strip {
			for _, h := range e.files {
				r.Header.Del(h.name)
			}
		}
		return next(r, via)
	}
}

// failure turns an error of the transport into the step's error. parent
// is the caller's context: when it ended, its error is returned, not a
// timeout and not retryable. sent says that part of the work may have
// been done (a redirect was followed, the answer was being read).
func (e *Executor) failure(parent context.Context, what string, err error, sent bool) error {
	stripped := outbound.StripURLError(err)
	var refused *outbound.RefusedError
	switch {
	case errors.As(err, &refused) && !sent:
		return fmt.Errorf("httpexec: %s: %w: %w", what, executor.ErrRefused, stripped)
	case errors.As(err, &refused):
		return fmt.Errorf("httpexec: %s: after a redirect: %w", what, stripped)
	case parent.Err() != nil:
		return fmt.Errorf("httpexec: %s: %w", what, parent.Err())
	}
	// A connection that could not be opened sent nothing: worth a retry
	// whatever the method.
	retry := e.cfg.Idempotent || (!sent && isDial(err))
	if isTimeout(err) {
		err = fmt.Errorf("httpexec: %s: %w: %w", what, executor.ErrTimeout, stripped)
	} else {
		err = fmt.Errorf("httpexec: %s: %w", what, stripped)
	}
	if retry {
		return executor.MarkRetryable(err)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryableStatus: the statuses that say "try again later".
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func (e *Executor) expected(code int) bool {
	if len(e.cfg.ExpectedStatus) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(e.cfg.ExpectedStatus, code)
}

func outputs(status string, body []byte) map[string]string {
	return map[string]string{"status": status, "body": string(body), "output": string(body)}
}

// secretSet is what is scrubbed from one answer.
type secretSet struct {
	list  []string
	scrub *strings.Replacer // nil: nothing to scrub
}

// readBody reads at most maxLen bytes of r, scrubbed of secrets, and
// whether the body was longer; then it drains a little more so that the
// connection can be reused.
func readBody(r io.Reader, maxLen int, s *secretSet) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(maxLen)+1))
	more := len(b) > maxLen
	if more {
		b = b[:maxLen]
	}
	if err == nil && more {
		_, _ = io.Copy(io.Discard, io.LimitReader(r, drainBound))
	}
	if s.scrub != nil {
		b = []byte(s.scrub.Replace(string(b)))
		if more || err != nil {
			// The body was cut: a secret may have been cut with it, and
			// its beginning would not have been recognized.
			b = b[:len(b)-secretPrefixSuffix(b, s.list)]
		}
	}
	if len(b) > maxLen {
		b, more = b[:maxLen], true
	}
	return b, more, err
}

// secretPrefixSuffix returns the length of the longest end of b that is
// the beginning (not the whole) of one of secrets.
func secretPrefixSuffix(b []byte, secrets []string) int {
	longest := 0
	for _, s := range secrets {
		for k := min(len(s)-1, len(b)); k > longest; k-- {
			if b[len(b)-1] == s[k-1] && bytes.HasSuffix(b, []byte(s[:k])) {
				longest = k
				break
			}
		}
	}
	return longest
}
