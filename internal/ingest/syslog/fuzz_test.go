package syslog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

// goldenSeeds adds the golden messages to f's corpus.
func goldenSeeds(f *testing.F, add func(msg []byte)) {
	f.Helper()
	inputs, err := filepath.Glob("testdata/golden/*.log")
	require.NoError(f, err)
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		require.NoError(f, err)
		add(bytes.TrimSuffix(b, []byte("\n")))
	}
}

// FuzzFrameReader checks that the framing reader never returns a frame
// over its maximum, never returns more bytes than it read, and always
// ends.
func FuzzFrameReader(f *testing.F) {
	goldenSeeds(f, func(msg []byte) {
		f.Add(append(append([]byte(nil), msg...), '\n'), uint16(600))
		f.Add(append([]byte(itoa(len(msg))+" "), msg...), uint16(600))
	})
	for _, s := range []string{"5 <13>a<13>b\n", "99999999999999999999 x", "0 ", "\x00\r\n", "12x", "<13>" + strings.Repeat("x", 700) + "\n<13>a"} {
		f.Add([]byte(s), uint16(600))
	}
	f.Fuzz(func(t *testing.T, in []byte, maxBytes uint16) {
		limit := int(maxBytes%2048) + 1
		r := NewFrameReader(bytes.NewReader(in), limit)
		total := 0
		for range len(in) + 1 { // each frame takes at least one byte
			b, err := r.Next()
			if errors.Is(err, ErrFrameTooLarge) {
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFraming) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(b) > limit {
				t.Fatalf("frame of %d bytes, max %d", len(b), limit)
			}
			total += len(b)
			if total > len(in) {
				t.Fatalf("returned %d bytes of %d", total, len(in))
			}
		}
		t.Fatalf("more frames than input bytes")
	})
}

// FuzzParseNormalize takes any message through the wire (parse, item) and
// the normalize stage: it must not panic, the item's lane and partition
// must be the event's severity and host, and the event must be storable.
func FuzzParseNormalize(f *testing.F) {
	goldenSeeds(f, func(msg []byte) { f.Add(msg) })
	for _, s := range []string{"", "<", "<13>", "<13>1 ", "<13>1 - - - - - [", `<13>1 - - - - - [a b="\]"]`, "<13>Feb 29 24:61:61 h t[: x", "\xff\x00<13>"} {
		f.Add([]byte(s))
	}
	w, n := testWire(f), testStage(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		it, reason := w.item(msg, "127.0.0.1")
		if reason != "" {
			if reason != ReasonEmpty && reason != ReasonTooLarge {
				t.Fatalf("reason %q for %q", reason, msg)
			}
			return
		}
		if !json.Valid(it.Data) {
			t.Fatalf("item data is not JSON: %q", it.Data)
		}
		if bytes.Contains(it.Data, []byte(`\u0000`)) {
			t.Fatalf("item data holds \\u0000: %q", it.Data)
		}
		env := intake.Envelope{Version: 1, BaseID: baseID, ReceivedAt: receivedAt, SourceType: event.SourceSyslog, Events: []intake.Item{it}}
		b := &pipeline.Batch{Now: processNow, Raw: env.Raw()}
		if err := n.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(b.Events) != 1 {
			t.Fatalf("%d events", len(b.Events))
		}
		e := b.Events[0]
		if e.Severity != it.Severity || e.SourceHost != it.Host {
			t.Fatalf("item %s/%q, event %s/%q", it.Severity, it.Host, e.Severity, e.SourceHost)
		}
		for _, s := range []string{e.EventType, e.SourceHost, e.SourceService, e.Title, e.Description, e.Message} {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("unstorable text %q", s)
			}
		}
		if utf8.RuneCountInString(e.Title) > normalize.MaxTitleLen || e.Title == "" {
			t.Fatalf("title %q", e.Title)
		}
		if _, err := json.Marshal(e); err != nil {
			t.Fatal(err)
		}
	})
}
