package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/notify/receiver"
	"github.com/reflex-ops/reflex/internal/outbound"
	"github.com/reflex-ops/reflex/internal/store"
)

// Notifier takes rule firings to the notification router, which groups,
// silences and sends them as the policy says. Dispatch does not block and
// is safe for concurrent use. The rules engine is its caller.
type Notifier interface {
	Dispatch(a notify.Alert)
}

var _ Notifier = (*notify.Dispatcher)(nil)

// Bounds of the notification wiring.
const (
	// silenceTTL is how long the router's copy of the silences is used
	// before the store is read again; the API's writes drop it at once.
	silenceTTL = 5 * time.Second
	// recordTimeout bounds the write of one attempt's record.
	recordTimeout = 5 * time.Second
	// maxCachedSilences bounds the silences read for the router.
	maxCachedSilences = 10_000
)

// notifications is the notification router of the Event Processing
// Service: a notify.Dispatcher whose senders are built from the policy's
// receivers through one outbound.Guard, whose silences come from the
// store (cached briefly) and whose attempts are recorded in the store.
type notifications struct {
	d     *notify.Dispatcher
	st    store.NotificationStore
	guard *outbound.Guard
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	senders map[string]senderOf // of the policy in use, by receiver name

	silMu    sync.Mutex
	silences []notify.Silence
	silRead  time.Time // when silences were read; zero: read again
}

type senderOf struct {
	s   notify.Sender
	err error // the receiver's configuration cannot work
}

// startNotifications builds the router and runs it, with its stop pushed
// on the stack. The policy: the --notifications-file when given (stored,
// replacing the stored one), else the stored policy, else none until a
// PUT /api/v1/notifications/policy.
func (s *Server) startNotifications(ctx context.Context) error {
	allow, err := outbound.ParseAllow(s.cfg.OutboundAllow)
	if err != nil {
		return fmt.Errorf("server: %w", err) // Validate checked it already
	}
	n := &notifications{
		st:    s.store,
		guard: outbound.NewGuard(allow),
		log:   s.log.With("component", "notify"),
		now:   s.now,
	}
	policy, err := s.startPolicy(ctx)
	if err != nil {
		return err
	}
	m, err := notify.NewMetrics(s.reg)
	if err != nil {
		return fmt.Errorf("server: notifications: %w", err)
	}
	n.senders = n.build(policy)
	n.d, err = notify.NewDispatcher(notify.DispatcherOptions{
		Policy:   policy,
		Senders:  n.sender,
		Silences: n.active,
		Record:   n.record,
		Now:      s.now,
		Logger:   s.log,
		Metrics:  m,
	})
	if err != nil {
		return fmt.Errorf("server: notifications: %w", err)
	}
	done := make(chan struct{})
	runCtx := context.WithoutCancel(ctx) // the router outlives Start; its stop ends it
	go func() {
		defer close(done)
		_ = n.d.Run(runCtx) // only ErrRan, impossible here
	}()
	s.stops.push("notifications", func(ctx context.Context) error {
		stopped := make(chan struct{})
		go func() {
			n.d.Stop()
			<-done
			close(stopped)
		}()
		select {
		case <-stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	s.notify = n
	return nil
}

// startPolicy returns the policy to start with (nil for none).
func (s *Server) startPolicy(ctx context.Context) (*notify.Policy, error) {
	if f := s.cfg.NotificationsFile; f != "" {
		p, err := notify.LoadPolicyFile(f)
		if err != nil {
			return nil, fmt.Errorf("server: notifications-file: %w", err)
		}
		doc, media := p.Source()
		if err := s.store.PutPolicy(ctx, store.StoredPolicy{Document: doc, MediaType: media, UpdatedAt: s.now()}); err != nil {
			return nil, fmt.Errorf("server: notifications-file: %w", err)
		}
		s.log.Info("notification policy loaded", "file", f, "receivers", len(p.ReceiverNames()))
		return p, nil
	}
	sp, err := s.store.Policy(ctx)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("no notification policy: alerts are not notified until one is set")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("server: notification policy: %w", err)
	}
	p, err := notify.ParsePolicy(sp.Document, sp.MediaType)
	if err != nil {
		return nil, fmt.Errorf("server: the stored notification policy does not parse (give --notifications-file to replace it): %w", err)
	}
	return p, nil
}

// build makes the senders of p's receivers. A receiver whose
// configuration cannot work keeps its error, recorded at each delivery.
func (n *notifications) build(p *notify.Policy) map[string]senderOf {
	out := map[string]senderOf{}
	if p == nil {
		return out
	}
	for _, name := range p.ReceiverNames() {
		r, _ := p.Receiver(name)
		s, err := receiver.New(r, n.guard, receiver.Options{Now: n.now, Logger: n.log})
		if err != nil {
			n.log.Error("notification receiver cannot be used", "receiver", name, "err", err)
		}
		out[name] = senderOf{s, err}
	}
	return out
}

// setPolicy uses p from now on (a PUT of the API, once stored).
func (n *notifications) setPolicy(p *notify.Policy) {
	senders := n.build(p)
	n.mu.Lock()
	n.senders = senders
	n.mu.Unlock()
	n.d.SetPolicy(p)
	n.log.Info("notification policy replaced", "receivers", len(senders))
}

// sender is DispatcherOptions.Senders.
func (n *notifications) sender(name string) (notify.Sender, error) {
	n.mu.Lock()
	so, ok := n.senders[name]
	n.mu.Unlock()
	switch {
	case !ok:
		return nil, &notify.PermanentError{Err: fmt.Errorf("no receiver %q in the policy", name)}
	case so.err != nil:
		return nil, so.err
	}
	return so.s, nil
}

// active is DispatcherOptions.Silences: the silences that have not ended,
// read from the store at most every silenceTTL. When the store fails, the
// last list read is used.
func (n *notifications) active(now time.Time) []notify.Silence {
	n.silMu.Lock()
	defer n.silMu.Unlock()
	if !n.silRead.IsZero() && now.Sub(n.silRead) < silenceTTL && !now.Before(n.silRead) {
		return n.silences
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	list, err := n.st.Silences(ctx, store.SilenceQuery{EndsAfter: now, Limit: maxCachedSilences})
	if err != nil {
		n.log.Error("reading the silences failed; using the last ones read", "err", err)
		return n.silences
	}
	n.silences, n.silRead = list, now
	return list
}

// silencesChanged drops the cached silences (after the API wrote one).
func (n *notifications) silencesChanged() {
	n.silMu.Lock()
	n.silRead = time.Time{}
	n.silMu.Unlock()
}

// record is DispatcherOptions.Record: every attempt goes to the store.
func (n *notifications) record(a notify.Attempt) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if _, err := n.st.InsertNotification(ctx, a); err != nil {
		n.log.Error("recording a notification attempt failed", "receiver", a.Receiver, "status", a.Status, "err", err)
	}
}

// Notifier is the notification router of the Event Processing Service,
// nil when that service does not run (or before Start).
func (s *Server) Notifier() Notifier {
	if s.notify == nil {
		return nil
	}
	return s.notify.d
}
