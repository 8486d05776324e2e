package alertmanager

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// FuzzDecode feeds Decode arbitrary bodies (seeds: the golden payloads):
// it must not panic, must fail only with ErrBadRequest (a *FieldError) or
// ErrTooLarge, and every item it returns must be a JSON record the
// normalizer maps to an event with an alert.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/*.payload.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, _, err := Decode(body, Options{MaxEventBytes: 4096})
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error %T %v", err, err)
			}
			return
		}
		for i, it := range items {
			if len(it.Data) > 4096 || !json.Valid(it.Data) {
				t.Fatalf("item %d: bad data %q", i, it.Data)
			}
			raw := &event.Raw{ID: event.IDAt(time.Now()), SourceType: event.SourceAlertmanager, Data: it.Data}
			d, err := Normalizer{}.Normalize(raw)
			if err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
			if d.Event.Alert == nil || d.Event.Alert.Key == "" || len(d.Event.Alert.Key) > event.MaxAlertKeyLen {
				t.Fatalf("item %d: alert %+v", i, d.Event.Alert)
			}
			if d.Event.Severity != it.Severity {
				t.Fatalf("item %d: severity %s, item %s", i, d.Event.Severity, it.Severity)
			}
			if _, err := d.Event.MarshalData(); err != nil {
				t.Fatalf("item %d: event data: %v", i, err)
			}
		}
	})
}
