package receiver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// selfSigned returns a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "reflex test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// mailbox is an SMTP server (emersion/go-smtp's) that records what it
// receives.
type mailbox struct {
	addr string

	mu       sync.Mutex
	password string // what AUTH PLAIN accepts for user "reflex"
	rcptErr  error  // answered to RCPT when set
	auths    []string
	msgs     []received
}

type received struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

// newMailbox starts a server; with cert, it offers STARTTLS.
func newMailbox(t *testing.T, cert *tls.Certificate) *mailbox {
	t.Helper()
	m := &mailbox{password: "hunter2"}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{m: m, tls: isTLS}, nil
	}))
	s.Domain = "localhost"
	s.ErrorLog = log.New(io.Discard, "", 0)
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	if cert != nil {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m.addr = l.Addr().String()
	go s.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { s.Close() })
	return m
}

func (m *mailbox) received() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.msgs...)
}

func (m *mailbox) authAttempts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.auths...)
}

type session struct {
	m    *mailbox
	tls  bool
	user string
	cur  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		s.m.mu.Lock()
		defer s.m.mu.Unlock()
		s.m.auths = append(s.m.auths, username)
		if username != "reflex" || password != s.m.password {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur = received{from: from, tls: s.tls, user: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.mu.Lock()
	err := s.m.rcptErr
	s.m.mu.Unlock()
	if err != nil {
		return err
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, s.cur)
	s.m.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

func emailOpts(pool *x509.CertPool) Options {
	o := opts()
	o.TLSConfig = &tls.Config{RootCAs: pool}
	return o
}

func passwordFile(t *testing.T, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smtp-password")
	require.NoError(t, os.WriteFile(p, []byte(password+"\n"), 0o600))
	return p
}

func TestEmailStartTLSAndAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	mb := newMailbox(t, &cert)
	pwFile := passwordFile(t, "hunter2")
	cfg := &notify.EmailConfig{
		To:           []string{"oncall@example.com", "Ops Team <ops@example.com>"},
		From:         "Reflex <reflex@example.com>",
		Smarthost:    mb.addr,
		Username:     "reflex",
		PasswordFile: pwFile,
	}
	s, err := New(notify.Receiver{Name: "email", Email: cfg}, localGuard(t), emailOpts(pool))
	require.NoError(t, err)
	n := sample()
	n.Receiver = "email"
	n.Alerts[1].Title = "CPU 97% — Überlast"
	require.NoError(t, s.Send(context.Background(), n))

	got := mb.received()
	require.Len(t, got, 1)
	require.True(t, got[0].tls, "sent over STARTTLS")
	require.Equal(t, "reflex", got[0].user, "authenticated")
	require.Equal(t, "reflex@example.com", got[0].from)
	require.Equal(t, []string{"oncall@example.com", "ops@example.com"}, got[0].to)

	msg, err := mail.ReadMessage(strings.NewReader(string(got[0].data)))
	require.NoError(t, err)
	require.NotContains(t, strings.ReplaceAll(string(got[0].data), "\r\n", ""), "\n", "CRLF line ends only")
	date, err := msg.Header.Date()
	require.NoError(t, err)
	require.True(t, date.Equal(clock()), date)
	require.Equal(t, `"Reflex" <reflex@example.com>`, msg.Header.Get("From"))
	to, err := msg.Header.AddressList("To")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Address: "oncall@example.com"}, {Name: "Ops Team", Address: "ops@example.com"}}, to)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "[reflex] [CRITICAL] 2 alerts firing: High CPU Alert on db-01", subject)
	require.Regexp(t, regexp.MustCompile(`^<\d+\.[0-9a-f]{24}@example\.com>$`), msg.Header.Get("Message-ID"))
	require.Equal(t, "1.0", msg.Header.Get("MIME-Version"))
	require.Equal(t, "text/plain; charset=utf-8", msg.Header.Get("Content-Type"))
	require.Equal(t, "quoted-printable", msg.Header.Get("Content-Transfer-Encoding"))
	require.Equal(t, "auto-generated", msg.Header.Get("Auto-Submitted"))
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	require.NoError(t, err)
	require.Equal(t, strings.Join([]string{
		"[CRITICAL] 2 alerts firing: High CPU Alert on db-01",
		"",
		"Alerts:    2",
		"Severity:  critical, high",
		"Rules:     High CPU Alert",
		"Hosts:     db-01",
		"Receiver:  email",
		`Group:     {}:{rule="High CPU Alert",source_host="db-01"}`,
		"",
		"Most severe first:",
		"",
		"- critical db-01: CPU 97% — Überlast (High CPU Alert, event 12346, 2024-12-01T10:01:00Z)",
		"- high db-01: CPU 92% (High CPU Alert, event 12345, 2024-12-01T10:00:00Z)",
		"",
		"-- ",
		"Sent by reflex.",
		"",
	}, "\r\n"), string(body))

	// The password file is read at each send: a rotated password is used
	// without a new sender.
	mb.mu.Lock()
	mb.password = "rotated"
	mb.mu.Unlock()
	err = s.Send(context.Background(), n)
	require.Error(t, err, "the old password no longer works")
	require.True(t, isPermanent(err), "535 is permanent: %v", err)
	require.NotContains(t, err.Error(), "hunter2")
	require.NoError(t, os.WriteFile(pwFile, []byte("rotated\n"), 0o600))
	require.NoError(t, s.Send(context.Background(), n))
	require.Len(t, mb.received(), 2)
}

func TestEmailRequiresTLS(t *testing.T) {
	mb := newMailbox(t, nil) // no STARTTLS
	for _, cfg := range []*notify.EmailConfig{
		{To: []string{"a@example.com"}, From: "r@example.com", Smarthost: mb.addr},
		{To: []string{"a@example.com"}, From: "r@example.com", Smarthost: mb.addr, Username: "reflex", Password: "hunter2"},
		{To: []string{"a@example.com"}, From: "r@example.com", Smarthost: mb.addr, Username: "reflex", Password: "hunter2", RequireTLS: ptr(false)},
	} {
		s, err := New(notify.Receiver{Name: "email", Email: cfg}, localGuard(t), opts())
		require.NoError(t, err)
		err = s.Send(context.Background(), sample())
		require.ErrorContains(t, err, "STARTTLS")
		require.True(t, isPermanent(err), "%v", err)
		require.NotContains(t, err.Error(), "hunter2")
	}
	require.Empty(t, mb.received())
	require.Empty(t, mb.authAttempts(), "no AUTH without TLS")

	// TLS optional and no credentials: sent in clear text.
	s, err := New(notify.Receiver{Name: "email", Email: &notify.EmailConfig{
		To: []string{"a@example.com"}, From: "r@example.com", Smarthost: mb.addr, RequireTLS: ptr(false),
	}}, localGuard(t), opts())
	require.NoError(t, err)
	require.NoError(t, s.Send(context.Background(), sample()))
	got := mb.received()
	require.Len(t, got, 1)
	require.False(t, got[0].tls)
}

func TestEmailOptionalTLSUsesItWhenOffered(t *testing.T) {
	cert, pool := selfSigned(t)
	mb := newMailbox(t, &cert)
	s, err := New(notify.Receiver{Name: "email", Email: &notify.EmailConfig{
		To: []string{"a@example.com"}, From: "r@example.com", Smarthost: mb.addr,
		Username: "reflex", Password: "hunter2", RequireTLS: ptr(false),
	}}, localGuard(t), emailOpts(pool))
	require.NoError(t, err)
	require.NoError(t, s.Send(context.Background(), sample()))
	got := mb.received()
	require.Len(t, got, 1)
	require.True(t, got[0].tls)
	require.Equal(t, "reflex", got[0].user)
}

func TestEmailFailures(t *testing.T) {
	cert, pool := selfSigned(t)
	mb := newMailbox(t, &cert)
	cfg := &notify.EmailConfig{To: []string{"a@example.com"}, From: "r@example.com", Smarthost: mb.addr, Username: "reflex", Password: "hunter2"}

	// A certificate nobody vouches for: permanent, and no AUTH sent.
	s, err := New(notify.Receiver{Name: "email", Email: cfg}, localGuard(t), opts())
	require.NoError(t, err)
	err = s.Send(context.Background(), sample())
	require.ErrorContains(t, err, "certificate")
	require.True(t, isPermanent(err), "%v", err)
	require.Empty(t, mb.authAttempts())

	s, err = New(notify.Receiver{Name: "email", Email: cfg}, localGuard(t), emailOpts(pool))
	require.NoError(t, err)

	// A 4xx reply is retryable, a 5xx one is not.
	mb.mu.Lock()
	mb.rcptErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	mb.mu.Unlock()
	err = s.Send(context.Background(), sample())
	require.ErrorContains(t, err, "try later")
	require.True(t, notify.Retryable(err), "%v", err)

	mb.mu.Lock()
	mb.rcptErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	mb.mu.Unlock()
	err = s.Send(context.Background(), sample())
	require.ErrorContains(t, err, "no such user")
	require.True(t, isPermanent(err), "%v", err)
	require.Empty(t, mb.received())

	// A server that accepts and never answers: the attempt's timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	o := emailOpts(pool)
	o.Timeout = 200 * time.Millisecond
	s, err = New(notify.Receiver{Name: "email", Email: &notify.EmailConfig{To: []string{"a@example.com"}, From: "r@example.com", Smarthost: l.Addr().String()}}, localGuard(t), o)
	require.NoError(t, err)
	err = s.Send(context.Background(), sample())
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.True(t, notify.Retryable(err))

	// Refused by the guard before any connection.
	s, err = New(notify.Receiver{Name: "email", Email: cfg}, outbound.NewGuard(nil), emailOpts(pool))
	require.NoError(t, err)
	err = s.Send(context.Background(), sample())
	require.ErrorIs(t, err, notify.ErrRefused)

	// The password file vanished: permanent, named.
	pw := passwordFile(t, "hunter2")
	s, err = New(notify.Receiver{Name: "email", Email: &notify.EmailConfig{To: []string{"a@example.com"}, From: "r@example.com", Smarthost: mb.addr, Username: "reflex", PasswordFile: pw}}, localGuard(t), emailOpts(pool))
	require.NoError(t, err)
	require.NoError(t, os.Remove(pw))
	err = s.Send(context.Background(), sample())
	require.ErrorContains(t, err, "password_file")
	require.True(t, isPermanent(err))
}

func TestEncodeHeader(t *testing.T) {
	require.Equal(t, "plain subject", encodeHeader("plain subject"))
	require.Equal(t, "injected Bcc: victim@example.com", encodeHeader("injected\r\nBcc: victim@example.com"))
	enc := encodeHeader("Überlast")
	require.True(t, strings.HasPrefix(enc, "=?utf-8?q?"), enc)
	dec, err := new(mime.WordDecoder).DecodeHeader(enc)
	require.NoError(t, err)
	require.Equal(t, "Überlast", dec)
}

func ptr[T any](v T) *T { return &v }
