package receiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// helloName is what reflex says in EHLO.
const helloName = "localhost"

// maxEmailAlerts is how many alerts an email lists; the rest are counted.
const maxEmailAlerts = 100

// email sends one message per notification over SMTP: STARTTLS (required
// unless require_tls is false), AUTH PLAIN when a username is set (only
// over TLS), then the message.
type email struct {
	to           []*mail.Address
	from         *mail.Address
	smarthost    string
	host         string
	username     string
	password     string
	passwordFile string
	requireTLS   bool

	guard     *outbound.Guard
	timeout   time.Duration
	tlsConfig *tls.Config
	now       func() time.Time
	logger    *slog.Logger
}

var _ notify.Sender = (*email)(nil)

func newEmail(_ string, c *notify.EmailConfig, g *outbound.Guard, opts Options, logger *slog.Logger) (*email, error) {
	e := &email{
		smarthost:    c.Smarthost,
		username:     c.Username,
		password:     c.Password,
		passwordFile: c.PasswordFile,
		requireTLS:   c.RequireTLS == nil || *c.RequireTLS,
		guard:        g,
		timeout:      opts.Timeout,
		tlsConfig:    opts.TLSConfig,
		now:          opts.Now,
		logger:       logger.With("receiver_kind", "email"),
	}
	if len(c.To) == 0 {
		return nil, errors.New("email: to: at least one address is required")
	}
	for i, a := range c.To {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("email: to[%d]: %q is not an email address", i, a)
		}
		e.to = append(e.to, addr)
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf("email: from: %q is not an email address", c.From)
	}
	e.from = from
	host, port, err := net.SplitHostPort(c.Smarthost)
	if err != nil || host == "" {
		return nil, fmt.Errorf("email: smarthost: %q is not host:port", c.Smarthost)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("email: smarthost: %q has no valid port", c.Smarthost)
	}
	e.host = host
	switch {
	case c.Password != "" && c.PasswordFile != "":
		return nil, errors.New("email: password and password_file are exclusive")
	case c.Username == "" && (c.Password != "" || c.PasswordFile != ""):
		return nil, errors.New("email: a password needs a username")
	case c.Username != "" && c.Password == "" && c.PasswordFile == "":
		return nil, errors.New("email: username needs password or password_file")
	}
	if c.PasswordFile != "" {
		// Read now so that a bad path is an error of the policy; read
		// again at each send so that a rotated password is picked up.
		if _, err := e.readPassword(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// readPassword returns the password, from password_file when set (its
// trailing newline removed).
func (e *email) readPassword() (string, error) {
	if e.passwordFile == "" {
		return e.password, nil
	}
	b, err := os.ReadFile(e.passwordFile) //nolint:gosec // G304: the operator's configured password file

	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("email: password_file %s: %w", e.passwordFile, err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("email: password_file %s is empty", e.passwordFile)
	}
	return p, nil
}

// Send delivers one message for n to every address of to.
func (e *email) Send(ctx context.Context, n notify.Notification) error {
	password := ""
	if e.username != "" {
		p, err := e.readPassword()
		if err != nil {
			return permanent(err)
		}
		password = p
	}
	scrub := scrubber([]string{password, plainBlob(e.username, password)})
	msg, err := e.message(n)
	if err != nil {
		return permanent(err)
	}

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	c, err := e.connect(ctx)
	if err != nil {
		return e.classify(ctx, err, scrub)
	}
	defer c.Close() //nolint:errcheck // after Quit, or on a failure already reported

	if _, isTLS := c.TLSConnectionState(); !isTLS && e.username != "" {
		return permanent(fmt.Errorf("email: %s does not offer STARTTLS: refusing to authenticate in clear text", e.smarthost))
	}
	if e.username != "" {
		if !c.SupportsAuth(sasl.Plain) {
			return permanent(fmt.Errorf("email: %s does not offer AUTH PLAIN", e.smarthost))
		}
		if err := c.Auth(sasl.NewPlainClient("", e.username, password)); err != nil {
			return e.classify(ctx, fmt.Errorf("email: auth as %s at %s: %w", e.username, e.smarthost, err), scrub)
		}
	}
	to := make([]string, len(e.to))
	for i, a := range e.to {
		to[i] = a.Address
	}
	if err := c.SendMail(e.from.Address, to, bytes.NewReader(msg)); err != nil {
		return e.classify(ctx, fmt.Errorf("email: send via %s: %w", e.smarthost, err), scrub)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted at the end of DATA.
		e.logger.DebugContext(ctx, "smtp quit failed after delivery", "err", err)
	}
	e.logger.DebugContext(ctx, "notification delivered", "alerts", len(n.Alerts))
	return nil
}

// connect dials the smarthost through the guard and switches to TLS,
// unless TLS is optional and the server does not offer it.
func (e *email) connect(ctx context.Context) (*smtp.Client, error) {
	if e.requireTLS {
		return e.dialStartTLS(ctx)
	}
	// TLS is optional: find out whether it is offered, and if it is, use
	// it on a second connection (smtp's client switches to TLS only
	// before its first EHLO).
	conn, err := e.dialConn(ctx)
	if err != nil {
		return nil, err
	}
	c := e.client(smtp.NewClient(conn))
	if err := c.Hello(helloName); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("email: ehlo %s: %w", e.smarthost, err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return c, nil
	}
	_ = c.Quit()
	_ = c.Close()
	return e.dialStartTLS(ctx)
}

// dialConn connects through the guard. The client sets its own deadline
// per command; the context's deadline and cancellation close the
// connection under it.
func (e *email) dialConn(ctx context.Context) (net.Conn, error) {
	conn, err := e.guard.DialContext(ctx, "tcp", e.smarthost)
	if err != nil {
		return nil, fmt.Errorf("email: dial %s: %w", e.smarthost, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

// client sets the per-command timeouts, a backstop a little beyond the
// attempt's deadline, which closes the connection first.
func (e *email) client(c *smtp.Client) *smtp.Client {
	c.CommandTimeout = e.timeout + time.Second
	c.SubmissionTimeout = e.timeout + time.Second
	return c
}

// dialStartTLS connects, switches to TLS and says EHLO over it, so that a
// certificate that does not verify fails here.
func (e *email) dialStartTLS(ctx context.Context) (*smtp.Client, error) {
	conn, err := e.dialConn(ctx)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.tlsConfig != nil {
		cfg = e.tlsConfig.Clone()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
	}
	cfg.ServerName = e.host
	c, err := smtp.NewClientStartTLS(conn, cfg)
	if err != nil {
		_ = conn.Close()
		err = fmt.Errorf("email: starttls with %s: %w", e.smarthost, err)
		if !classifiable(ctx, err) {
			// Besides a reply or a broken connection, what fails here is
			// a server that does not offer STARTTLS.
			return nil, permanent(err)
		}
		return nil, err
	}
	e.client(c)
	if err := c.Hello(helloName); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("email: ehlo over tls with %s: %w", e.smarthost, err)
	}
	return c, nil
}

// classifiable reports whether err is an SMTP reply, a connection error or
// the context's end: what classify knows how to judge.
func classifiable(ctx context.Context, err error) bool {
	var (
		se *smtp.SMTPError
		ne net.Error
	)
	return ctx.Err() != nil || errors.As(err, &se) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// ctxConn releases the context's watch when the connection is closed.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// classify says whether an SMTP failure is worth a retry: the guard's
// refusal and a canceled context as they are; an SMTP 5xx reply and a
// certificate that does not verify are permanent; a 4xx reply, a timeout
// and a connection error are retryable. Secrets are scrubbed from the text.
func (e *email) classify(ctx context.Context, err error, scrub *strings.Replacer) error {
	if err == nil {
		return nil
	}
	var perm *notify.PermanentError
	if errors.As(err, &perm) || errors.Is(err, notify.ErrRefused) {
		return err
	}
	wrapped := &scrubbedError{err: err, scrub: scrub}
	if cerr := ctx.Err(); cerr != nil {
		// The connection was closed under the client: say why.
		return fmt.Errorf("%w (%w)", cerr, wrapped)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.Code >= 500 {
			return permanent(wrapped)
		}
		return wrapped
	}
	var (
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		aerr x509.UnknownAuthorityError
		ierr x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &herr) || errors.As(err, &aerr) || errors.As(err, &ierr) {
		return permanent(wrapped)
	}
	return wrapped
}

// scrubbedError keeps err in the chain but not its secrets in the text.
type scrubbedError struct {
	err   error
	scrub *strings.Replacer
}

// Error is err's text, scrubbed.
func (e *scrubbedError) Error() string { return e.scrub.Replace(e.err.Error()) }

// Unwrap returns err.
func (e *scrubbedError) Unwrap() error { return e.err }

// plainBlob is AUTH PLAIN's initial response, as a server might echo it.
func plainBlob(user, password string) string {
	if password == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// message renders n as an RFC 5322 message: Date, From, To, Subject,
// Message-ID, MIME text/plain in UTF-8, quoted-printable, CRLF line ends.
func (e *email) message(n notify.Notification) ([]byte, error) {
	now := e.now()
	s := summarize(n)
	id, err := messageID(e.from.Address, now)
	if err != nil {
		return nil, err
	}
	to := make([]string, len(e.to))
	for i, a := range e.to {
		to[i] = a.String()
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("Date", now.Format(time.RFC1123Z))
	header("From", e.from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", encodeHeader("[reflex] "+s.headline()))
	header("Message-ID", id)
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	header("X-Reflex-Receiver", encodeHeader(oneLine(n.Receiver, 200)))
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := io.WriteString(qp, emailBody(s)); err != nil {
		return nil, fmt.Errorf("email: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("email: encode body: %w", err)
	}
	return b.Bytes(), nil
}

// emailBody is the plain text of a group's message.
func emailBody(s summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", s.headline())
	fmt.Fprintf(&b, "Alerts:    %d\n", len(s.n.Alerts))
	fmt.Fprintf(&b, "Severity:  %s\n", list(s.severities, 5, 16))
	fmt.Fprintf(&b, "Rules:     %s\n", list(s.rules, 20, 200))
	fmt.Fprintf(&b, "Hosts:     %s\n", list(s.hosts, 50, 200))
	fmt.Fprintf(&b, "Receiver:  %s\n", oneLine(s.n.Receiver, 200))
	fmt.Fprintf(&b, "Group:     %s\n\n", oneLine(s.n.GroupKey, 500))
	b.WriteString("Most severe first:\n\n")
	for i, a := range s.alerts {
		if i == maxEmailAlerts {
			fmt.Fprintf(&b, "... and %d more\n", len(s.alerts)-i)
			break
		}
		fmt.Fprintf(&b, "- %s\n", line(a))
	}
	b.WriteString("\n-- \nSent by reflex.\n")
	return b.String()
}

// encodeHeader makes an untrusted value a safe header value: one line,
// RFC 2047 encoded when it is not printable ASCII.
func encodeHeader(s string) string {
	s = oneLine(s, 250)
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// messageID is a unique Message-ID in the sender's domain.
func messageID(from string, now time.Time) (string, error) {
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("email: message id: %w", err)
	}
	domain := "reflex.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		domain = from[at+1:]
	}
	return fmt.Sprintf("<%d.%s@%s>", now.UnixNano(), hex.EncodeToString(r[:]), domain), nil
}
