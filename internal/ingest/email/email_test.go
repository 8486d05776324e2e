package email

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
)

// fakeLog is an intake log for unit tests: it holds each publish until
// the test releases it, and fails it when fail is set.
type fakeLog struct {
	published chan []bus.Message
	release   chan struct{}
	mu        sync.Mutex
	fail      error
}

func (l *fakeLog) PublishBatch(ctx context.Context, msgs []bus.Message) error {
	l.mu.Lock()
	fail := l.fail
	l.mu.Unlock()
	if fail != nil {
		return fail
	}
	l.published <- msgs
	select {
	case <-l.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func startTest(t *testing.T, opts Options) (*Server, *fakeLog, *prometheus.Registry) {
	t.Helper()
	log := &fakeLog{published: make(chan []bus.Message, 16), release: make(chan struct{}, 16)}
	in, err := intake.New(intake.Options{Bus: log, IDs: event.NewIDGen(1, time.Now), PublishAttempts: 1})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	opts.Addr = "127.0.0.1:0"
	s, err := Start(ingest.Env{Intake: in, MaxEventBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler), Registerer: reg, Now: time.Now}, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.Stop(ctx))
	})
	return s, log, reg
}

func dialTest(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Hello("client.test"))
	return c
}

// send sends one mail and returns the server's answer to it.
func send(c *smtp.Client, msg string) error {
	if err := c.Mail("mon@client.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("alerts@reflex.test", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

func TestServerAnswersOnceDurable(t *testing.T) {
	s, log, _ := startTest(t, Options{Source: "mail-unit"})
	c := dialTest(t, s)
	answered := make(chan error, 1)
	go func() {
		answered <- send(c, "Subject: [CRITICAL] disk full\r\n\r\nHost: db-9\r\n")
	}()
	msgs := <-log.published
	select {
	case err := <-answered:
		t.Fatalf("answered (%v) before the log stored the event", err)
	default:
	}
	require.Len(t, msgs, 1)
	require.Equal(t, bus.LaneHi, msgs[0].Lane, "critical travels in the critical lane")
	var env intake.Envelope
	require.NoError(t, json.Unmarshal(msgs[0].Data, &env))
	require.Equal(t, event.SourceEmail, env.SourceType)
	require.Len(t, env.Events, 1)
	require.Equal(t, "mail-unit", env.Events[0].SourceSystem)
	var rec Record
	require.NoError(t, json.Unmarshal(env.Events[0].Data, &rec))
	require.Equal(t, "[CRITICAL] disk full", rec.Subject)
	require.Equal(t, "db-9", rec.Extracted.Host)
	require.Equal(t, "127.0.0.1", rec.Envelope.RemoteIP)

	log.release <- struct{}{}
	require.NoError(t, <-answered)
	require.Equal(t, 1.0, testutil.ToFloat64(s.accepted))
	require.Equal(t, 1.0, testutil.ToFloat64(s.received))
}

func TestServerIntakeFailureIs451(t *testing.T) {
	s, log, _ := startTest(t, Options{})
	log.mu.Lock()
	log.fail = bus.ErrUnavailable
	log.mu.Unlock()
	c := dialTest(t, s)
	err := send(c, "Subject: x\r\n\r\ny\r\n")
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 451, se.Code, "temporary: the sender retries")
	require.Equal(t, 1.0, testutil.ToFloat64(s.rejected.WithLabelValues(ReasonIntake)))

	// The session goes on, and the next mail is taken once the log is back.
	log.mu.Lock()
	log.fail = nil
	log.mu.Unlock()
	log.release <- struct{}{}
	require.NoError(t, send(c, "Subject: again\r\n\r\ny\r\n"))
	<-log.published
}

func TestServerRefusals(t *testing.T) {
	rcpts, err := ParseRecipients("alerts@reflex.test")
	require.NoError(t, err)
	s, _, _ := startTest(t, Options{Recipients: rcpts, MaxBytes: 1024})
	c := dialTest(t, s)
	require.NoError(t, c.Mail("a@client.test", nil))
	var se *smtp.SMTPError
	require.ErrorAs(t, c.Rcpt("other@reflex.test", nil), &se)
	require.Equal(t, 550, se.Code)
	require.NoError(t, c.Reset())

	err = send(c, "Subject: big\r\n\r\n"+strings.Repeat("0123456789abcdef\r\n", 128))
	require.ErrorAs(t, err, &se)
	require.Equal(t, 552, se.Code, se.Message)

	err = send(c, "no header at all\r\n")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 554, se.Code)
	for reason, n := range map[string]float64{ReasonRecipient: 1, ReasonTooLarge: 1, ReasonParse: 1} {
		require.Equal(t, n, testutil.ToFloat64(s.rejected.WithLabelValues(reason)), reason)
	}
}

func TestServerStop(t *testing.T) {
	s, _, _ := startTest(t, Options{})
	c := dialTest(t, s) // an idle session does not hold Stop
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Stop(ctx))
	require.NoError(t, s.Stop(ctx), "idempotent")
	require.Error(t, c.Noop(), "sessions are closed")
	_, err := smtp.Dial(s.Addr().String())
	require.Error(t, err, "the listener is closed")
	var opErr interface{ Timeout() bool }
	require.False(t, errors.As(err, &opErr) && opErr.Timeout())
}
