package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// receivedAt is the receipt time of the golden payloads: after every time
// in them, so that the normalize stage keeps their timestamps.
var receivedAt = time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)

// golden is the expected outcome of one payload: the normalized events, or
// the error Decode returns.
type golden struct {
	Events []*event.Event `json:"events,omitempty"`
	Items  []goldenItem   `json:"items,omitempty"`
	Error  string         `json:"error,omitempty"`
	Field  string         `json:"field,omitempty"`
}

// goldenItem is what intake takes of an alert: its lane and partition.
type goldenItem struct {
	Severity event.Severity `json:"severity"`
	Host     string         `json:"host"`
}

func TestGolden(t *testing.T) {
	runGolden(t, event.SourceAlertmanager, Normalizer{}, func(body []byte) ([]intake.Item, error) {
		items, _, err := Decode(body, Options{})
		return items, err
	})
}

// runGolden runs each testdata/golden/<case>.payload.json through decode
// and the normalize stage with norm, and compares the outcome with
// <case>.json (-update rewrites it).
func runGolden(t *testing.T, src event.SourceType, norm normalize.Normalizer, decode func([]byte) ([]intake.Item, error)) {
	t.Helper()
	inputs, err := filepath.Glob("testdata/golden/*.payload.json")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	stage, err := normalize.New(normalize.Options{Normalizers: map[event.SourceType]normalize.Normalizer{src: norm}})
	require.NoError(t, err)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".payload.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			var got golden
			items, err := decode(body)
			if err != nil {
				require.ErrorIs(t, err, ErrBadRequest)
				var fe *FieldError
				require.True(t, errors.As(err, &fe), "%v", err)
				got.Error, got.Field = fe.Error(), fe.Field
			} else {
				env := intake.Envelope{Version: 1, BaseID: event.IDAt(receivedAt), ReceivedAt: receivedAt, SourceType: src, Events: items}
				b := &pipeline.Batch{Now: receivedAt, Raw: env.Raw()}
				require.NoError(t, stage.Process(context.Background(), b))
				require.Empty(t, b.Outcomes)
				require.Len(t, b.Events, len(items))
				got.Events = b.Events
				for i, it := range items {
					e := b.Events[i]
					require.Equal(t, e.Severity, it.Severity, "the item's lane is the event's severity")
					require.Equal(t, e.SourceHost, it.Host, "the item's partition is the event's host")
					require.NotNil(t, e.Alert)
					got.Items = append(got.Items, goldenItem{it.Severity, it.Host})
					_, err := json.Marshal(e)
					require.NoError(t, err)
				}
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", name+".json"), got, *update)
		})
	}
}
