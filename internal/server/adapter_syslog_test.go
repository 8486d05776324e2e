package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// syslogAddr is a 127.0.0.1 address whose port is free for TCP and UDP.
func syslogAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		if u, err := net.ListenPacket("udp", addr); err == nil {
			require.NoError(t, u.Close())
			return addr
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return ""
}

// syslogEvents polls GET /api/v1/events?service=app until want syslog
// events are there (the pipeline's derived events, such as new log
// patterns, are left out), and returns them by title.
func (ts *testServer) syslogEvents(app string, want int) map[string]map[string]any {
	ts.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		byTitle := map[string]map[string]any{}
		cursor := ""
		for {
			var page struct {
				Events     []map[string]any `json:"events"`
				NextCursor string           `json:"next_cursor"`
			}
			u := ts.events + "/api/v1/events?hours=24&limit=1000&service=" + url.QueryEscape(app)
			if cursor != "" {
				u += "&cursor=" + url.QueryEscape(cursor)
			}
			require.Equal(ts.t, http.StatusOK, ts.do(http.MethodGet, u, "", &page))
			for _, e := range page.Events {
				if e["source_type"] == "syslog" {
					byTitle[e["title"].(string)] = e
				}
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if len(byTitle) >= want || time.Now().After(deadline) {
			if len(byTitle) != want {
				titles := make([]string, 0, len(byTitle))
				for title := range byTitle {
					titles = append(titles, title)
				}
				if len(titles) > 20 {
					titles = titles[:20]
				}
				ts.t.Fatalf("%d syslog events of %s, want %d; titles (20 at most): %q", len(byTitle), app, want, titles)
			}
			return byTitle
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func gather(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	require.NoError(t, err)
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i] // logger sends the short name
	}
	return strings.ToLower(h)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput() //nolint:gosec // the test's own arguments
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
}

// TestSyslogLogger sends util-linux logger's messages over UDP and TCP,
// RFC 5424 and RFC 3164, octet-counted and newline-framed, and finds them
// through the API.
func TestSyslogLogger(t *testing.T) {
	logger := testutil.Program(t, "logger", "bsdutils")
	addr := syslogAddr(t)
	cfg := testConfig(t)
	cfg.SyslogTCP, cfg.SyslogUDP = addr, addr
	ts := start(t, cfg)
	_, port, _ := net.SplitHostPort(addr)
	to := []string{"-n", "127.0.0.1", "-P", port}

	const app = "e2e-logger"
	cases := []struct {
		title, format, severity, listener string
		args                              []string
	}{
		{"rfc5424 octet-counted over tcp", "rfc5424", "high", "tcp", []string{"--rfc5424", "--octet-count", "-T", "-p", "daemon.err", "--msgid", "M1", "--sd-id", "e2e@32473", "--sd-param", `case="octet"`}},
		{"rfc5424 newline-framed over tcp", "rfc5424", "medium", "tcp", []string{"--rfc5424", "-T", "-p", "local0.warning"}},
		{"rfc3164 newline-framed over tcp", "rfc3164", "low", "tcp", []string{"--rfc3164", "-T", "-p", "user.notice"}},
		{"rfc3164 octet-counted over tcp", "rfc3164", "critical", "tcp", []string{"--rfc3164", "--octet-count", "-T", "-p", "auth.crit"}},
		{"rfc5424 over udp", "rfc5424", "info", "udp", []string{"--rfc5424", "-d", "-p", "mail.info"}},
		{"rfc3164 over udp", "rfc3164", "critical", "udp", []string{"--rfc3164", "-d", "-p", "local7.emerg"}},
	}
	for _, c := range cases {
		args := append(append(append([]string{}, to...), c.args...), "-i", "-t", app, c.title)
		run(t, logger, args...)
	}
	events := ts.syslogEvents(app, len(cases))
	host := hostname(t)
	for _, c := range cases {
		t.Run(c.title, func(t *testing.T) {
			e := events[c.title]
			require.NotNil(t, e)
			require.Equal(t, "syslog", e["source_type"])
			require.Equal(t, "syslog", e["source_system"])
			require.Equal(t, "syslog."+app, e["event_type"])
			require.Equal(t, c.severity, e["severity"])
			require.Equal(t, host, e["source_host"])
			require.Equal(t, app, e["source_service"])
			require.Equal(t, c.title, e["description"])
			data := e["event_data"].(map[string]any)
			sys := data["syslog"].(map[string]any)
			require.Equal(t, c.format, sys["format"])
			require.Equal(t, c.listener, sys["listener"])
			require.Equal(t, "127.0.0.1", sys["peer"])
			require.NotEmpty(t, sys["procid"], "logger -i")
			require.NotContains(t, sys, "malformed")
			occurred, err := time.Parse(time.RFC3339Nano, e["occurred_at"].(string))
			require.NoError(t, err)
			require.WithinDuration(t, time.Now(), occurred, time.Hour, "the message's time")
			if c.title == cases[0].title {
				require.Equal(t, "M1", sys["msgid"])
				require.Equal(t, "err", sys["severity"])
				require.Equal(t, "daemon", sys["facility"])
				sd := data["structured_data"].(map[string]any)
				require.Equal(t, map[string]any{"case": "octet"}, sd["e2e@32473"])
			}
		})
	}
	reg := ts.srv.Registry()
	require.Equal(t, 4.0, gather(t, reg, "reflex_ingest_accepted_total", map[string]string{"adapter": "syslog", "listener": "tcp"}))
	require.Equal(t, 2.0, gather(t, reg, "reflex_ingest_accepted_total", map[string]string{"adapter": "syslog", "listener": "udp"}))
}

// TestSyslogRsyslog forwards messages through a real rsyslogd (imtcp in,
// omfwd out over TCP with octet-counted framing, in the RFC 5424 and the
// traditional formats).
func TestSyslogRsyslog(t *testing.T) {
	rsyslogd := testutil.Program(t, "rsyslogd", "rsyslog")
	logger := testutil.Program(t, "logger", "bsdutils")
	addr := syslogAddr(t)
	cfg := testConfig(t)
	cfg.SyslogTCP = addr
	ts := start(t, cfg)
	_, port, _ := net.SplitHostPort(addr)

	dir := t.TempDir()
	in5424, inLegacy := syslogAddr(t), syslogAddr(t)
	_, p5424, _ := net.SplitHostPort(in5424)
	_, pLegacy, _ := net.SplitHostPort(inLegacy)
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="fwd5424")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="fwdlegacy")
ruleset(name="fwd5424") {
  action(type="omfwd" target="127.0.0.1" port=%q protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}
ruleset(name="fwdlegacy") {
  action(type="omfwd" target="127.0.0.1" port=%q protocol="tcp" TCP_Framing="octet-counted")
}
`, dir, p5424, pLegacy, port, port)
	confFile := filepath.Join(dir, "rsyslog.conf")
	require.NoError(t, os.WriteFile(confFile, []byte(conf), 0o600))
	cmd := exec.Command(rsyslogd, "-n", "-f", confFile, "-i", filepath.Join(dir, "rsyslogd.pid")) //nolint:gosec // the test's own arguments
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd: %s", out.String())
		}
	})
	for _, a := range []string{in5424, inLegacy} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.Dial("tcp", a)
			if err == nil {
				_ = c.Close()
				break
			}
			require.True(t, time.Now().Before(deadline), "rsyslogd did not listen on %s: %s", a, out.String())
			time.Sleep(20 * time.Millisecond)
		}
	}

	const app = "e2e-rsyslog"
	run(t, logger, "-n", "127.0.0.1", "-P", p5424, "-T", "--rfc5424", "-p", "daemon.err", "--msgid", "R1", "-t", app, "forwarded in RFC 5424")
	run(t, logger, "-n", "127.0.0.1", "-P", pLegacy, "-T", "--rfc3164", "-p", "local1.warning", "-t", app, "forwarded in the traditional format")
	events := ts.syslogEvents(app, 2)
	host := hostname(t)

	e := events["forwarded in RFC 5424"]
	require.Equal(t, "high", e["severity"])
	require.Equal(t, host, e["source_host"])
	require.Equal(t, "syslog."+app, e["event_type"])
	sys := e["event_data"].(map[string]any)["syslog"].(map[string]any)
	require.Equal(t, "rfc5424", sys["format"])
	require.Equal(t, "R1", sys["msgid"])

	e = events["forwarded in the traditional format"]
	require.Equal(t, "medium", e["severity"])
	require.Equal(t, host, e["source_host"])
	sys = e["event_data"].(map[string]any)["syslog"].(map[string]any)
	require.Equal(t, "rfc3164", sys["format"])
	require.Equal(t, "local1", sys["facility"])
	require.NotContains(t, sys, "malformed")
}

// TestSyslogThousandConnections holds 1,000 TCP connections open at once,
// sends on each while all are open, and finds every event.
func TestSyslogThousandConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 1000
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur < 3*n { // both ends of each connection, and the server's files
		lim.Cur = min(lim.Max, 4*n)
		require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim), "raise RLIMIT_NOFILE")
	}
	addr := syslogAddr(t)
	cfg := testConfig(t)
	cfg.SyslogTCP = addr
	ts := start(t, cfg)

	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns[i] = c
		t.Cleanup(func() { _ = c.Close() })
	}
	reg := ts.srv.Registry()
	open := map[string]string{"listener": "tcp"}
	deadline := time.Now().Add(20 * time.Second)
	for gather(t, reg, "reflex_syslog_connections", open) < n {
		require.True(t, time.Now().Before(deadline), "1000 connections open")
		time.Sleep(20 * time.Millisecond)
	}
	const app = "e2e-conns"
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Distinct hosts, so that no two events are one repeat.
			msg := fmt.Sprintf("<11>1 - conn-%04d %s - - - message on connection %d", i, app, i)
			_, err := io.WriteString(c, fmt.Sprintf("%d %s", len(msg), msg))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	events := ts.syslogEvents(app, n)
	for i := range n {
		require.Contains(t, events, fmt.Sprintf("message on connection %d", i))
	}
	require.Equal(t, float64(n), gather(t, reg, "reflex_syslog_connections", open), "all still open")
}

// TestSyslogConnectionLimit refuses a connection past the limit.
func TestSyslogConnectionLimit(t *testing.T) {
	addr := syslogAddr(t)
	cfg := testConfig(t)
	cfg.SyslogTCP = addr
	cfg.SyslogMaxConns = 20
	ts := start(t, cfg)
	for range 20 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
	}
	reg := ts.srv.Registry()
	deadline := time.Now().Add(20 * time.Second)
	for gather(t, reg, "reflex_syslog_connections", map[string]string{"listener": "tcp"}) < 20 {
		require.True(t, time.Now().Before(deadline))
		time.Sleep(20 * time.Millisecond)
	}
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the 21st connection is closed at once")
	require.Equal(t, 1.0, gather(t, reg, "reflex_syslog_connections_refused_total", map[string]string{"listener": "tcp", "reason": "limit"}))
}
