package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// The processing lease: until partitions are handed to instances, exactly
// one instance processes an intake stream. It holds a key in a JetStream KV
// bucket whose TTL is the lease's; it renews the key every TTL/3, and a
// holder that dies loses the lease once the TTL has passed without renewal.

// Errors of the processing lease.
var (
	// ErrLeaseHeld means another instance processes the stream. The error
	// that wraps it names the holder.
	ErrLeaseHeld = errors.New("bus: another instance processes this intake stream")
	// ErrLeaseLost means the lease passed to another instance while this
	// one held it (its renewals failed for longer than the TTL).
	ErrLeaseLost = errors.New("bus: processing lease lost")
)

// DefaultLeaseTTL is the lease's default TTL: how long a dead holder keeps
// a restarted instance on another host waiting.
const DefaultLeaseTTL = 15 * time.Second

const leaseKey = "processing"

// LeaseOptions configure AcquireLease. Holder is required.
type LeaseOptions struct {
	// Holder identifies the instance, for example host:data-dir. A lease
	// found under the same Holder is taken over at once: it was left by
	// an earlier run of this instance (the caller guarantees that only
	// one process runs as Holder, for example with a data dir lock).
	Holder string
	// TTL is how long the lease outlives its last renewal (default
	// DefaultLeaseTTL, at least 1s).
	TTL time.Duration
	// Now is the clock, for the start time recorded in the lease (default
	// time.Now).
	Now func() time.Time
	// Logger receives the lease's logs (nil: none).
	Logger *slog.Logger
	// Registerer registers the lease's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// leaseValue is what the lease key holds.
type leaseValue struct {
	Holder  string    `json:"holder"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

func (v leaseValue) String() string {
	return fmt.Sprintf("%s, pid %d, started %s", v.Holder, v.PID, v.Started.UTC().Format(time.RFC3339))
}

// Lease is a held processing lease. Its Context ends when the lease is
// lost or released.
type Lease struct {
	kv    jetstream.KeyValue
	log   *slog.Logger
	ttl   time.Duration
	value []byte
	met   *leaseMetrics

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}

	mu  sync.Mutex
	rev uint64

	once   sync.Once
	relErr error
}

// LeaseBucket is the name of the KV bucket that holds the lease of a stream.
func LeaseBucket(stream string) string {
	var b strings.Builder
	b.WriteString("REFLEX_LEASE_")
	for _, r := range stream {
		if r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// AcquireLease takes the processing lease of the bus's stream, or fails
// with an error that wraps ErrLeaseHeld and names the holder. The lease is
// renewed in the background until Release.
func (b *Bus) AcquireLease(ctx context.Context, opts LeaseOptions) (*Lease, error) {
	if opts.Holder == "" {
		return nil, errors.New("bus: LeaseOptions.Holder is required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultLeaseTTL
	}
	opts.TTL = max(opts.TTL, time.Second)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.ConnectTimeout)
	defer cancel()
	bucket := LeaseBucket(b.opts.Stream)
	replicas := 1 // as many as the intake stream: the lease is as available as it
	if info := b.stream.CachedInfo(); info != nil {
		replicas = max(1, info.Config.Replicas)
	}
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "reflex processing lease of stream " + b.opts.Stream,
		History:     1,
		TTL:         opts.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: lease bucket %s: %w", bucket, classify(err))
	}
	value, err := json.Marshal(leaseValue{Holder: opts.Holder, PID: os.Getpid(), Started: opts.Now()})
	if err != nil {
		return nil, fmt.Errorf("bus: lease: %w", err)
	}
	rev, err := kv.Create(ctx, leaseKey, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		var cur leaseValue
		entry, gerr := kv.Get(ctx, leaseKey)
		switch {
		case gerr != nil:
			// It expired between the two calls: try once more.
			rev, err = kv.Create(ctx, leaseKey, value)
		case json.Unmarshal(entry.Value(), &cur) == nil && cur.Holder == opts.Holder:
			opts.Logger.Info("taking over the processing lease left by an earlier run of this instance",
				"holder", cur.String())
			rev, err = kv.Update(ctx, leaseKey, value, entry.Revision())
		default:
			return nil, fmt.Errorf("%w %s (held by %s; a holder that stops releases it, one that dies loses it %s after its last renewal)",
				ErrLeaseHeld, b.opts.Stream, cur.String(), opts.TTL)
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("%w %s (taken meanwhile by another instance)", ErrLeaseHeld, b.opts.Stream)
		}
		return nil, fmt.Errorf("bus: acquire lease: %w", classify(err))
	}
	met, err := newLeaseMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	l := &Lease{
		kv:    kv,
		log:   opts.Logger.With("component", "lease"),
		ttl:   opts.TTL,
		value: value,
		met:   met,
		rev:   rev,
		done:  make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	met.held.Set(1)
	l.log.Info("holding the processing lease", "stream", b.opts.Stream, "ttl", opts.TTL)
	go l.renew()
	return l, nil
}

// Context ends when the lease is lost (its cause wraps ErrLeaseLost) or
// released.
func (l *Lease) Context() context.Context { return l.ctx }

// Err returns why the lease ended (wrapping ErrLeaseLost if it was lost),
// or nil while it is held.
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		if err := l.renewOnce(); err != nil {
			if errors.Is(err, ErrLeaseLost) {
				l.met.held.Set(0)
				l.met.lost.Inc()
				l.log.Error("processing lease lost; this instance stops processing", "err", err)
				l.cancel(err)
				return
			}
			l.met.renewFailures.Inc()
			l.log.Warn("renew processing lease", "err", err)
		}
	}
}

func (l *Lease) renewOnce() error {
	ctx, cancel := context.WithTimeout(l.ctx, l.ttl/3)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	rev, err := l.kv.Update(ctx, leaseKey, l.value, l.rev)
	if err == nil {
		l.rev = rev
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return err
	}
	// Our revision is gone: the key expired (renewals failed for a TTL)
	// or another instance took it.
	rev, err = l.kv.Create(ctx, leaseKey, l.value)
	if err == nil {
		l.rev = rev
		return nil
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		holder := "another instance"
		if e, gerr := l.kv.Get(ctx, leaseKey); gerr == nil {
			var v leaseValue
			if json.Unmarshal(e.Value(), &v) == nil {
				holder = v.String()
			}
		}
		return fmt.Errorf("%w to %s", ErrLeaseLost, holder)
	}
	return err
}

// Release stops renewing and deletes the lease, so that another instance
// can take it at once. It is idempotent.
func (l *Lease) Release(ctx context.Context) error {
	l.once.Do(func() {
		lost := l.Err()
		l.cancel(errors.New("bus: processing lease released"))
		<-l.done
		l.met.held.Set(0)
		l.met.unregister()
		if lost != nil {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.kv.Delete(ctx, leaseKey, jetstream.LastRevision(l.rev)); err != nil {
			l.relErr = fmt.Errorf("bus: release lease: %w", classify(err))
		}
	})
	return l.relErr
}

type leaseMetrics struct {
	reg           prometheus.Registerer
	held          prometheus.Gauge
	lost          prometheus.Counter
	renewFailures prometheus.Counter
}

func newLeaseMetrics(reg prometheus.Registerer) (*leaseMetrics, error) {
	m := &leaseMetrics{
		reg: reg,
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_processing_lease_held",
			Help: "1 while this instance holds the processing lease of its intake stream (external NATS), else 0.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_processing_lease_lost_total",
			Help: "Times this instance lost the processing lease to another instance and stopped processing.",
		}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_processing_lease_renew_failures_total",
			Help: "Renewals of the processing lease that failed (NATS unavailable); the lease is lost if they fail for its TTL and another instance takes it.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.held, m.lost, m.renewFailures} {
		if err := reg.Register(c); err != nil {
			m.unregisterUpTo(c)
			return nil, fmt.Errorf("bus: lease metrics: %w", err)
		}
	}
	return m, nil
}

func (m *leaseMetrics) unregisterUpTo(stop prometheus.Collector) {
	for _, c := range []prometheus.Collector{m.held, m.lost, m.renewFailures} {
		if c == stop {
			return
		}
		m.reg.Unregister(c)
	}
}

func (m *leaseMetrics) unregister() {
	if m.reg == nil {
		return
	}
	m.unregisterUpTo(nil)
}
