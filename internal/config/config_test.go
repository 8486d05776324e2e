package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	cfg, fl, err := Load("server", nil, env(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, Default(), cfg)
	require.False(t, fl.CheckOnly)
	require.Equal(t, "./reflex-data", cfg.DataDir)
	require.Equal(t, ":3009", cfg.EventsAddr)
	require.Equal(t, ":3011", cfg.AutonomousAddr)
	require.Equal(t, 90*24*time.Hour, time.Duration(cfg.Retention))
	require.True(t, cfg.RunsEvents())
	require.True(t, cfg.RunsAutonomous())
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "reflex.yaml")
	require.NoError(t, os.WriteFile(file, []byte("data-dir: /from/file\nevents-addr: ':4000'\nlog-level: debug\nretention: 30d\n"), 0o600))

	cfg, _, err := Load("server",
		[]string{"--config", file, "--log-level", "warn"},
		env(map[string]string{"REFLEX_EVENTS_ADDR": ":5000", "REFLEX_LOG_LEVEL": "error"}),
		io.Discard)
	require.NoError(t, err)
	require.Equal(t, "/from/file", cfg.DataDir, "file beats default")
	require.Equal(t, ":5000", cfg.EventsAddr, "env beats file")
	require.Equal(t, "warn", cfg.LogLevel, "flag beats env")
	require.Equal(t, 30*24*time.Hour, time.Duration(cfg.Retention))
}

func TestLoadConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "reflex.yaml")
	require.NoError(t, os.WriteFile(file, []byte("services: events\n"), 0o600))
	cfg, fl, err := Load("server", []string{"--check-config"}, env(map[string]string{"REFLEX_CONFIG": file}), io.Discard)
	require.NoError(t, err)
	require.True(t, fl.CheckOnly)
	require.Equal(t, "events", cfg.Services)
	require.False(t, cfg.RunsAutonomous())
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	require.NoError(t, os.WriteFile(unknown, []byte("data_dir: x\n"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown yaml key", []string{"--config", unknown}, nil, "field data_dir not found"},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, "no such file"},
		{"bad services", []string{"--services", "both"}, nil, "services"},
		{"bad addr", []string{"--events-addr", "3009"}, nil, "events-addr"},
		{"bad database url", []string{"--database-url", "mysql://x"}, nil, "database-url"},
		{"bad env duration", nil, map[string]string{"REFLEX_RETENTION": "forever"}, "REFLEX_RETENTION"},
		{"retention too short", []string{"--retention", "1h"}, nil, "retention"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "log-format"},
		{"bad int", []string{"--workers", "many"}, nil, "not an integer"},
		{"node id range", []string{"--node-id", "16"}, nil, "node-id"},
		{"pipeline depth range", []string{"--pipeline-depth", "0"}, nil, "pipeline-depth"},
		{"nats listen with url", []string{"--nats-url", "nats://x:4222", "--nats-listen", ":4222", "--nats-token", "0123456789abcdef"}, nil, "nats-listen"},
		{"nats listen without token", []string{"--nats-listen", "127.0.0.1:4222"}, nil, "nats-token"},
		{"processed stream same as intake", []string{"--processed-stream", "REFLEX_INTAKE"}, nil, "processed-stream"},
		{"processed subject same as intake", []string{"--processed-subject-prefix", "reflex.intake"}, nil, "processed-subject-prefix"},
		{"processed partitions range", []string{"--processed-partitions", "-1"}, nil, "processed-partitions"},
		{"nats partitions range", []string{"--nats-partitions", "1025"}, nil, "nats-partitions"},
		{"processed max bytes", []string{"--processed-max-bytes", "1KiB"}, nil, "processed-max-bytes"},
		{"decisions stream same as intake", []string{"--decisions-stream", "REFLEX_INTAKE"}, nil, "decisions-stream"},
		{"decisions stream same as processed", []string{"--processed-stream", "P", "--decisions-stream", "P"}, nil, "decisions-stream"},
		{"decisions stream with a dot", []string{"--decisions-stream", "REFLEX.D"}, nil, "decisions-stream"},
		{"decisions stream empty", []string{"--decisions-stream="}, nil, "decisions-stream"},
		{"decisions subject is the intake prefix", []string{"--decisions-subject", "reflex.intake"}, nil, "decisions-subject"},
		{"decisions subject under the intake prefix", []string{"--decisions-subject", "reflex.intake.decisions"}, nil, "decisions-subject"},
		{"decisions subject is the processed prefix", []string{"--processed-subject-prefix", "reflex.p", "--decisions-subject", "reflex.p"}, nil, "decisions-subject"},
		{"decisions subject under the processed prefix", []string{"--decisions-subject", "reflex.processed.0"}, nil, "decisions-subject"},
		{"decisions subject wildcard", []string{"--decisions-subject", "reflex.decisions.*"}, nil, "decisions-subject"},
		{"decisions subject space", []string{"--decisions-subject", "reflex decisions"}, nil, "decisions-subject"},
		{"decisions max bytes", []string{"--decisions-max-bytes", "512KiB"}, nil, "decisions-max-bytes: 524288 is below the minimum of 1MiB"},
		{"decisions max age", []string{"--decisions-max-age", "30s"}, nil, "decisions-max-age: 30s is shorter than the minimum of 1m"},
		{"bad decisions max age", nil, map[string]string{"REFLEX_DECISIONS_MAX_AGE": "a week"}, "REFLEX_DECISIONS_MAX_AGE"},
		{"bad outbound allow", []string{"--outbound-allow", "127.0.0.1/32,10.0.0.0/33"}, nil, `outbound-allow: --outbound-allow entry 2 "10.0.0.0/33"`},
		{"bad business hours", []string{"--business-hours", "Mon-Fri 9-18"}, nil, `business-hours: span "Mon-Fri 9-18"`},
		{"bad timezone", nil, map[string]string{"REFLEX_TIMEZONE": "Europe/Atlantis"}, `timezone: time zone "Europe/Atlantis"`},
		{"bad holiday", []string{"--holidays", "2026-12-25,Christmas"}, nil, `holidays: holiday "Christmas"`},
		{"stray argument", []string{"extra"}, nil, "unexpected argument"},
		{"unknown flag", []string{"--nope"}, nil, "not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load("server", tc.args, env(tc.env), io.Discard)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestDecisionsStream(t *testing.T) {
	cfg, _, err := Load("server", nil, env(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, bus.DefaultDecisionsStream, cfg.DecisionsStream)
	require.Equal(t, bus.DefaultDecisionsSubject, cfg.DecisionsSubject)
	require.Equal(t, bus.DefaultDecisionsMaxBytes, int64(cfg.DecisionsMaxBytes))
	require.Equal(t, bus.DefaultDecisionsMaxAge, time.Duration(cfg.DecisionsMaxAge))

	file := filepath.Join(t.TempDir(), "reflex.yaml")
	require.NoError(t, os.WriteFile(file, []byte("decisions-stream: FROM_FILE\ndecisions-max-age: 12h\n"), 0o600))
	cfg, _, err = Load("server",
		// Sharing the intake prefix's characters, not its first token: no
		// overlap.
		[]string{"--config", file, "--decisions-subject", "reflex.intakes", "--decisions-max-age", "1m"},
		env(map[string]string{"REFLEX_DECISIONS_MAX_BYTES": "1MiB", "REFLEX_DECISIONS_STREAM": "FROM_ENV"}),
		io.Discard)
	require.NoError(t, err)
	require.Equal(t, "FROM_ENV", cfg.DecisionsStream, "env beats file")
	require.Equal(t, "reflex.intakes", cfg.DecisionsSubject)
	require.Equal(t, ByteSize(1<<20), cfg.DecisionsMaxBytes, "the minimum is allowed")
	require.Equal(t, time.Minute, time.Duration(cfg.DecisionsMaxAge), "flag beats file; the minimum is allowed")
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out strings.Builder
	_, _, err := Load("server", []string{"--help"}, env(nil), &out)
	require.True(t, errors.Is(err, flag.ErrHelp))
	for _, o := range options {
		require.Contains(t, out.String(), "-"+o.name)
		require.Contains(t, out.String(), EnvName(o.name))
	}
	require.Contains(t, out.String(), "-check-config")
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"5m", 5 * time.Minute, true},
		{"d", 0, false},
		{"-1d", 0, false},
		{"xd", 0, false},
		{"", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	var b ByteSize
	require.NoError(t, b.Set("2MiB"))
	require.Equal(t, ByteSize(2<<20), b)
	require.Equal(t, "2MiB", b.String())
	require.NoError(t, b.Set("1500"))
	require.Equal(t, "1500", b.String())
	require.Error(t, b.Set("lots"))
	require.Equal(t, "90d", Duration(90*24*time.Hour).String())
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.AdminToken = "s3cret"
	c.DatabaseURL = "postgres://user:pw@db:5432/reflex"
	r := c.Redacted()
	require.NotContains(t, r.AdminToken, "s3cret")
	require.Equal(t, "postgres://<redacted>@db:5432/reflex", r.DatabaseURL)

	for in, want := range map[string]string{
		"postgres://db/reflex?sslmode=disable&password=pw": "postgres://db/reflex?password=<redacted>&sslmode=disable",
		"postgres://u@db/reflex?sslpassword=pw":            "postgres://<redacted>@db/reflex?sslpassword=<redacted>",
		"nats://tok@127.0.0.1:4222":                        "nats://<redacted>@127.0.0.1:4222",
		"nats://127.0.0.1:4222":                            "nats://127.0.0.1:4222",
		"postgres://u:p%zz@db/x":                           "<redacted>",
		"":                                                 "",
	} {
		c.DatabaseURL = in
		require.Equal(t, want, c.Redacted().DatabaseURL, in)
	}
}

// TestHelpPrintsNoSecret: a secret set in the environment is never shown as
// a flag's default, by --help or by a usage error (issue 5 §1.5).
func TestHelpPrintsNoSecret(t *testing.T) {
	env := map[string]string{
		"REFLEX_ADMIN_TOKEN":  "admin-secret-123456",
		"REFLEX_NATS_TOKEN":   "nats-secret-1234567",
		"REFLEX_DATABASE_URL": "postgres://u:db-secret@db/x",
		"REFLEX_NATS_URL":     "nats://nats-url-secret@n:4222",
	}
	getenv := func(k string) string { return env[k] }
	for _, args := range [][]string{{"--help"}, {"--no-such-flag"}, {"--retention", "x"}} {
		var out bytes.Buffer
		_, _, err := Load("server", args, getenv, &out)
		require.Error(t, err)
		require.Contains(t, out.String(), "Usage: reflex server")
		for _, v := range env {
			require.NotContains(t, out.String(), v)
			require.NotContains(t, err.Error(), v)
		}
	}
}

// FuzzParse feeds arbitrary YAML to the config loader: it must return an
// error or a config, never panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("data-dir: /var/lib/reflex\nretention: 30d\n"))
	f.Add([]byte("nats-max-bytes: 2GiB\nrate-limit: 1.5\n"))
	f.Add([]byte("{"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(_ *testing.T, data []byte) {
		c := Default()
		if err := Parse(data, &c); err != nil {
			return
		}
		_ = c.Validate()
	})
}

func TestPartitionsFollowTheMode(t *testing.T) {
	for _, c := range []struct {
		name                 string
		url                  string
		intake, processed    int
		wantIntake, wantProc int
	}{
		{"embedded default: one partition, one fsync per envelope of any host", "", 0, 0, 1, 1},
		{"external default", "nats://n:4222", 0, 0, event.DefaultPartitions, event.DefaultPartitions},
		{"set on the embedded server", "", 4, 0, 4, 4},
		{"processed set apart", "nats://n:4222", 8, 2, 8, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			cfg.NATSURL, cfg.NATSPartitions, cfg.ProcessedPartitions = c.url, c.intake, c.processed
			require.NoError(t, cfg.Validate())
			require.Equal(t, c.wantIntake, cfg.Partitions())
			require.Equal(t, c.wantProc, cfg.ProcessedPartitionCount())
		})
	}
	cfg := Default()
	cfg.NATSPartitions = -1
	require.ErrorContains(t, cfg.Validate(), "nats-partitions")
}

func TestCalendar(t *testing.T) {
	cfg, _, err := Load("server", nil, env(nil), io.Discard)
	require.NoError(t, err)
	cal, err := cfg.Calendar()
	require.NoError(t, err)
	require.Equal(t, "Mon-Fri 09:00-18:00", cal.String(), "the default")
	require.Equal(t, "UTC", cal.Location().String())

	cfg, _, err = Load("server", []string{"--business-hours", "Sat 10:00-14:00", "--timezone", "Europe/Paris", "--holidays", "2026-12-26"}, env(nil), io.Discard)
	require.NoError(t, err)
	cal, err = cfg.Calendar()
	require.NoError(t, err)
	require.Equal(t, "Europe/Paris", cal.Location().String())
	// Saturday 2026-12-05 11:00 in Paris, and the holiday of the 26th.
	require.True(t, cal.Inside(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)))
	require.False(t, cal.Inside(time.Date(2026, 12, 26, 10, 0, 0, 0, time.UTC)))

	cfg, _, err = Load("server", []string{"--business-hours="}, env(nil), io.Discard)
	require.NoError(t, err)
	cal, err = cfg.Calendar()
	require.NoError(t, err)
	require.Empty(t, cal.String(), "empty: no business hours")
}
