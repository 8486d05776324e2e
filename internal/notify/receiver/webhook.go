package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// SignatureHeader is the header that carries a generic webhook's
// signature.
const SignatureHeader = "X-Reflex-Signature"

// DefaultTolerance is the replay window Verify uses when given none.
const DefaultTolerance = 5 * time.Minute

// maxSignatureHeader bounds the header Verify reads.
const maxSignatureHeader = 4096

// The errors of Verify.
var (
	// ErrSignatureMalformed: the header is not t=<unix seconds>,v1=<64 hex>.
	ErrSignatureMalformed = errors.New("receiver: malformed signature header")
	// ErrSignatureMismatch: no v1 is the HMAC of the body under the secret.
	ErrSignatureMismatch = errors.New("receiver: signature does not match")
	// ErrSignatureExpired: the timestamp is outside the tolerance (a replay,
	// or clocks too far apart).
	ErrSignatureExpired = errors.New("receiver: signature timestamp outside tolerance")
)

// Sign returns the X-Reflex-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under secret>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks an X-Reflex-Signature header against body, as a receiver
// of reflex's webhook does: the header has exactly one t (decimal unix
// seconds) and one or more v1 (hex HMAC-SHA256; any that matches will do,
// compared in constant time), other keys are ignored; t must lie within
// tolerance of now, either side (DefaultTolerance when tolerance <= 0).
// It answers nil, or an error wrapping ErrSignatureMalformed,
// ErrSignatureMismatch or ErrSignatureExpired. The timestamp is judged
// after the MAC, once it is known to be the sender's.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return fmt.Errorf("%w: no secret to verify with", ErrSignatureMismatch)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if len(header) > maxSignatureHeader {
		return fmt.Errorf("%w: longer than %d bytes", ErrSignatureMalformed, maxSignatureHeader)
	}
	var (
		ts   string
		sigs [][]byte
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: want key=value pairs separated by commas", ErrSignatureMalformed)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one t", ErrSignatureMalformed)
			}
			if v == "" || len(v) > 19 || strings.Trim(v, "0123456789") != "" {
				return fmt.Errorf("%w: t is not unix seconds", ErrSignatureMalformed)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not %d hex digits", ErrSignatureMalformed, 2*sha256.Size)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex HMAC-SHA256>", ErrSignatureMalformed)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t is not unix seconds", ErrSignatureMalformed)
	}
	want := mac(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	age := now.Sub(time.Unix(sec, 0))
	if age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed at %d, %s from now (tolerance %s)", ErrSignatureExpired, sec, age.Round(time.Second), tolerance)
	}
	return nil
}

// webhook posts the notification as JSON, signed when it has a secret.
type webhook struct {
	p      *poster
	secret string
	now    func() time.Time
}

var _ notify.Sender = (*webhook)(nil)

func newWebhook(_ string, c *notify.WebhookConfig, g *outbound.Guard, opts Options, logger *slog.Logger) (*webhook, error) {
	p, err := newPoster("webhook", c.URL, g, opts, logger, c.Secret)
	if err != nil {
		return nil, err
	}
	return &webhook{p: p, secret: c.Secret, now: opts.Now}, nil
}

// Send posts n's JSON: {"receiver","status","group_key","alerts":[...]}.
func (w *webhook) Send(ctx context.Context, n notify.Notification) error {
	if n.Alerts == nil {
		n.Alerts = []notify.Alert{}
	}
	body, err := json.Marshal(n)
	if err != nil {
		return permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	h := http.Header{}
	if w.secret != "" {
		h.Set(SignatureHeader, Sign(w.secret, w.now(), body))
	}
	return w.p.post(ctx, body, h)
}
