package syslog

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

var (
	receivedAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	processNow = receivedAt.Add(150 * time.Millisecond)
	baseID     = event.IDAt(receivedAt) + 7
)

// testWire is the wire of a TCP listener whose clock says receivedAt and
// whose RFC 3164 zone is UTC.
func testWire(t testing.TB) *wire {
	t.Helper()
	met, err := newMetrics(nil)
	require.NoError(t, err)
	a := &Adapter{
		env:  ingest.Env{Now: func() time.Time { return receivedAt }, MaxEventBytes: 1 << 20},
		opts: Options{Location: time.UTC, Source: DefaultSource},
		log:  slog.New(slog.DiscardHandler),
		met:  met,
	}
	return a.newWire(met.listener(ListenerTCP))
}

func testStage(t testing.TB) *normalize.Stage {
	t.Helper()
	n, err := normalize.New(normalize.Options{Normalizers: map[event.SourceType]normalize.Normalizer{
		event.SourceSyslog: Normalizer{Location: time.UTC},
	}})
	require.NoError(t, err)
	return n
}

// normalizeLine takes msg from 127.0.0.1 through the wire, the intake
// envelope and the normalize stage, as the server does.
func normalizeLine(t testing.TB, w *wire, n *normalize.Stage, msg []byte) (intake.Item, *event.Event) {
	t.Helper()
	it, reason := w.item(msg, "127.0.0.1")
	require.Empty(t, reason)
	env := intake.Envelope{Version: 1, BaseID: baseID, ReceivedAt: receivedAt, SourceType: event.SourceSyslog, Events: []intake.Item{it}}
	// Through JSON, as the log holds it.
	data, err := json.Marshal(env)
	require.NoError(t, err)
	var back intake.Envelope
	require.NoError(t, json.Unmarshal(data, &back))
	b := &pipeline.Batch{Now: processNow, Raw: back.Raw()}
	require.NoError(t, n.Process(context.Background(), b))
	require.Len(t, b.Events, 1)
	return it, b.Events[0]
}

// TestGolden compares each testdata/golden/<case>.log (one raw message,
// a trailing newline of the file dropped) with <case>.json, the event it
// normalizes to. go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.log")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	w, n := testWire(t), testStage(t)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".log")
		t.Run(name, func(t *testing.T) {
			msg, err := os.ReadFile(in)
			require.NoError(t, err)
			msg = bytes.TrimSuffix(msg, []byte("\n"))
			it, e := normalizeLine(t, w, n, msg)
			require.Equal(t, e.Severity, it.Severity, "the item's lane is the event's severity")
			require.Equal(t, e.SourceHost, it.Host, "the item's partition is the event's host")
			got, err := json.MarshalIndent(struct {
				Event   *event.Event `json:"event"`
				Message string       `json:"message"` // Event.Message, for the template miner
			}{e, e.Message}, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".log") + ".json"
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o600))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -run TestGolden -update")
			require.JSONEq(t, string(want), string(got))
		})
	}
}

func TestSeverityMapping(t *testing.T) {
	want := []struct {
		name string
		sev  event.Severity
	}{
		{"emerg", event.Critical}, {"alert", event.Critical}, {"crit", event.Critical}, {"err", event.High},
		{"warning", event.Medium}, {"notice", event.Low}, {"info", event.Info}, {"debug", event.Info},
	}
	w, n := testWire(t), testStage(t)
	for code, tc := range want {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.name, SeverityName(uint8(code)))
			require.Equal(t, tc.sev, SeverityOf(uint8(code)))
			pri := 8*3 + code // daemon
			msg := []byte("<" + itoa(pri) + ">1 2026-11-01T11:59:00Z h app - - - severity " + tc.name)
			it, e := normalizeLine(t, w, n, msg)
			require.Equal(t, tc.sev, e.Severity)
			require.Equal(t, tc.sev, it.Severity)
			sys := e.Data[DataSyslog].(map[string]any)
			require.Equal(t, tc.name, sys["severity"])
			require.Equal(t, "daemon", sys["facility"])
		})
	}
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func TestFacilityNames(t *testing.T) {
	for code, name := range map[uint8]string{0: "kern", 1: "user", 3: "daemon", 4: "auth", 10: "authpriv", 16: "local0", 23: "local7"} {
		require.Equal(t, name, FacilityName(code))
	}
	require.Equal(t, "facility24", FacilityName(24))
}

func TestMapping(t *testing.T) {
	w, n := testWire(t), testStage(t)
	tests := []struct {
		name, msg                   string
		eventType, host, service    string
		title, description, message string
		malformed                   string
	}{
		{
			name: "app-name sanitized", msg: `<13>1 2026-11-01T11:59:00Z Web-01 My/App:x 1 - - text`,
			eventType: "syslog.my_app_x", host: "web-01", service: "My/App:x", title: "text", description: "text", message: "text",
		},
		{
			name: "no app-name", msg: `<13>1 2026-11-01T11:59:00Z h - - - - text`,
			eventType: "syslog", host: "h", title: "text", description: "text", message: "text",
		},
		{
			name: "no hostname: the peer", msg: `<13>1 2026-11-01T11:59:00Z - app - - - text`,
			eventType: "syslog.app", host: "127.0.0.1", service: "app", title: "text", description: "text", message: "text",
		},
		{
			name: "empty message: a title of facility and severity", msg: `<11>1 2026-11-01T11:59:00Z h app - - -`,
			eventType: "syslog.app", host: "h", service: "app", title: "user.err syslog message",
		},
		{
			name: "invalid UTF-8 and NUL made storable", msg: "<13>1 2026-11-01T11:59:00Z h app - - - a\xffb\x00c",
			eventType: "syslog.app", host: "h", service: "app", title: "a\uFFFDb\uFFFDc", description: "a\uFFFDb\uFFFDc", message: "a\uFFFDb\uFFFDc",
		},
		{
			name: "malformed keeps its text", msg: `<13>1 2026-13-01T11:59:00Z h app - - - text`,
			eventType: "syslog", host: "127.0.0.1", title: "1 2026-13-01T11:59:00Z h app - - - text",
			description: "1 2026-13-01T11:59:00Z h app - - - text", message: "1 2026-13-01T11:59:00Z h app - - - text", malformed: MalformedRFC5424,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, e := normalizeLine(t, w, n, []byte(tc.msg))
			require.Equal(t, tc.eventType, e.EventType)
			require.Equal(t, tc.host, e.SourceHost)
			require.Equal(t, tc.service, e.SourceService)
			require.Equal(t, tc.title, e.Title)
			require.Equal(t, tc.description, e.Description)
			require.Equal(t, tc.message, e.Message)
			sys := e.Data[DataSyslog].(map[string]any)
			if tc.malformed == "" {
				require.NotContains(t, sys, "malformed")
				require.NotContains(t, e.Tags, TagMalformed)
			} else {
				require.Equal(t, tc.malformed, sys["malformed"])
				require.Contains(t, e.Tags, TagMalformed)
			}
		})
	}
}

func TestEventTypeBounded(t *testing.T) {
	require.Equal(t, "syslog."+strings.Repeat("a", maxAppInType), eventType(strings.Repeat("A", 300)))
}

func TestPriority(t *testing.T) {
	for in, want := range map[string]int{"<0>x": 3, "<13>x": 4, "<191>x": 5, "<192>x": 0, "<013>x": 0, "<1234>x": 0, "<>x": 0, "<13": 0, "13>": 0} {
		_, n := priority([]byte(in))
		require.Equal(t, want, n, in)
	}
}

func TestBSDYear(t *testing.T) {
	p := newParser(time.UTC)
	jan := time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
	m := p.parse([]byte("<13>Dec 31 23:59:59 h app: last year"), jan)
	require.Equal(t, time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), m.Timestamp)
	m = p.parse([]byte("<13>Jan  2 00:00:30 h app: a little ahead"), jan)
	require.Equal(t, time.Date(2027, 1, 2, 0, 0, 30, 0, time.UTC), m.Timestamp)

	berlin, err := time.LoadLocation("Europe/Berlin")
	if err == nil {
		m = newParser(berlin).parse([]byte("<13>Jul  1 12:00:00 h app: local time"), jan)
		require.Equal(t, time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC), m.Timestamp.UTC())
	}
}

func TestItemTooLarge(t *testing.T) {
	w := testWire(t)
	w.a.env.MaxEventBytes = 100
	_, reason := w.item([]byte("<13>1 - h app - - - "+strings.Repeat("x", 100)), "127.0.0.1")
	require.Equal(t, ReasonTooLarge, reason)
	_, reason = w.item(nil, "127.0.0.1")
	require.Equal(t, ReasonEmpty, reason)
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote \" back \\ slash", "ctl \n\r\t\x01\x1f", "utf8 é ✓ \u2028", "\uFFFD"} {
		var got string
		require.NoError(t, json.Unmarshal(appendString(nil, s), &got))
		require.Equal(t, s, got)
	}
}
