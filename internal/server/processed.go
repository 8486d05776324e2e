package server

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// EnvCrashAfterCommits is a test hook, read only when set: with a value N
// above 0, the server kills itself with SIGKILL right after the Nth store
// commit of the pipeline and before that batch is published on the
// processed stream, so that a test can crash it inside the window between
// a commit and the acknowledgement of its intake messages. Never set it in
// production.
const EnvCrashAfterCommits = "REFLEX_TEST_CRASH_AFTER_COMMITS"

// processedOut is the processed-event stream of the events service and
// the publisher that the pipeline's runners hand each stored batch to.
type processedOut struct {
	stream *bus.Processed
	pub    *processed.Publisher
	// shared decodes each message once for the downstream components
	// (rules, anomaly, incidents), which read the same messages at about
	// the same time.
	shared *processed.SharedDecoder
}

// openProcessed creates or updates the processed stream and its
// publisher. It runs after the bus is open and before the pipeline.
func (s *Server) openProcessed(ctx context.Context) error {
	ps, err := s.bus.OpenProcessed(ctx, bus.ProcessedOptions{
		Stream:        s.cfg.ProcessedStream,
		SubjectPrefix: s.cfg.ProcessedSubject,
		Partitions:    s.cfg.ProcessedPartitionCount(),
		MaxBytes:      int64(s.cfg.ProcessedMaxBytes),
		Logger:        s.log,
	})
	if err != nil {
		return err
	}
	hook, err := crashHook(os.Getenv(EnvCrashAfterCommits), s)
	if err != nil {
		return err
	}
	pub, err := processed.NewPublisher(processed.PublisherOptions{
		Sink:          ps,
		Store:         s.store,
		BeforePublish: hook,
		Logger:        s.log.With("component", "processed-publisher"),
		Registerer:    s.reg,
	})
	if err != nil {
		return err
	}
	if err := registerStreamGauges(s.reg, ps); err != nil {
		return err
	}
	shared, err := processed.NewSharedDecoder(0, s.reg)
	if err != nil {
		return err
	}
	s.processed = &processedOut{stream: ps, pub: pub, shared: shared}
	return nil
}

// downstream is the runners' Downstream (nil before openProcessed).
func (s *Server) downstream() pipeline.Downstream {
	if s.processed == nil {
		return nil
	}
	return s.processed.pub
}

// crashHook returns the BeforePublish hook of EnvCrashAfterCommits's
// value v (nil when v is empty).
func crashHook(v string, s *Server) (func(), error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("server: %s=%q is not a positive integer", EnvCrashAfterCommits, v)
	}
	s.log.Warn("test hook armed: the server will kill itself after a store commit", "env", EnvCrashAfterCommits, "commits", n)
	var commits atomic.Int64
	return func() {
		if commits.Add(1) != n {
			return
		}
		fmt.Fprintf(s.stderr, "reflex: %s=%d: killing the process after store commit %d, before publishing it\n", EnvCrashAfterCommits, n, n)
		p, err := os.FindProcess(os.Getpid())
		if err == nil {
			err = p.Kill()
		}
		if err != nil {
			fmt.Fprintf(s.stderr, "reflex: test hook could not kill the process: %v\n", err)
			return
		}
		select {} // the kill is asynchronous: publish nothing meanwhile
	}, nil
}

// streamInfo is what registerStreamGauges reads of a stream.
type streamInfo interface {
	Info(ctx context.Context) (*jetstream.StreamInfo, error)
}

// registerStreamGauges registers the processed stream's size, read at
// scrape time.
func registerStreamGauges(reg prometheus.Registerer, ps *bus.Processed) error {
	return registerSizeGauges(reg, ps, "reflex_processed_stream",
		"Messages in the processed stream: published and not yet acknowledged by every downstream consumer.",
		"Bytes in the processed stream; publishes fail when it reaches --processed-max-bytes.")
}

// registerSizeGauges registers <prefix>_messages and <prefix>_bytes of a
// stream, read at scrape time.
func registerSizeGauges(reg prometheus.Registerer, st streamInfo, prefix, msgsHelp, bytesHelp string) error {
	info := func(f func(msgs, bytes uint64) uint64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			in, err := st.Info(ctx)
			if err != nil {
				return 0
			}
			return float64(f(in.State.Msgs, in.State.Bytes))
		}
	}
	msgs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: prefix + "_messages", Help: msgsHelp},
		info(func(m, _ uint64) uint64 { return m }))
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: prefix + "_bytes", Help: bytesHelp},
		info(func(_, b uint64) uint64 { return b }))
	for _, g := range []*prometheus.GaugeFunc{&msgs, &bytes} {
		if err := promutil.Register(reg, g); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	return nil
}

// runDownstream runs a downstream component on the processed stream:
// cons feeds handle, and run (its timer loop: reloads, flushes, ticks)
// runs beside it, both until the shutdown pushes name's stop, which
// cancels them, waits for them (the batch in the handler is finished and
// acknowledged) and then calls flush, if any.
func (s *Server) runDownstream(name string, cons *processed.Consumer, handle processed.Handler,
	run func(context.Context), flush func(context.Context) error) {
	runCtx, cancel := context.WithCancel(context.Background())
	ran, consumed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ran)
		run(runCtx)
	}()
	go func() {
		defer close(consumed)
		_ = cons.Run(runCtx, handle) // returns nil when runCtx ends
	}()
	s.stops.push(name, func(ctx context.Context) error {
		cancel()
		for _, done := range []chan struct{}{consumed, ran} {
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if flush == nil {
			return nil
		}
		return flush(ctx)
	})
}
