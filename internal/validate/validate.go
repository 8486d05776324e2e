// Package validate is the result validator of the Autonomous Response
// Service: after a step ran, it judges the action's success criteria
// (actions.Criteria) against what the run did (executor.Result), folds
// the verdicts of an execution's steps into its outcome (successful,
// failed or partially_successful, which goes to
// decision_log.decision_outcome), and schedules the one criterion that
// cannot be judged at once: "no new event of the same pattern on this
// host within N minutes" (see QuietCheck and CheckQuiet).
//
// The criteria, all of those set must hold:
//
//   - exit_code: Result.ExitCode equals it (the exit status of a
//     process, the HTTP status of an HTTP step).
//   - output_matches: the RE2 regular expression matches somewhere in
//     Result.Output (the captured output, bounded by the executor).
//   - http_probe: one GET of the URL (a template rendered from the step's
//     data) through the outbound guard's client, answered with one of
//     expected_status (default any 2xx) within its timeout (default 10s).
//   - no_new_event_minutes: deferred; Validate returns the QuietCheck to
//     run once the minutes have passed.
//
// Validate judges the criteria only. Whether the executor itself
// succeeded (exit status 0, an expected HTTP status) stays the
// orchestrator's to say; a definition without criteria gets a Verdict
// with no checks that is OK.
package validate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/outbound"
	"github.com/reflex-ops/reflex/internal/store"
)

// Names of the checks of a Verdict, as the criteria are spelled in an
// action definition's success_criteria.
const (
	CheckExitCode      = "exit_code"
	CheckOutputMatches = "output_matches"
	CheckHTTPProbe     = "http_probe"
	CheckQuiet         = "no_new_event_minutes"
)

// Defaults and bounds of the checks.
const (
	// DefaultProbeTimeout bounds a probe whose criterion sets no timeout.
	DefaultProbeTimeout = 10 * time.Second
	// MaxProbeBody is how much of a probe's answer is read (and dropped)
	// so that its connection can be reused; the rest is not read.
	MaxProbeBody = 64 << 10
)

// Events is what the quiet check reads: the processed events of a host,
// and the triggering event again by its id (a repeat of it within the
// deduplication window is folded into it, moving its last_seen_at,
// rather than stored as a new event). store.EventStore implements it.
// Implementations are safe for concurrent use.
type Events interface {
	Events(ctx context.Context, q store.EventQuery) (store.EventPage, error)
	EventsByID(ctx context.Context, ids []int64) ([]event.Event, error)
}

var _ Events = store.EventStore(nil)

// Options are the dependencies of a Validator. The zero value is usable
// for the exit_code and output_matches criteria; http_probe needs Client
// and no_new_event_minutes needs Events, and a criterion whose
// dependency is missing fails with a detail saying so.
type Options struct {
	// Client makes the probes' requests. Give the outbound guard's
	// (outbound.Guard.HTTPClient), so that a probe cannot reach what the
	// operator did not allow; each probe has its own timeout besides.
	Client *http.Client
	// Events is the event store the quiet check reads.
	Events Events
	// Now is the clock: the start of a quiet check's window and whether
	// it is due. Default time.Now.
	Now func() time.Time
	// Logger receives debug records of the checks. Default: discard.
	Logger *slog.Logger
	// Lookback is how far before a quiet check's window the events of
	// the host are read, to find repeats folded into an event that
	// occurred before the window (deduplication keeps one event per
	// fingerprint for its window). Default DefaultLookback.
	Lookback time.Duration
	// MaxScan bounds the events one quiet check reads. Default
	// DefaultMaxScan.
	MaxScan int
}

// Validator judges success criteria. Build one with New; it is safe for
// concurrent use.
type Validator struct {
	client   *http.Client
	events   Events
	now      func() time.Time
	log      *slog.Logger
	lookback time.Duration
	maxScan  int

	mu      sync.Mutex
	regexps map[string]*regexp.Regexp // compiled output_matches, bounded
}

// maxRegexps bounds the cache of compiled expressions.
const maxRegexps = 1024

// New returns a Validator. It fails on options that cannot work (a
// negative Lookback or MaxScan).
func New(opts Options) (*Validator, error) {
	if opts.Lookback < 0 {
		return nil, fmt.Errorf("validate: Lookback %s is negative", opts.Lookback)
	}
	if opts.MaxScan < 0 {
		return nil, fmt.Errorf("validate: MaxScan %d is negative", opts.MaxScan)
	}
	v := &Validator{
		client:   opts.Client,
		events:   opts.Events,
		now:      opts.Now,
		log:      opts.Logger,
		lookback: opts.Lookback,
		maxScan:  opts.MaxScan,
		regexps:  map[string]*regexp.Regexp{},
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.log = v.log.With("component", "validate")
	if v.lookback == 0 {
		v.lookback = DefaultLookback
	}
	if v.maxScan == 0 {
		v.maxScan = DefaultMaxScan
	}
	return v, nil
}

// Verdict is the judgement of one run against its definition's criteria.
type Verdict struct {
	// OK says every immediate check passed (true when there are none).
	// With Quiet set, the step's final verdict also waits for it.
	OK bool `json:"ok"`
	// Checks are the immediate criteria judged, in the order exit_code,
	// output_matches, http_probe.
	Checks []Check `json:"checks,omitempty"`
	// Quiet is the deferred check of no_new_event_minutes, set when the
	// criterion is set and the immediate checks passed (a step that
	// failed already needs no further evidence).
	Quiet *QuietCheck `json:"quiet,omitempty"`
}

// Check is the judgement of one criterion.
type Check struct {
	// Name is the criterion: one of the Check* constants.
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail says what was seen against what was wanted: "exit status
	// 1, want 0".
	Detail string `json:"detail"`
}

// The words StepState.Validation starts with (see Verdict.Summary).
const (
	ValidationPassed  = "passed"
	ValidationFailed  = "failed"
	ValidationPending = "pending"
)

// Summary renders the verdict for StepState.Validation: "passed",
// "failed" or, while its quiet check is due, "pending", then ": " and
// each check's name and detail separated by "; ". An empty verdict (no
// criteria) is "" (StepState.Validation's "no criteria").
func (v Verdict) Summary() string {
	if len(v.Checks) == 0 && v.Quiet == nil && v.OK {
		return ""
	}
	word := ValidationPassed
	switch {
	case !v.OK:
		word = ValidationFailed
	case v.Quiet != nil:
		word = ValidationPending
	}
	parts := make([]string, 0, len(v.Checks)+1)
	for _, c := range v.Checks {
		parts = append(parts, c.Name+": "+c.Detail)
	}
	if v.Quiet != nil {
		parts = append(parts, CheckQuiet+": due at "+v.Quiet.Due.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return word
	}
	return word + ": " + strings.Join(parts, "; ")
}

// QuietSummary renders the answer of a quiet check for
// StepState.Validation, replacing the "pending" summary: "passed: ..."
// or "failed: ..." with detail. The immediate checks passed already (a
// quiet check is only deferred for them), so this is the step's final
// verdict.
func QuietSummary(ok bool, detail string) string {
	word := ValidationPassed
	if !ok {
		word = ValidationFailed
	}
	return word + ": " + CheckQuiet + ": " + detail
}

// ValidationState returns the word a StepState.Validation starts with:
// ValidationPassed, ValidationFailed, ValidationPending, or "" for none
// (no criteria, or a text this package did not write).
func ValidationState(s string) string {
	word, _, _ := strings.Cut(s, ":")
	switch word {
	case ValidationPassed, ValidationFailed, ValidationPending:
		return word
	}
	return ""
}

// Validate judges the immediate criteria of d after a run whose result
// is res and whose template data is data (the step's Request.Data): each
// criterion set gives one Check. It returns an error only when it could
// not judge: ctx ended during the probe. A criterion that cannot be
// judged for another reason (an expression that does not compile, a
// probe URL that does not render, no HTTP client) is a failed check
// whose detail says why.
func (v *Validator) Validate(ctx context.Context, d actions.Definition, data map[string]any, res executor.Result) (Verdict, error) {
	c := d.SuccessCriteria
	out := Verdict{OK: true}
	if c == nil {
		return out, nil
	}
	add := func(ch Check) {
		out.Checks = append(out.Checks, ch)
		out.OK = out.OK && ch.OK
	}
	if c.ExitCode != nil {
		add(exitCheck(*c.ExitCode, res.ExitCode))
	}
	if c.OutputMatches != "" {
		add(v.outputCheck(c.OutputMatches, res))
	}
	if c.HTTPProbe != nil {
		ch, err := v.probe(ctx, c.HTTPProbe, data)
		if err != nil {
			return Verdict{}, err
		}
		add(ch)
	}
	if c.NoNewEventMinutes > 0 {
		q, err := v.quietCheck(c.NoNewEventMinutes, data, res)
		switch {
		case err != nil:
			add(Check{Name: CheckQuiet, Detail: err.Error()})
		case out.OK:
			out.Quiet = &q
		}
	}
	v.log.DebugContext(ctx, "criteria judged", "action", d.Name, "ok", out.OK, "checks", len(out.Checks), "deferred", out.Quiet != nil)
	return out, nil
}

func exitCheck(want, got int) Check {
	ch := Check{Name: CheckExitCode, OK: got == want}
	switch {
	case got == -1:
		ch.Detail = fmt.Sprintf("no exit status (not started, killed or timed out), want %d", want)
	case ch.OK:
		ch.Detail = fmt.Sprintf("exit status %d", got)
	default:
		ch.Detail = fmt.Sprintf("exit status %d, want %d", got, want)
	}
	return ch
}

// outputCheck matches expr against the output. An expression that does
// not compile (actions.Validate refuses those; a definition stored before
// that check could hold one) fails the check.
func (v *Validator) outputCheck(expr string, res executor.Result) Check {
	ch := Check{Name: CheckOutputMatches}
	re, err := v.regexp(expr)
	if err != nil {
		ch.Detail = fmt.Sprintf("invalid regular expression: %v", err)
		return ch
	}
	ch.OK = re.Match(res.Output)
	switch {
	case ch.OK:
		ch.Detail = fmt.Sprintf("output matches %s", quote(expr))
	case res.Truncated:
		ch.Detail = fmt.Sprintf("output (%d bytes kept, the rest cut) does not match %s", len(res.Output), quote(expr))
	default:
		ch.Detail = fmt.Sprintf("output (%d bytes) does not match %s", len(res.Output), quote(expr))
	}
	return ch
}

func (v *Validator) regexp(expr string) (*regexp.Regexp, error) {
	v.mu.Lock()
	re, ok := v.regexps[expr]
	v.mu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.regexps) >= maxRegexps {
		clear(v.regexps)
	}
	v.regexps[expr] = re
	v.mu.Unlock()
	return re, nil
}

// probe makes the GET of an http_probe. Its error is only ctx's end.
func (v *Validator) probe(ctx context.Context, p *actions.Probe, data map[string]any) (Check, error) {
	ch := Check{Name: CheckHTTPProbe}
	if v.client == nil {
		ch.Detail = "no HTTP client configured for probes"
		return ch, nil
	}
	timeout := DefaultProbeTimeout
	if p.Timeout != "" {
		d, err := time.ParseDuration(p.Timeout)
		if err != nil || d <= 0 {
			ch.Detail = fmt.Sprintf("timeout %s: want a positive duration", quote(p.Timeout))
			return ch, nil
		}
		timeout = d
	}
	raw, err := executor.Render(p.URL, data)
	if err != nil {
		ch.Detail = "url does not render: " + renderCause(err)
		return ch, nil
	}
	shown := outbound.RedactURL(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ch.Detail = fmt.Sprintf("url %s is not an absolute http or https URL", shown)
		return ch, nil
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, raw, nil)
	if err != nil {
		ch.Detail = fmt.Sprintf("GET %s: %v", shown, outbound.StripURLError(err))
		return ch, nil
	}
	req.Header.Set("User-Agent", "reflex-validate")
	resp, err := v.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Check{}, fmt.Errorf("validate: http_probe: %w", ctx.Err())
		}
		cause := outbound.StripURLError(err)
		if errors.Is(err, context.DeadlineExceeded) || pctx.Err() != nil {
			ch.Detail = fmt.Sprintf("GET %s: no answer within %s", shown, timeout)
		} else {
			ch.Detail = fmt.Sprintf("GET %s: %v", shown, cause)
		}
		return ch, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxProbeBody))
	_ = resp.Body.Close()
	ch.OK = statusOK(resp.StatusCode, p.ExpectedStatus)
	if ch.OK {
		ch.Detail = fmt.Sprintf("GET %s: %s", shown, status(resp.StatusCode))
	} else {
		ch.Detail = fmt.Sprintf("GET %s: %s, want %s", shown, status(resp.StatusCode), wantStatus(p.ExpectedStatus))
	}
	return ch, nil
}

func statusOK(code int, expected []int) bool {
	if len(expected) == 0 {
		return code >= 200 && code < 300
	}
	return slices.Contains(expected, code)
}

func status(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("status %d (%s)", code, t)
	}
	return fmt.Sprintf("status %d", code)
}

func wantStatus(expected []int) string {
	if len(expected) == 0 {
		return "2xx"
	}
	s := make([]string, len(expected))
	for i, c := range expected {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ", ")
}

// renderCause is text/template's error inside executor.Render's, which
// names the position and the key without quoting the whole template
// (a URL template may hold credentials).
func renderCause(err error) string {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := m.Unwrap(); len(errs) > 0 {
			return errs[len(errs)-1].Error()
		}
	}
	return "template does not render"
}

// quote quotes s for a detail, shortened to 80 bytes.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}
