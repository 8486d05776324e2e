package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/loadgen"
	"github.com/reflex-ops/reflex/internal/testutil"
)

const smtpSource = "email-e2e"

// smtpConfig is a test server's config with an SMTP listener on a free
// loopback port, and that address.
func smtpConfig(t *testing.T) (config.Config, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := testConfig(t)
	cfg.SMTPAddr = addr
	cfg.SMTPSource = smtpSource
	cfg.SMTPDomain = "reflex.test"
	return cfg, addr
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "reflex.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

// swaks runs the real swaks against addr and returns its output and exit
// code.
func swaks(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	bin := testutil.Program(t, "swaks", "swaks")
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--server", host, "--port", port, "--helo", "mon.test", "--timeout", "20"}, args...)...) //nolint:gosec // the test's own arguments
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() {
		if cmd.ProcessState == nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, string(out))
	return string(out), 0
}

// waitMail polls GET /api/v1/events for the email event whose title is
// title.
func (ts *testServer) waitMail(title string) map[string]any {
	ts.t.Helper()
	var page struct {
		Events []map[string]any `json:"events"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		page.Events = nil
		require.Equal(ts.t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events?hours=48&source="+smtpSource+"&q="+url.QueryEscape(title), "", &page))
		for _, e := range page.Events {
			if e["title"] == title {
				return e
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.t.Fatalf("no email event titled %q within 20s", title)
	return nil
}

// metric reads a counter of the events service's /metrics, 0 when absent.
func (ts *testServer) metric(name string, labels ...string) float64 {
	ts.t.Helper()
	resp, err := http.Get(ts.events + "/metrics")
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			require.NoError(ts.t, err)
			return v
		}
	}
	return 0
}

func emailData(t *testing.T, e map[string]any) map[string]any {
	t.Helper()
	data, ok := e["event_data"].(map[string]any)
	require.True(t, ok, "event_data: %v", e)
	m, ok := data["email"].(map[string]any)
	require.True(t, ok, "event_data.email: %v", data)
	return m
}

// TestSMTPSwaks sends plain, multipart and HTML alert mails with the real
// swaks, with and without STARTTLS, and one refused for its recipient and
// one for its size, and reads the events back through the API.
func TestSMTPSwaks(t *testing.T) {
	cfg, addr := smtpConfig(t)
	cfg.SMTPTLSCert, cfg.SMTPTLSKey = selfSigned(t)
	cfg.SMTPRecipients = "alerts@reflex.test, @ops.test"
	cfg.SMTPMaxBytes = 64 << 10
	ts := start(t, cfg)
	from := []string{"--from", "nagios@mon.test"}

	t.Run("plain problem and recovery", func(t *testing.T) {
		out, code := swaks(t, addr, append(from, "--to", "alerts@reflex.test",
			"--h-Subject", "** PROBLEM Service Alert: web-01/HTTP is CRITICAL **",
			"--body", "***** Nagios *****\n\nNotification Type: PROBLEM\n\nService: HTTP\nHost: web-01\nState: CRITICAL\n")...)
		require.Zero(t, code, out)
		e := ts.waitMail("** PROBLEM Service Alert: web-01/HTTP is CRITICAL **")
		require.Equal(t, "email", e["source_type"])
		require.Equal(t, smtpSource, e["source_system"])
		require.Equal(t, "critical", e["severity"])
		require.Equal(t, "web-01", e["source_host"])
		require.Equal(t, "HTTP", e["source_service"])
		require.Equal(t, "service_alert", e["event_type"])
		require.Contains(t, e["description"], "Notification Type: PROBLEM")
		data := e["event_data"].(map[string]any)
		require.Equal(t, map[string]any{"key": "web-01/HTTP", "status": "firing"}, data["alert"])
		m := emailData(t, e)
		require.Equal(t, "nagios@mon.test", m["from"])
		env := m["envelope"].(map[string]any)
		require.Equal(t, "nagios@mon.test", env["mail_from"])
		require.Equal(t, []any{"alerts@reflex.test"}, env["rcpt_to"])
		require.Equal(t, "mon.test", env["helo"])
		require.Equal(t, "127.0.0.1", env["remote_ip"])
		require.Nil(t, env["tls"])
		require.Contains(t, m["headers"], "X-Mailer", "swaks names itself")

		out, code = swaks(t, addr, append(from, "--to", "oncall@ops.test",
			"--h-Subject", "** RECOVERY Service Alert: web-01/HTTP is OK **",
			"--body", "Notification Type: RECOVERY\nService: HTTP\nHost: web-01\nState: OK\n")...)
		require.Zero(t, code, out)
		e = ts.waitMail("** RECOVERY Service Alert: web-01/HTTP is OK **")
		require.Equal(t, "info", e["severity"])
		require.Equal(t, map[string]any{"key": "web-01/HTTP", "status": "resolved"}, e["event_data"].(map[string]any)["alert"])
	})

	t.Run("multipart with an attachment over STARTTLS", func(t *testing.T) {
		att := filepath.Join(t.TempDir(), "df.txt")
		require.NoError(t, os.WriteFile(att, []byte("Filesystem Use%\n/var 97%\n"), 0o600))
		out, code := swaks(t, addr, append(from, "--to", "alerts@reflex.test", "-tls",
			"--h-Subject", "[WARNING] Disk /var on db-02",
			"--attach-type", "text/plain", "--attach-body", "Host: db-02\n/var is 97% full.",
			"--attach-type", "text/html", "--attach-body", "<p>Host: db-02</p><p>/var is <b>97%</b> full.</p>",
			"--attach-type", "text/plain", "--attach", att)...)
		require.Zero(t, code, out)
		require.Contains(t, out, "STARTTLS")
		e := ts.waitMail("[WARNING] Disk /var on db-02")
		require.Equal(t, "medium", e["severity"])
		require.Equal(t, "db-02", e["source_host"])
		require.Equal(t, "Host: db-02\n/var is 97% full.", e["description"])
		m := emailData(t, e)
		require.Equal(t, "text/plain", m["body_type"])
		require.Equal(t, []any{map[string]any{"name": "df.txt", "type": "text/plain", "size": float64(25)}}, m["attachments"])
		require.Equal(t, true, m["envelope"].(map[string]any)["tls"])
		require.Equal(t, map[string]any{"key": "db-02/Disk /var on db-02", "status": "firing"}, e["event_data"].(map[string]any)["alert"])
	})

	t.Run("html only", func(t *testing.T) {
		out, code := swaks(t, addr, append(from, "--to", "alerts@reflex.test",
			"--h-Subject", "[ERROR] Payment queue stuck",
			"--add-header", "MIME-Version: 1.0", "--add-header", "Content-Type: text/html; charset=utf-8",
			"--body", `<html><head><style>b{}</style></head><body><h2>Queue &quot;payments&quot; stuck</h2><table><tr><td>Host:</td><td>mq-01</td></tr></table><p>Depth &gt; 10&nbsp;000<br>since 10:00</p></body></html>`)...)
		require.Zero(t, code, out)
		e := ts.waitMail("[ERROR] Payment queue stuck")
		require.Equal(t, "high", e["severity"])
		require.Equal(t, "mq-01", e["source_host"])
		require.Equal(t, "Queue \"payments\" stuck\n\nHost: mq-01\n\nDepth > 10 000\nsince 10:00", e["description"])
		require.Equal(t, "text/html", emailData(t, e)["body_type"])
		require.Nil(t, e["event_data"].(map[string]any)["alert"], "an [ERROR] marker is a severity, not an alert state")
	})

	t.Run("refused recipient", func(t *testing.T) {
		before := ts.metric("reflex_ingest_rejected_total", `adapter="email"`, `reason="recipient"`)
		out, code := swaks(t, addr, append(from, "--to", "someone@elsewhere.test", "--h-Subject", "never stored")...)
		require.Equal(t, 24, code, "no RCPTs accepted: %s", out)
		require.Contains(t, out, "550 5.1.1")
		require.Equal(t, before+1, ts.metric("reflex_ingest_rejected_total", `adapter="email"`, `reason="recipient"`))
	})

	t.Run("oversize message", func(t *testing.T) {
		body := filepath.Join(t.TempDir(), "big.txt")
		require.NoError(t, os.WriteFile(body, []byte(strings.Repeat("0123456789abcdef\n", 5000)), 0o600))
		before := ts.metric("reflex_ingest_rejected_total", `adapter="email"`, `reason="too_large"`)
		out, code := swaks(t, addr, append(from, "--to", "alerts@reflex.test", "--h-Subject", "too big", "--body", body)...)
		require.Equal(t, 26, code, "server did not accept mail following data: %s", out)
		require.Contains(t, out, "552 5.3.4")
		require.Equal(t, before+1, ts.metric("reflex_ingest_rejected_total", `adapter="email"`, `reason="too_large"`))
	})

	require.GreaterOrEqual(t, ts.metric("reflex_ingest_accepted_total", `adapter="email"`, `listener="smtp"`), 4.0)
	require.GreaterOrEqual(t, ts.metric("reflex_ingest_received_total", `adapter="email"`, `listener="smtp"`), 5.0)
}

// TestSMTPAuth: with smtp-auth-file, senders AUTH PLAIN before MAIL (over
// STARTTLS, or in the clear on loopback).
func TestSMTPAuth(t *testing.T) {
	cfg, addr := smtpConfig(t)
	cfg.SMTPTLSCert, cfg.SMTPTLSKey = selfSigned(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	require.NoError(t, err)
	cfg.SMTPAuthFile = filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(cfg.SMTPAuthFile, []byte("# reflex senders\nzabbix:"+string(hash)+"\n"), 0o600))
	ts := start(t, cfg)
	base := []string{"--from", "zabbix@mon.test", "--to", "alerts@reflex.test"}

	out, code := swaks(t, addr, append(base, "--h-Subject", "no auth")...)
	require.Equal(t, 23, code, "MAIL refused without AUTH: %s", out)
	require.Contains(t, out, "530 5.7.0")

	out, code = swaks(t, addr, append(base, "-tls", "--auth", "PLAIN", "--auth-user", "zabbix", "--auth-password", "wrong", "--h-Subject", "bad password")...)
	require.Equal(t, 28, code, "AUTH refused: %s", out)
	require.Contains(t, out, "535 5.7.8")

	out, code = swaks(t, addr, append(base, "-tls", "--auth", "PLAIN", "--auth-user", "zabbix", "--auth-password", "s3cret pass",
		"--h-Subject", "Problem: Zabbix agent on app-09 is unreachable", "--body", "Host: app-09\nSeverity: High\n")...)
	require.Zero(t, code, out)
	e := ts.waitMail("Problem: Zabbix agent on app-09 is unreachable")
	require.Equal(t, "high", e["severity"])
	env := emailData(t, e)["envelope"].(map[string]any)
	require.Equal(t, "zabbix", env["user"])
	require.Equal(t, true, env["tls"])

	// Loopback: AUTH without TLS is offered.
	out, code = swaks(t, addr, append(base, "--auth", "PLAIN", "--auth-user", "zabbix", "--auth-password", "s3cret pass", "--h-Subject", "plain auth on loopback")...)
	require.Zero(t, code, out)
	require.Equal(t, "zabbix", emailData(t, ts.waitMail("plain auth on loopback"))["envelope"].(map[string]any)["user"])
	require.Equal(t, 2.0, ts.metric("reflex_ingest_rejected_total", `adapter="email"`, `reason="auth"`))
}

// TestSMTPProtocol speaks SMTP by hand: a bare LF before the dot does not
// end DATA (no smuggled second message), and a session beyond
// smtp-max-connections is answered 421.
func TestSMTPProtocol(t *testing.T) {
	cfg, addr := smtpConfig(t)
	cfg.SMTPMaxConns = 2
	ts := start(t, cfg)

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
		return c, bufio.NewReader(c)
	}
	reply := func(r *bufio.Reader) string {
		var all string
		for {
			line, err := r.ReadString('\n')
			require.NoError(t, err, all)
			all += line
			if len(line) < 4 || line[3] != '-' {
				return all
			}
		}
	}
	c, r := dial()
	require.True(t, strings.HasPrefix(reply(r), "220 reflex.test"))
	say := func(cmd, want string) {
		t.Helper()
		_, err := io.WriteString(c, cmd)
		require.NoError(t, err)
		got := reply(r)
		require.True(t, strings.HasPrefix(got, want), "%q: %q", cmd, got)
	}
	say("EHLO smuggler.test\r\n", "250")
	say("MAIL FROM:<a@smuggler.test>\r\n", "250")
	say("RCPT TO:<alerts@reflex.test>\r\n", "250")
	say("DATA\r\n", "354")
	say("Subject: outer message\r\n\r\nfirst\r\n\n.\nMAIL FROM:<b@smuggler.test>\r\nRCPT TO:<alerts@reflex.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n", "250")

	e := ts.waitMail("outer message")
	require.Contains(t, e["description"], "Subject: smuggled", "the smuggled lines are the first message's body")

	// The first session is still open: the second fills the bound, the
	// third is refused.
	_, r2 := dial()
	require.True(t, strings.HasPrefix(reply(r2), "220 "))
	_, r3 := dial()
	got := reply(r3)
	require.True(t, strings.HasPrefix(got, "421 4.7.0"), got)
	require.Equal(t, 1.0, ts.metric("reflex_ingest_rejected_total", `adapter="email"`, `reason="connections"`))
	say("QUIT\r\n", "221")

	var page struct {
		Events []map[string]any `json:"events"`
	}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events?hours=48&source="+smtpSource, "", &page))
	require.Len(t, page.Events, 1, "one message, not two: %v", page.Events)
}

// TestSMTPLoadgen runs the load generator's smtp mode briefly against the
// listener: every mail it sent is accepted.
func TestSMTPLoadgen(t *testing.T) {
	cfg, addr := smtpConfig(t)
	cfg.SMTPRecipients = loadgen.SMTPRecipient
	ts := start(t, cfg)
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: "smtp", Target: addr, URL: ts.events, Token: testToken,
		Concurrency: 2, Duration: time.Second, Drain: 20 * time.Second, Hosts: 10,
	})
	require.NoError(t, err)
	require.Positive(t, res.Sent)
	require.Zero(t, res.Errors)
	require.Equal(t, res.Sent, res.Accepted)
	require.Zero(t, res.Rejected)
}
