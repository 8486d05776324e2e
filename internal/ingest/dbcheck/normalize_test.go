package dbcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	receivedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	notifiedAt = receivedAt.Add(-time.Second)
)

// notifyPayload is the payload the adapter submits for a notification
// with text on channel reflex_alerts of main-pg.
func notifyPayload(text string) []byte {
	p := &Payload{
		Kind: KindNotify, Database: "main-pg", Driver: DriverPostgres, Host: "pg-main.internal",
		Severity: "medium", At: notifiedAt, Channel: "reflex_alerts", PID: 4242, EventType: "app_alert", Text: text,
	}
	b, err := encode(p)
	if err != nil {
		panic(err)
	}
	return b
}

// TestNormalizeGolden: testdata/golden/<case>.check is a check's payload
// as the adapter submits it, <case>.notify the text of a NOTIFY (on
// channel reflex_alerts of main-pg); <case>.json is the event the
// normalize stage makes of it.
func TestNormalizeGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.check")
	require.NoError(t, err)
	notifies, err := filepath.Glob("testdata/golden/*.notify")
	require.NoError(t, err)
	inputs = append(inputs, notifies...)
	require.NotEmpty(t, inputs)
	stage, err := normalize.New(normalize.Options{Normalizers: map[event.SourceType]normalize.Normalizer{event.SourceDB: Normalizer{}}})
	require.NoError(t, err)
	for _, in := range inputs {
		ext := filepath.Ext(in)
		name := strings.TrimSuffix(filepath.Base(in), ext)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			data := bytes.TrimSpace(body)
			if ext == ".notify" {
				data = notifyPayload(string(body))
			}
			p, err := ParsePayload(data)
			require.NoError(t, err)
			raw := event.Raw{ID: event.IDAt(receivedAt) + 7, SourceType: event.SourceDB, SourceSystem: p.Database, Data: data, ReceivedAt: receivedAt}
			b := &pipeline.Batch{Now: receivedAt.Add(100 * time.Millisecond), Raw: []event.Raw{raw}}
			require.NoError(t, stage.Process(context.Background(), b))
			require.Len(t, b.Events, 1, "outcomes: %v", b.Outcomes)
			e := b.Events[0]
			require.True(t, utf8.ValidString(e.Title))
			if e.Alert != nil && e.Alert.Status == event.AlertResolved {
				require.Equal(t, event.Info, e.Severity, "a resolution is info")
			}

			testutil.Golden(t, filepath.Join("testdata", "golden", name+".json"), e, *update)
		})
	}
}

func TestParsePayloadErrors(t *testing.T) {
	for _, s := range []string{``, `[]`, `{}`, `{"kind":"other","database":"x"}`, `{"kind":"check","database":"x"}`, `{"kind":"notify"}`} {
		_, err := ParsePayload([]byte(s))
		require.ErrorIs(t, err, ErrPayload, s)
	}
	_, err := Normalizer{}.Normalize(&event.Raw{Data: []byte(`{"kind":"notify"}`)})
	require.ErrorIs(t, err, ErrPayload)
}

// FuzzNotification: any NOTIFY payload normalizes to an event, without a
// panic, whose severity is valid and whose text fields are what the
// payload said.
func FuzzNotification(f *testing.F) {
	for _, s := range []string{
		`{"title":"disk full","severity":"high","host":"db-01"}`, `plain text`, ``, `{`, `{}`, `[1]`, `null`,
		`{"message":"m","severity":3}`, `{"title":1,"host":{"a":1}}`, ` {"a":1} x`, `{"a":1}}`, "{\"title\":\"\xff\"}",
		`{"severity":"critical","message":"` + strings.Repeat("x", 700) + `"}`, `{"a":1e999}`,
	} {
		f.Add(s)
	}
	stage, err := normalize.New(normalize.Options{Normalizers: map[event.SourceType]normalize.Normalizer{event.SourceDB: Normalizer{}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		n := ParseNotification(text)
		if n.Object == nil && n.Message != strings.TrimSpace(text) {
			t.Fatalf("%q: not an object, but the message is %q", text, n.Message)
		}
		if n.Severity != "" && !n.Severity.Valid() {
			t.Fatalf("%q: severity %q", text, n.Severity)
		}
		d, err := Normalizer{}.Normalize(&event.Raw{Data: notifyPayload(text)})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !d.Event.Severity.Valid() || d.Event.Title == "" {
			t.Fatalf("%q: severity %q, title %q", text, d.Event.Severity, d.Event.Title)
		}
		raw := event.Raw{ID: event.IDAt(receivedAt), SourceType: event.SourceDB, Data: notifyPayload(text), ReceivedAt: receivedAt}
		b := &pipeline.Batch{Now: receivedAt, Raw: []event.Raw{raw}}
		if err := stage.Process(context.Background(), b); err != nil || len(b.Events) != 1 {
			t.Fatalf("%q: %v, %d events", text, err, len(b.Events))
		}
		if _, err := json.Marshal(b.Events[0]); err != nil {
			t.Fatalf("%q: the event does not encode: %v", text, err)
		}
	})
}
