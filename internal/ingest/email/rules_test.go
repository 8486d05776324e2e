package email

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/reflex-ops/reflex/internal/event"
)

func TestDefaultRules(t *testing.T) {
	rs := DefaultRules()
	for _, tc := range []struct {
		name, subject, body, xPriority string
		want                           Extracted
	}{
		{name: "nothing", subject: "Lunch on Friday", body: "Who is in?",
			want: Extracted{Severity: event.Info}},
		{name: "bracket critical fires", subject: "[CRITICAL] disk full on db-1",
			want: Extracted{Severity: event.Critical, Status: event.AlertFiring, AlertKey: "disk full on db-1", Rules: []string{"bracket-state"}}},
		{name: "bracket ok resolves the same key", subject: "[OK] disk full on db-1",
			want: Extracted{Severity: event.Info, Status: event.AlertResolved, AlertKey: "disk full on db-1", Rules: []string{"bracket-status"}}},
		{name: "bracket error: a severity, no alert", subject: "[ERROR] job 42 failed",
			want: Extracted{Severity: event.High, Rules: []string{"bracket-severity"}}},
		{name: "lowercase bracket", subject: "[warning] queue slow",
			want: Extracted{Severity: event.Medium, Status: event.AlertFiring, AlertKey: "queue slow", Rules: []string{"bracket-state"}}},
		{name: "problem without a severity is medium", subject: "PROBLEM: backups late",
			want: Extracted{Severity: event.Medium, Status: event.AlertFiring, AlertKey: "backups late", Rules: []string{"leading-status"}}},
		{name: "zabbix resolved with duration", subject: "Resolved in 1h 2m: Disk low", body: "Host: fs-1\nSeverity: Average\n",
			want: Extracted{Severity: event.Info, Host: "fs-1", Status: event.AlertResolved, AlertKey: "fs-1/Disk low", Rules: []string{"leading-status", "body-host", "body-severity"}}},
		{name: "body host line", subject: "[HIGH] latency", body: "Details\n  Host: Web-01.Example.com\n",
			want: Extracted{Severity: event.High, Host: "web-01.example.com", Rules: []string{"bracket-severity", "body-host"}}},
		{name: "host is down in the body", subject: "alert", body: "Host web-01 is DOWN since 10:00",
			want: Extracted{Severity: event.Critical, Host: "web-01", EventType: "host_alert", Status: event.AlertFiring, AlertKey: "web-01/alert", Rules: []string{"body-host-is-state"}}},
		{name: "host is up in the subject", subject: "Host web-01 is UP",
			want: Extracted{Severity: event.Info, Host: "web-01", EventType: "host_alert", Status: event.AlertResolved, AlertKey: "web-01", Rules: []string{"host-is-state", "is-state"}}},
		{name: "nagios acknowledgement says no status", subject: "** ACKNOWLEDGEMENT Service Alert: web-01/HTTP is CRITICAL **",
			want: Extracted{Severity: event.Critical, Host: "web-01", Service: "HTTP", EventType: "service_alert", Status: event.AlertFiring, AlertKey: "web-01/HTTP", Rules: []string{"nagios-service", "is-state"}}},
		{name: "x-priority 1", subject: "export failed", xPriority: "1 (Highest)",
			want: Extracted{Severity: event.High}},
		{name: "x-priority 5", subject: "fyi", xPriority: "5",
			want: Extracted{Severity: event.Low}},
		{name: "x-priority loses to a marker", subject: "[LOW] fyi", xPriority: "1",
			want: Extracted{Severity: event.Low, Rules: []string{"bracket-severity"}}},
		{name: "only markers: no key, no alert", subject: "[CRITICAL]",
			want: Extracted{Severity: event.Critical, Rules: []string{"bracket-state"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, rs.Extract(tc.subject, tc.body, tc.xPriority))
		})
	}
}

func TestParseRules(t *testing.T) {
	rs, err := ParseRules([]byte(`
- name: payments
  field: subject
  regex: '^PAY-(?P<severity>SEV[1-5]) (?P<host>\S+)'
  event_type: payment alert
- field: body
  regex: '(?m)^Datacenter: (?P<service>\S+)'
`))
	require.NoError(t, err)
	x := rs.Extract("PAY-SEV2 pay-01 card declines up [CRITICAL]", "Datacenter: fra1\nHost: other\n", "")
	require.Equal(t, Extracted{Severity: event.High, Host: "pay-01", Service: "fra1", EventType: "payment_alert", Status: event.AlertFiring,
		AlertKey: "pay-01/fra1", Rules: []string{"payments", "rule-2", "bracket-state", "body-host"}}, x)

	rs, err = ParseRules([]byte("builtin: false\nrules:\n  - {field: subject, regex: 'down', status: firing, host: core-sw}\n"))
	require.NoError(t, err)
	require.Equal(t, Extracted{Severity: event.Medium, Host: "core-sw", Status: event.AlertFiring, AlertKey: "core-sw/uplink", Rules: []string{"rule-1"}},
		rs.Extract("uplink down", "[CRITICAL]", ""))
	require.Equal(t, Extracted{Severity: event.Info}, rs.Extract("[CRITICAL] up", "", ""), "no built-in rules")

	rs, err = ParseRules([]byte(""))
	require.NoError(t, err, "an empty file is the built-in rules")
	require.Len(t, rs.list, len(builtinRules()))

	for name, bad := range map[string]string{
		"unknown key":     "- {field: subject, regex: x, severity: high, colour: red}",
		"bad field":       "- {field: header, regex: x, severity: high}",
		"bad regex":       "- {field: subject, regex: '(', severity: high}",
		"no regex":        "- {field: subject, severity: high}",
		"unknown group":   "- {field: subject, regex: '(?P<colour>x)'}",
		"sets nothing":    "- {field: subject, regex: 'x'}",
		"bad severity":    "- {field: subject, regex: 'x', severity: loud}",
		"bad status":      "- {field: subject, regex: 'x', status: maybe}",
		"not yaml":        "- [",
		"unknown top key": "rulez: []",
	} {
		_, err := ParseRules([]byte(bad))
		require.ErrorIs(t, err, ErrRules, name)
	}

	path := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(path, []byte("- {field: subject, regex: 'x', severity: high}\n"), 0o600))
	rs, err = LoadRules(path)
	require.NoError(t, err)
	require.Len(t, rs.list, 1+len(builtinRules()))
	_, err = LoadRules(filepath.Join(t.TempDir(), "missing.yml"))
	require.ErrorIs(t, err, ErrRules)
}

func TestRecipients(t *testing.T) {
	r, err := ParseRecipients(" Alerts@Reflex.example, @ops.example.com ,")
	require.NoError(t, err)
	require.True(t, r.Allows("alerts@reflex.example"))
	require.True(t, r.Allows("ALERTS@reflex.EXAMPLE"))
	require.True(t, r.Allows("anyone@ops.example.com"))
	require.False(t, r.Allows("anyone@sub.ops.example.com"))
	require.False(t, r.Allows("other@reflex.example"))
	require.False(t, r.Allows(""))
	none, err := ParseRecipients(" , ")
	require.NoError(t, err)
	require.Nil(t, none)
	require.True(t, none.Allows("x@y"))
	for _, bad := range []string{"alerts", "@", "a@b@c", "@a@b", "a@"} {
		_, err := ParseRecipients(bad)
		require.ErrorIs(t, err, ErrConfig, bad)
	}
}

func TestUsers(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	u, err := ParseUsers([]byte("# senders\n\nreflex:" + string(hash) + "\n"))
	require.NoError(t, err)
	require.True(t, u.Check("reflex", "s3cret"))
	require.False(t, u.Check("reflex", "wrong"))
	require.False(t, u.Check("nobody", "s3cret"))
	for _, bad := range []string{"", "# only\n", "reflex\n", ":" + string(hash), "reflex:plaintext"} {
		_, err := ParseUsers([]byte(bad))
		require.ErrorIs(t, err, ErrConfig, bad)
		if err != nil {
			require.NotContains(t, err.Error(), "plaintext", "errors never echo the file")
		}
	}
}

func TestOptionsCheck(t *testing.T) {
	u := &Users{}
	require.NoError(t, Options{Addr: "127.0.0.1:0", Users: u}.check())
	require.NoError(t, Options{Addr: "[::1]:2525", Users: u}.check())
	require.NoError(t, Options{Addr: "localhost:2525", Users: u}.check())
	require.ErrorIs(t, Options{Addr: ":2525", Users: u}.check(), ErrConfig)
	require.ErrorIs(t, Options{Addr: "0.0.0.0:2525", Users: u}.check(), ErrConfig)
	require.NoError(t, Options{Addr: ":2525"}.check())
	require.ErrorIs(t, Options{}.check(), ErrConfig)
}
