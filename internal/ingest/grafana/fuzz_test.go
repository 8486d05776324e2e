package grafana

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/alertmanager"
)

// FuzzDecode feeds Decode arbitrary bodies (seeds: the golden payloads,
// unified and legacy): it must not panic, must fail only with a
// *alertmanager.FieldError or ErrTooLarge, and every item must normalize.
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
		items, _, err := Decode(body, 4096)
		if err != nil {
			var fe *alertmanager.FieldError
			if !errors.As(err, &fe) && !errors.Is(err, alertmanager.ErrTooLarge) {
				t.Fatalf("unexpected error %T %v", err, err)
			}
			return
		}
		for i, it := range items {
			if len(it.Data) > 4096 || !json.Valid(it.Data) {
				t.Fatalf("item %d: bad data %q", i, it.Data)
			}
			raw := &event.Raw{ID: event.IDAt(time.Now()), SourceType: event.SourceGrafana, Data: it.Data}
			d, err := Normalizer{}.Normalize(raw)
			if err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
			if a := d.Event.Alert; a != nil && (a.Key == "" || len(a.Key) > event.MaxAlertKeyLen) {
				t.Fatalf("item %d: alert %+v", i, a)
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
