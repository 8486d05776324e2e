package email

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	receivedAt = time.Date(2024, 12, 20, 13, 0, 0, 0, time.UTC)
	processNow = receivedAt.Add(time.Second)
)

// testEnvelope is the envelope the golden mails arrive with.
func testEnvelope(size int) Envelope {
	return Envelope{MailFrom: "monitor@example.com", RcptTo: []string{"alerts@reflex.example"}, Helo: "mon.example.com", RemoteIP: "192.0.2.10", Size: size}
}

// golden is a golden file's content: the normalized event, or why the mail
// was refused.
type golden struct {
	Item  *goldenItem  `json:"item,omitempty"`
	Event *event.Event `json:"event,omitempty"`
	Error string       `json:"error,omitempty"`
}

// goldenItem is what picks the event's lane and partition.
type goldenItem struct {
	Severity event.Severity `json:"severity"`
	Host     string         `json:"host,omitempty"`
}

// normalizeMail runs a raw mail through what the adapter and the
// normalize stage do with it.
func normalizeMail(t testing.TB, raw []byte, rules *Rules) (*Record, *event.Event, error) {
	t.Helper()
	m, err := Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	rec := NewRecord(m, testEnvelope(len(raw)), rules)
	data, err := encodeRecord(rec)
	require.NoError(t, err)
	r := event.Raw{ID: 1001, SourceSystem: "email", SourceType: event.SourceEmail, Data: data, ReceivedAt: receivedAt}
	d, err := Normalizer{}.Normalize(&r)
	require.NoError(t, err)
	normalize.Clean(d, &r, processNow, normalize.DefaultMaxAge, normalize.DefaultMaxFuture)
	return rec, d.Event, nil
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.eml")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			require.NoError(t, err)
			var got golden
			rec, e, err := normalizeMail(t, raw, DefaultRules())
			if err != nil {
				require.ErrorIs(t, err, ErrParse)
				got.Error = err.Error()
			} else {
				got.Item = &goldenItem{Severity: rec.Extracted.Severity, Host: rec.Extracted.Host}
				got.Event = e
				require.Equal(t, e.Severity, rec.Extracted.Severity, "the lane's severity is the event's")
				require.Equal(t, e.SourceHost, rec.Extracted.Host, "the partition's host is the event's")
				if e.Resolves() {
					require.Equal(t, event.Info, e.Severity, "a resolution is submitted at info")
				}
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", name+".json"), got, *update)
		})
	}
}
