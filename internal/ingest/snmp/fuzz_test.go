package snmp

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// FuzzDecode feeds datagrams to the decoder (without its recover, so that
// a panic shows) and normalizes what it accepts. The seeds are the golden
// packets net-snmp sent (testdata/golden/*.hex) and cuts of them.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob("testdata/golden/*.hex")
	require.NoError(f, err)
	for _, file := range files {
		pkt := readHex(f, file)
		f.Add(pkt)
		f.Add(pkt[:len(pkt)/2])
	}
	f.Add([]byte{0x30, 0x00})
	dec, err := NewDecoder(testSettings(f))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := dec.decode(data, goldenFrom)
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if p.Trap == nil {
			if p.Reply == nil {
				t.Fatal("neither a trap nor a reply")
			}
			return
		}
		raw, err := json.Marshal(p.Trap)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		r := event.Raw{ID: baseID, SourceType: event.SourceSNMP, Data: raw, ReceivedAt: receivedAt}
		d, err := Normalizer{}.Normalize(&r)
		if err != nil {
			t.Fatalf("normalize what intake accepted: %v", err)
		}
		normalize.Clean(d, &r, processNow, time.Hour, time.Hour)
		if d.Event.EventType == "" || !d.Event.Severity.Valid() {
			t.Fatalf("event type %q severity %q", d.Event.EventType, d.Event.Severity)
		}
		if _, err := d.Event.MarshalData(); err != nil {
			t.Fatalf("event data: %v", err)
		}
	})
}
