package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
)

// countingBus counts the messages intake published.
type countingBus struct {
	*bus.Bus
	published atomic.Int64
}

func (c *countingBus) PublishBatch(ctx context.Context, msgs []bus.Message) error {
	err := c.Bus.PublishBatch(ctx, msgs)
	var be *bus.BatchError
	switch {
	case err == nil:
		c.published.Add(int64(len(msgs)))
	case errors.As(err, &be):
		for _, e := range be.Errs {
			if e == nil {
				c.published.Add(1)
			}
		}
	}
	return err
}

// newBusEnv is an env whose submitter is a real intake on an embedded
// intake log configured as the server configures it for maxBody.
func newBusEnv(t *testing.T, maxBody int64) (*env, *countingBus) {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), MaxPayload: EmbeddedMaxPayload(maxBody)})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cb := &countingBus{Bus: b}
	in, err := intake.New(intake.Options{Bus: cb, IDs: event.NewIDGen(1, nil)})
	require.NoError(t, err)
	e := newEnv(t, func(o *EventsOptions) {
		o.Submit = in
		o.MaxBodyBytes = maxBody
		o.Webhook.MaxEventBytes = MaxEventBytes(b.MaxPayload())
	})
	return e, cb
}

// event of exactly n bytes (the body as sent is compact).
func eventOfSize(t *testing.T, n int, severity string) string {
	t.Helper()
	head := `{"severity":"` + severity + `","message":"`
	s := head + strings.Repeat("x", n-len(head)-2) + `"}`
	require.Len(t, s, n)
	return s
}

// TestWebhookBodyLimitIsTheDocumentedOne is the regression test of issue 5
// §1.4: a body of exactly --max-body-bytes (the default, 1 MiB) holding one
// event was refused with 413, because the intake log's message is the event
// plus its envelope.
func TestWebhookBodyLimitIsTheDocumentedOne(t *testing.T) {
	e, cb := newBusEnv(t, DefaultMaxBodyBytes)
	w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: eventOfSize(t, DefaultMaxBodyBytes, "info")})
	require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	require.EqualValues(t, 1, cb.published.Load())

	w = e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: eventOfSize(t, DefaultMaxBodyBytes+1, "info")})
	requireError(t, w, http.StatusRequestEntityTooLarge, "", "request body larger than 1048576 bytes")
	require.EqualValues(t, 1, cb.published.Load())
}

// TestWebhookOversizedEventPublishesNothing is the regression test of issue
// 5 §1.4: in an array where one event exceeds what one intake log message
// can carry, the 413 said "nothing of this request was acknowledged" while
// the events before it (and those of the other lane) were stored. Each
// event is now checked before anything is published.
func TestWebhookOversizedEventPublishesNothing(t *testing.T) {
	// A body limit above the embedded log's largest max payload, so that
	// an event can fit the body and not the log.
	const maxBody = 12 << 20
	e, cb := newBusEnv(t, maxBody)
	limit := MaxEventBytes(int64(EmbeddedMaxPayload(maxBody)))
	body := "[" + eventOfSize(t, 100, "critical") + "," + eventOfSize(t, 100, "info") + "," +
		eventOfSize(t, limit+1, "info") + "," + eventOfSize(t, 100, "critical") + "]"
	w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: body})
	requireError(t, w, http.StatusRequestEntityTooLarge, "", "event 2 is")
	require.Contains(t, w.Body.String(), "nothing of this request was accepted")
	require.Zero(t, cb.published.Load(), "nothing published")

	// The largest event that fits is accepted.
	body = "[" + eventOfSize(t, 100, "critical") + "," + eventOfSize(t, limit, "info") + "]"
	w = e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: body})
	require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	require.EqualValues(t, 2, cb.published.Load())
}
