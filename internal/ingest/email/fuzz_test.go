package email

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// FuzzParse checks that a raw message never panics the parser, the rules
// or the normalizer, and that what the adapter would submit is bounded,
// storable JSON that normalizes to a storable event.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/golden/*.eml")
	require.NoError(f, err)
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("Subject: x\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>a<br>b</p>\n--b--\n"))
	f.Add([]byte("Subject: =?utf-8?q?=00?=\nContent-Type: text/plain; charset=utf-16\n\n\xff\xfeA\x00"))
	// One cheap rule: the built-in ones are fuzzed by FuzzExtract, apart,
	// as regular expressions are slow under the fuzzer's instrumentation.
	rules, err := ParseRules([]byte("builtin: false\nrules:\n  - {field: subject, regex: '\\[(?P<state>[A-Za-z]+)\\]', host: h-1}\n"))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, raw []byte) {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-stop:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("slow input %q", raw))
			}
		}()
		m, err := Parse(raw)
		if err != nil {
			require.ErrorIs(t, err, ErrParse)
			return
		}
		require.LessOrEqual(t, len(m.Body), MaxBodyBytes)
		require.LessOrEqual(t, len(m.Headers), MaxHeaders)
		require.LessOrEqual(t, len(m.Attachments), MaxParts)
		rec := NewRecord(m, testEnvelope(len(raw)), rules)
		require.True(t, rec.Extracted.Severity.Valid())
		if rec.Extracted.Status != "" {
			require.NotEmpty(t, rec.Extracted.AlertKey)
			require.LessOrEqual(t, len(rec.Extracted.AlertKey), event.MaxAlertKeyLen)
		}
		data, err := encodeRecord(rec)
		require.NoError(t, err)
		require.True(t, json.Valid(data))
		require.True(t, utf8.Valid(data))
		require.False(t, bytes.Contains(data, []byte(`\u0000`)), "PostgreSQL cannot store NUL")
		require.Less(t, len(data), 1<<20, "fits an intake log message")

		r := event.Raw{ID: 7, SourceType: event.SourceEmail, Data: data, ReceivedAt: receivedAt}
		d, err := Normalizer{}.Normalize(&r)
		require.NoError(t, err)
		normalize.Clean(d, &r, processNow, normalize.DefaultMaxAge, normalize.DefaultMaxFuture)
		e := d.Event
		require.NotEmpty(t, e.Title)
		require.True(t, utf8.ValidString(e.Title) && utf8.ValidString(e.Description))
		require.Equal(t, normalize.Host(rec.Extracted.Host), e.SourceHost, "the partition's host is the event's")
		require.Equal(t, rec.Extracted.Severity, e.Severity, "the lane's severity is the event's")
		if e.Resolves() {
			require.Equal(t, event.Info, e.Severity)
		}
		b, err := e.MarshalData()
		require.NoError(t, err)
		var back event.Event
		require.NoError(t, back.UnmarshalData(b))
	})
}

// FuzzExtract checks the built-in rules on any subject and body: they
// never panic, give a valid severity, and an alert only with a bounded
// key.
func FuzzExtract(f *testing.F) {
	f.Add("** PROBLEM Service Alert: web-01/HTTP is CRITICAL **", "Host: web-01\nState: CRITICAL\n", "")
	f.Add("[OK] disk full on db-1", "", "1")
	f.Add("Resolved in 1h 2m: Disk low", "Host: fs-1\nSeverity: Average\n", "5 (Lowest)")
	f.Add("[CRITICAL]", "Host web-01 is DOWN", "")
	f.Add("\xff[WARNING]\xfe", "Service: \x00", "")
	rules := DefaultRules()
	f.Fuzz(func(t *testing.T, subject, body, xPriority string) {
		x := rules.Extract(subject, body, xPriority)
		require.True(t, x.Severity.Valid())
		require.LessOrEqual(t, len(x.Host), 4*normalize.MaxHostLen)
		if x.Status != "" {
			require.Contains(t, []event.AlertStatus{event.AlertFiring, event.AlertResolved}, x.Status)
			require.NotEmpty(t, x.AlertKey)
			require.LessOrEqual(t, len(x.AlertKey), event.MaxAlertKeyLen)
		} else {
			require.Empty(t, x.AlertKey)
		}
		if x.Status == event.AlertResolved {
			require.Equal(t, event.Info, x.Severity)
		}
		if utf8.ValidString(subject) && utf8.ValidString(body) {
			require.True(t, utf8.ValidString(x.AlertKey) && utf8.ValidString(x.Service) && utf8.ValidString(x.EventType))
		}
	})
}
