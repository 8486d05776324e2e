package normalize

import (
	"context"
	"testing"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

// FuzzNormalize checks the contract between intake and the normalizer: every
// event the webhook decoder accepts normalizes without error into an event
// the store's columns can hold, whatever the body.
func FuzzNormalize(f *testing.F) {
	f.Add([]byte(`{"source":"monitoring_system_name","event_type":"threshold_breach","severity":"critical","host":"web-server-01","service":"nginx","message":"CPU usage exceeded 95%","timestamp":"2024-12-20T10:30:00Z","metadata":{"cpu_usage":97.5,"threshold":95.0,"duration":"5m"}}`))
	f.Add([]byte(`[{"message":"a","tags":["X","x"," "]},{"message":"b","title":"t","description":"d","timestamp":1793534400000}]`))
	f.Add([]byte(`{"message":"éééé🚀","host":" WEB ","extra":{"n":1e300},"timestamp":"9999-12-31T23:59:59Z"}`))
	n := New(Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		items, _, err := webhook.Decode("application/json", body, webhook.Options{MaxEvents: 20})
		if err != nil || len(items) == 0 {
			return
		}
		env := intake.Envelope{Version: 1, BaseID: baseID, ReceivedAt: receivedAt, SourceType: event.SourceWebhook, Events: items}
		b := &pipeline.Batch{Now: processNow, Raw: env.Raw()}
		if err := n.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(b.Outcomes) != 0 {
			t.Fatalf("accepted events failed to normalize: %v", b.Outcomes)
		}
		if len(b.Events) != len(items) {
			t.Fatalf("%d events from %d items", len(b.Events), len(items))
		}
		for i, e := range b.Events {
			if e.ID != baseID+int64(i) {
				t.Fatalf("event %d has id %d: order lost", i, e.ID)
			}
			checkStorable(t, e)
		}
	})
}
