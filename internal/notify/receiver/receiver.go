// Package receiver sends a group's notification to one receiver: a generic
// webhook (signed), a Slack-compatible or Microsoft Teams incoming webhook,
// PagerDuty's Events API v2, or email over SMTP. Every connection goes
// through an outbound.Guard.
//
// A Sender makes one attempt per Send and says how it failed: an error
// wrapping notify.ErrRefused (the guard refused the address or scheme), a
// *notify.PermanentError (4xx other than 408 and 429, an SMTP 5xx, a
// configuration that cannot work), or any other error, which is worth a
// retry (5xx, 408, 429, timeouts, connection errors). Errors never carry a
// secret: webhook URLs are shown as scheme://host/..., and secrets are
// scrubbed from the receiver's answers quoted in errors.
package receiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// DefaultTimeout bounds one attempt when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultUserAgent is sent when Options.UserAgent is empty.
const DefaultUserAgent = "reflex"

// Options tune the senders New builds. The zero value is usable.
type Options struct {
	// Timeout bounds one attempt: the whole HTTP request, or the SMTP
	// session. Default DefaultTimeout.
	Timeout time.Duration
	// UserAgent is the HTTP User-Agent. Default DefaultUserAgent.
	UserAgent string
	// Now is the clock for signature timestamps and email dates. Default
	// time.Now.
	Now func() time.Time
	// Logger receives debug records of deliveries (never a secret).
	// Default: discard.
	Logger *slog.Logger
	// TLSConfig is the base configuration of SMTP's STARTTLS (its
	// RootCAs, for a private CA); ServerName is always the smarthost's
	// host. Default: the system's roots. HTTPS receivers use the system's
	// roots.
	TLSConfig *tls.Config
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Resolver is implemented by the senders that can close what they opened
// (PagerDuty): Resolve sends event_action "resolve" for the group's dedup
// key. Like Send, it makes one attempt and classifies its error.
type Resolver interface {
	Resolve(ctx context.Context, groupKey string) error
}

// New builds the sender of one receiver. It checks the configuration (one
// kind set, a URL with scheme http or https, email addresses, a readable
// password file) and answers a *notify.PermanentError naming the field
// when it is unusable; the error never quotes a secret. The sender is safe
// for concurrent use.
func New(r notify.Receiver, g *outbound.Guard, opts Options) (notify.Sender, error) {
	if g == nil {
		return nil, errors.New("receiver: an outbound guard is required")
	}
	opts = opts.withDefaults()
	set := 0
	for _, ok := range []bool{r.Webhook != nil, r.Slack != nil, r.Teams != nil, r.Email != nil, r.PagerDuty != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, permanent(fmt.Errorf("receiver %q: want exactly one of webhook, slack, teams, email, pagerduty; %d set", r.Name, set))
	}
	logger := opts.Logger.With("component", "notify", "receiver", r.Name)
	var (
		s   notify.Sender
		err error
	)
	switch {
	case r.Webhook != nil:
		s, err = newWebhook(r.Name, r.Webhook, g, opts, logger)
	case r.Slack != nil:
		s, err = newSlack(r.Name, r.Slack, g, opts, logger)
	case r.Teams != nil:
		s, err = newTeams(r.Name, r.Teams, g, opts, logger)
	case r.PagerDuty != nil:
		s, err = newPagerDuty(r.Name, r.PagerDuty, g, opts, logger)
	case r.Email != nil:
		s, err = newEmail(r.Name, r.Email, g, opts, logger)
	}
	if err != nil {
		return nil, permanent(fmt.Errorf("receiver %q: %w", r.Name, err))
	}
	return s, nil
}

func permanent(err error) error { return &notify.PermanentError{Err: err} }

// poster is what the HTTP receivers share: one URL, one client through the
// guard, the classification of answers, and the secrets to keep out of
// errors.
type poster struct {
	kind      string // webhook, slack, teams, pagerduty
	url       string
	redacted  string
	client    *http.Client
	userAgent string
	scrub     *strings.Replacer
	logger    *slog.Logger
}

// newPoster checks raw (an http or https URL with a host) and returns a
// poster for it. urlIsSecret says whether the URL's path is itself a
// secret (Slack's and Teams' are); secrets lists others to scrub from
// quoted answers.
func newPoster(kind, raw string, g *outbound.Guard, opts Options, logger *slog.Logger, secrets ...string) (*poster, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s: url is required", kind)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the URL: keep only what it says.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: url is not a valid URL: %w", kind, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s: url: scheme must be http or https", kind)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: url has no host", kind)
	}
	secrets = append(secrets, urlSecrets(u)...)
	return &poster{
		kind:      kind,
		url:       raw,
		redacted:  outbound.RedactURL(raw),
		client:    g.HTTPClient(opts.Timeout),
		userAgent: opts.UserAgent,
		scrub:     scrubber(secrets),
		logger:    logger.With("receiver_kind", kind),
	}, nil
}

// urlSecrets are the parts of a URL that may be secret: its userinfo, its
// path and every path segment and query value long enough to be a token.
func urlSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		out = append(out, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	if u.Path != "" && u.Path != "/" {
		out = append(out, u.EscapedPath(), u.Path)
		for _, seg := range strings.Split(u.Path, "/") {
			if len(seg) >= 6 {
				out = append(out, seg)
			}
		}
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 6 {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// scrubber replaces each non-empty secret by [redacted], longest first so
// that a secret containing another is replaced whole.
func scrubber(secrets []string) *strings.Replacer {
	var uniq []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if s != "" && !seen[s] {
			seen[s] = true
			uniq = append(uniq, s)
		}
	}
	// Longest first: strings.Replacer tries the old strings in order.
	for i := 1; i < len(uniq); i++ {
		for j := i; j > 0 && len(uniq[j]) > len(uniq[j-1]); j-- {
			uniq[j], uniq[j-1] = uniq[j-1], uniq[j]
		}
	}
	pairs := make([]string, 0, 2*len(uniq))
	for _, s := range uniq {
		pairs = append(pairs, s, "[redacted]")
	}
	return strings.NewReplacer(pairs...)
}

// maxQuoted is how much of a receiver's answer an error quotes.
const maxQuoted = 256

// post sends body and classifies the outcome.
func (p *poster) post(ctx context.Context, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("%s: post %s: %s", p.kind, p.redacted, p.scrub.Replace(outbound.StripURLError(err).Error())))
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", p.userAgent)
	resp, err := p.client.Do(req)
	if err != nil {
		// Keep the cause (refused, timeout, connection) for errors.Is, but
		// not the URL net/http puts in front of it. What remains is the
		// transport's and the guard's own text: addresses, no secrets.
		return fmt.Errorf("%s: post %s: %w", p.kind, p.redacted, outbound.StripURLError(err))
	}
	defer resp.Body.Close()
	quoted, _ := io.ReadAll(io.LimitReader(resp.Body, maxQuoted))
	// Drain a little more so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		p.logger.DebugContext(ctx, "notification delivered", "status", resp.StatusCode)
		return nil
	}
	err = fmt.Errorf("%s: post %s: %s%s", p.kind, p.redacted, resp.Status, p.quote(quoted))
	return classifyStatus(resp.StatusCode, err)
}

// quote renders the start of an answer for an error: printable, one line,
// without secrets.
func (p *poster) quote(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(string(b), "?"))
	s = strings.TrimSpace(p.scrub.Replace(s))
	if s == "" {
		return ""
	}
	return ": " + s
}

// classifyStatus says what a non-2xx status means for a retry: 408, 429
// and 5xx are worth one; other 4xx, and 1xx/3xx that reach here (a
// redirect without a Location, a 304), are not.
func classifyStatus(code int, err error) error {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return err
	}
	return permanent(err)
}
