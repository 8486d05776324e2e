// Package email is reflex's email adapter: an SMTP listener (emersion's
// go-smtp) that turns alert mails into events. It offers STARTTLS when it
// has a certificate, AUTH PLAIN when it has users, a size limit, a
// recipient allow-list and a bound on concurrent sessions; it parses each
// message with go-message (text part, or HTML converted to text; the
// usual charsets decoded; attachments listed, not kept), extracts
// severity, host, service, event type and alert status with rules (see
// Rules), and answers 250 to DATA only once the event is on the intake
// log (451 when the intake cannot take it, so that the sender retries).
//
// go-smtp ends DATA only at <CR><LF>.<CR><LF>: a bare LF before the dot
// is data, so that a message cannot smuggle a second one past a relay
// that reads line endings differently (SMTP smuggling).
package email

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Labels of the adapter's metrics.
const (
	adapterLabel  = "email"
	listenerLabel = "smtp"
)

// Reasons of reflex_ingest_rejected_total{adapter="email"}.
const (
	ReasonTooLarge    = "too_large"   // the message is larger than MaxBytes (552)
	ReasonParse       = "parse"       // the message has no readable header (554)
	ReasonAuth        = "auth"        // MAIL before AUTH, or a failed AUTH (530, 535)
	ReasonRecipient   = "recipient"   // a recipient off the allow-list (550)
	ReasonConnections = "connections" // a session beyond MaxConns (421)
	ReasonIntake      = "intake"      // the intake log did not take the event in time (451: the sender retries)
	ReasonInternal    = "internal"    // the adapter failed on the message (554)
)

// SMTP replies of the adapter.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errTLSRequired  = &smtp.SMTPError{Code: 523, EnhancedCode: smtp.EnhancedCode{5, 7, 10}, Message: "TLS is required to authenticate"}
	errRecipient    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient not accepted here"}
	errParse        = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Cannot parse the message"}
	errTooLarge     = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too large for an event"}
	errInternal     = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 3, 0}, Message: "Cannot process the message"}
	errTryLater     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot store the message now, try again later"}
	errShutdown     = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down, try again later"}
)

// Server is a running SMTP listener.
type Server struct {
	opts     Options
	env      ingest.Env
	log      *slog.Logger
	sub      *intake.Submitter
	smtp     *smtp.Server
	ln       net.Listener
	served   chan struct{}
	ctx      context.Context // ends at the end of Stop: bounds the submissions
	cancel   context.CancelFunc
	received prometheus.Counter
	accepted prometheus.Counter
	rejected *prometheus.CounterVec

	mu       sync.Mutex
	stopping bool
	inflight sync.WaitGroup // messages between DATA and their answer
	stopOnce sync.Once
	stopErr  error
}

// Start listens on opts.Addr and serves until Stop. env gives the intake,
// the event size bound, the logger and the metrics' registerer.
func Start(env ingest.Env, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	if env.Intake == nil {
		return nil, fmt.Errorf("%w: no intake", ErrConfig)
	}
	met, err := ingest.NewMetrics(env.Registerer)
	if err != nil {
		return nil, fmt.Errorf("email: metrics: %w", err)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := env.Intake.NewSubmitter(intake.SubmitterOptions{Mode: intake.Blocking})
	if err != nil {
		return nil, fmt.Errorf("email: submitter: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		_ = sub.Close(context.Background())
		return nil, fmt.Errorf("email: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts: opts, env: env, log: log, sub: sub, served: make(chan struct{}),
		ctx: ctx, cancel: cancel,
		received: met.Received.WithLabelValues(adapterLabel, listenerLabel),
		accepted: met.Accepted.WithLabelValues(adapterLabel, listenerLabel),
		rejected: met.Rejected.MustCurryWith(prometheus.Labels{"adapter": adapterLabel, "listener": listenerLabel}),
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = opts.Domain
	srv.TLSConfig = opts.TLS
	srv.MaxMessageBytes = opts.MaxBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.ReadTimeout = opts.ReadTimeout
	srv.WriteTimeout = opts.WriteTimeout
	// The sessions decide: AUTH over TLS, or on loopback (see
	// session.AuthMechanisms).
	srv.AllowInsecureAuth = true
	srv.ErrorLog = smtpLog{log}
	s.smtp = srv
	s.ln = &limitListener{Listener: ln, max: opts.MaxConns, domain: opts.Domain, refused: s.rejected.WithLabelValues(ReasonConnections)}
	go func() {
		defer close(s.served)
		if err := srv.Serve(s.ln); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Error("smtp listener stopped", "err", err)
		}
	}()
	log.Info("smtp listener started", "addr", ln.Addr().String(), "starttls", opts.TLS != nil, "auth", opts.Users != nil)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop stops taking connections and messages (a DATA that begins now is
// answered 421), waits (bounded by ctx) for the messages being stored to
// be answered, closes every session and the submitter. It is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		_ = s.ln.Close()
		done := make(chan struct{})
		go func() { s.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.cancel() // the submissions still waiting give up: 451
			<-done
		}
		_ = s.smtp.Close()
		<-s.served
		s.cancel()
		s.stopErr = s.sub.Close(ctx)
	})
	return s.stopErr
}

var _ ingest.Stop = (*Server)(nil).Stop

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := b.s
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return nil, errShutdown
	}
	ss := &session{s: s, conn: c, helo: c.Hostname()}
	if addr, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ss.remote = addr.IP
	}
	_, ss.tls = c.TLSConnectionState()
	return ss, nil
}

// session is one SMTP session (a new one after STARTTLS).
type session struct {
	s        *Server
	conn     *smtp.Conn
	helo     string
	remote   net.IP
	tls      bool
	user     string
	failures int
	from     string
	rcpts    []string
}

var _ smtp.AuthSession = (*session)(nil)

// authAllowed: AUTH needs TLS, except from loopback, where nothing
// travels on a network.
func (ss *session) authAllowed() bool {
	return ss.tls || ss.remote.IsLoopback()
}

// AuthMechanisms offers PLAIN when the server has users and the
// connection may authenticate.
func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Users == nil || !ss.authAllowed() {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks a PLAIN authentication against the users, at most
// maxAuthFailures times per session.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	users := ss.s.opts.Users
	if users == nil || !strings.EqualFold(mech, sasl.Plain) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if !ss.authAllowed() {
		return nil, errTLSRequired
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if ss.failures >= maxAuthFailures || (identity != "" && identity != username) || !users.Check(username, password) {
			ss.failures++
			ss.s.rejected.WithLabelValues(ReasonAuth).Inc()
			ss.s.log.Warn("smtp authentication failed", "remote", ss.remote.String())
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Users != nil && ss.user == "" {
		ss.s.rejected.WithLabelValues(ReasonAuth).Inc()
		return errAuthRequired
	}
	ss.from = from
	ss.rcpts = ss.rcpts[:0]
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.s.opts.Recipients.Allows(to) {
		ss.s.rejected.WithLabelValues(ReasonRecipient).Inc()
		return errRecipient
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
}

func (ss *session) Logout() error { return nil }

// Data reads the message, makes its event and answers once the intake
// log has it.
func (ss *session) Data(r io.Reader) (err error) {
	s := ss.s
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return errShutdown
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	s.received.Inc()
	defer func() {
		if p := recover(); p != nil {
			s.rejected.WithLabelValues(ReasonInternal).Inc()
			s.log.Error("smtp: panic on a message", "err", fmt.Sprint(p), "remote", ss.remote.String())
			err = errInternal
		}
	}()

	cr := &countingReader{r: r}
	m, perr := ParseReader(cr)
	_, _ = io.Copy(io.Discard, cr) // the rest: its size, and whether it is too large
	if cr.err != nil && !errors.Is(cr.err, io.EOF) {
		var se *smtp.SMTPError
		if errors.As(cr.err, &se) && se.Code == smtp.ErrDataTooLarge.Code {
			s.rejected.WithLabelValues(ReasonTooLarge).Inc()
			return smtp.ErrDataTooLarge
		}
		return cr.err // the connection failed: no answer reaches the sender
	}
	if perr != nil {
		s.rejected.WithLabelValues(ReasonParse).Inc()
		return errParse
	}
	rcpts := ss.rcpts
	if len(rcpts) > maxAddresses {
		rcpts = rcpts[:maxAddresses]
	}
	env := Envelope{
		MailFrom: text(clip(ss.from, maxHeaderValue)),
		RcptTo:   make([]string, 0, len(rcpts)),
		Helo:     text(clip(ss.helo, 255)),
		TLS:      ss.tls,
		User:     text(clip(ss.user, 255)),
		Size:     cr.n,
	}
	for _, rc := range rcpts {
		env.RcptTo = append(env.RcptTo, text(clip(rc, maxHeaderValue)))
	}
	if ss.remote != nil {
		env.RemoteIP = ss.remote.String()
	}
	rec := NewRecord(m, env, s.opts.Rules)
	data, err := encodeRecord(rec)
	if err != nil {
		s.rejected.WithLabelValues(ReasonInternal).Inc()
		s.log.Error("smtp: encode event", "err", err)
		return errInternal
	}
	if s.env.MaxEventBytes > 0 && len(data) > s.env.MaxEventBytes {
		s.rejected.WithLabelValues(ReasonTooLarge).Inc()
		return errTooLarge
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.SubmitTimeout)
	defer cancel()
	item := intake.Item{
		SourceSystem: s.opts.Source,
		Severity:     rec.Extracted.Severity,
		Data:         data,
		Host:         normalize.Host(rec.Extracted.Host),
	}
	if _, err := s.sub.Submit(ctx, event.SourceEmail, []intake.Item{item}); err != nil {
		s.rejected.WithLabelValues(ReasonIntake).Inc()
		s.log.Warn("smtp: intake did not take a message; answered 451", "err", err)
		return errTryLater
	}
	s.accepted.Inc()
	return nil
}

// countingReader counts what it reads and keeps the first error other
// than io.EOF (a too-large message, a broken connection), which the
// lenient parser would otherwise take for the end of a part.
type countingReader struct {
	r   io.Reader
	n   int
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += n
	if err != nil {
		c.err = err
	}
	return n, err
}

// limitListener answers 421 to the connections beyond max open ones.
type limitListener struct {
	net.Listener
	max     int
	domain  string
	refused prometheus.Counter

	mu   sync.Mutex
	open int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		ok := l.open < l.max
		if ok {
			l.open++
		}
		l.mu.Unlock()
		if ok {
			return &limitConn{Conn: c, l: l}, nil
		}
		l.refused.Inc()
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, "421 4.7.0 "+l.domain+" Too many connections, try again later\r\n")
		_ = c.Close()
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// smtpLog takes go-smtp's error log: connection errors at debug level
// (scanners and dropped clients are common), panics at error level.
type smtpLog struct{ log *slog.Logger }

func (l smtpLog) Printf(format string, v ...any) { l.print(fmt.Sprintf(format, v...)) }
func (l smtpLog) Println(v ...any)               { l.print(fmt.Sprintln(v...)) }

func (l smtpLog) print(s string) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "panic") {
		l.log.Error("smtp: panic", "err", s)
		return
	}
	l.log.Debug("smtp: " + s)
}
