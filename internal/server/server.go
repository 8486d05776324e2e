// Package server assembles reflex: storage, the intake log, the pipeline
// and the HTTP services, with an ordered, bounded start and shutdown. It is
// embeddable: tests start a Server in-process on ":0".
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reflex-ops/reflex/internal/anomaly/monitor"
	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/datadir"
	"github.com/reflex-ops/reflex/internal/derived"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/incident"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/postgres"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// Options configures a Server.
type Options struct {
	Config config.Config
	// Logger receives every log; nil discards them.
	Logger *slog.Logger
	// Stderr receives the one-time print of a generated admin key; nil
	// means os.Stderr. It never goes through Logger, so it never lands in
	// log files.
	Stderr io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StopGrace is how long each component still gets to stop once the
	// shutdown deadline has passed (default DefaultStopGrace).
	StopGrace time.Duration
	// Lanes bounds what /readyz tolerates of the pipeline's lanes (zero
	// fields: the defaults of LaneLimits).
	Lanes LaneLimits
	// LeaseTTL is how long the processing lease outlives its holder on an
	// external NATS (default bus.DefaultLeaseTTL).
	LeaseTTL time.Duration
	// HoldDecisionRequests keeps the Autonomous Response Service from
	// taking the decision requests of the rules engine: they wait in the
	// decisions stream, for a test or a tool that reads them itself.
	HoldDecisionRequests bool
}

// Server is a running reflex. Its methods are safe for concurrent use.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	stderr io.Writer
	now    func() time.Time
	reg    *prometheus.Registry
	opts   Options

	stops   *stack // what has started, stopped in reverse by Shutdown
	lock    *datadir.Lock
	lease   *bus.Lease
	store   store.Store
	bus     *bus.Bus
	intake  *intake.Intake
	submit  *intake.Submitter // coalesces webhook requests into envelopes
	derived *derived.Emitter  // events reflex raises itself (new_log_pattern, anomaly)
	auth    *auth.Authenticator
	proc    *processing
	adminKY string

	processed *processedOut    // the processed-event stream (processed.go)
	notify    *notifications   // the notification router (notifications.go)
	rules     *rulesOut        // the rules engine and the decisions stream (rules.go)
	anomaly   *monitor.Monitor // the anomaly monitor (anomaly.go)

	contextual *contextual.Analyzer // the context analyzer (context.go)
	incidents  *incident.Engine     // the incident engine (incidents.go)
	auto       *autonomousOut       // the Autonomous Response Service (autonomous.go)

	events, autonomous, pprof *listener

	mu       sync.Mutex
	started  bool
	shutdown bool
	done     chan struct{}
}

type listener struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

// New checks the configuration and returns a Server that has not started.
func New(opts Options) (*Server, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    opts.Config,
		log:    opts.Logger,
		stderr: opts.Stderr,
		now:    opts.Now,
		reg:    prometheus.NewRegistry(),
		opts:   opts,
		done:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.stderr == nil {
		s.stderr = os.Stderr
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.stops = newStack(s.log, opts.StopGrace)
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// OpenStore opens the configured store (PostgreSQL when DatabaseURL is
// set, else SQLite in the data dir) and applies the migrations.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time) (store.Store, error) {
	return openStore(ctx, cfg, log, now, nil)
}

// openStore is OpenStore registering the store's metrics with reg.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time, reg prometheus.Registerer) (store.Store, error) {
	var (
		st  store.Store
		err error
	)
	if cfg.DatabaseURL != "" {
		st, err = postgres.Open(ctx, postgres.Options{URL: cfg.DatabaseURL, Logger: log, Now: now, Registerer: reg})
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("server: data dir: %w", err)
		}
		st, err = sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(cfg.DataDir, "reflex.db"), Logger: log, Now: now, Registerer: reg})
	}
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return st, nil
}

// Start locks the data dir, binds the listeners, opens storage and the
// intake log, starts the pipeline and begins serving, in that order: a data
// dir in use or a busy port fails before anything is migrated or a key is
// generated. Each component pushes its stop as it starts; on error what
// already started is stopped, in reverse. The services are Ready when Start
// returns without error.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	s.started = true
	defer func() {
		if err != nil {
			uctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ShutdownGrace))
			defer cancel()
			_ = s.stops.stop(uctx) // the start error is the one to report
		}
	}()
	log := s.log
	log.Info("starting reflex", "services", s.cfg.Services, "data_dir", s.cfg.DataDir,
		"store", storeKind(s.cfg), "bus", busKind(s.cfg))
	log.Debug("configuration", "config", s.cfg.Redacted())

	// 1. The data dir, before anything opens a file in it.
	if usesDataDir(s.cfg) {
		s.lock, err = datadir.Acquire(s.cfg.DataDir, s.now)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.stops.pushClose("data dir lock", s.lock.Unlock)
	}
	// 2. Every listener, so that a busy port fails at once.
	if err := s.bindAll(); err != nil {
		return err
	}
	// 3. Storage (migrations), then the services.
	s.store, err = openStore(ctx, s.cfg, log, s.now, s.reg)
	if err != nil {
		return err
	}
	s.stops.pushClose("store", s.store.Close)
	if err := s.startAuth(ctx); err != nil {
		return err
	}

	if s.cfg.RunsEvents() {
		if err := s.startEvents(ctx); err != nil {
			return err
		}
	}
	// 4. Serve: the listeners start last, so they stop first.
	if s.pprof != nil {
		s.serve(s.pprof, pprofHandler())
	}
	if s.cfg.RunsAutonomous() {
		if err := s.startAutonomous(ctx); err != nil {
			return err
		}
	}
	if s.autonomous != nil {
		h, err := s.autonomousHandler()
		if err != nil {
			return err
		}
		s.serve(s.autonomous, h)
	}
	return nil
}

// startAuth opens the API keys (both services authenticate with them) and
// creates the admin key on a first start, printing it once.
func (s *Server) startAuth(ctx context.Context) error {
	var err error
	s.auth, err = auth.New(auth.Options{Store: s.store, AdminToken: s.cfg.AdminToken, Now: s.now})
	if err != nil {
		return err
	}
	key, created, err := s.auth.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if created {
		s.adminKY = key
		fmt.Fprintf(s.stderr, "\nreflex: generated the admin API key (shown once, stored only as a hash):\n\n    %s\n\nexport REFLEX_TOKEN=%s\n\n", key, key)
	}
	return nil
}

// bindAll binds the listeners of the services that run (they are served
// at the end of Start) and checks that the embedded NATS server's client
// port is free.
func (s *Server) bindAll() error {
	var err error
	if s.cfg.RunsEvents() {
		if s.events, err = s.bind("events", s.cfg.EventsAddr); err != nil {
			return err
		}
		if s.cfg.NATSURL == "" && s.cfg.NATSListen != "" {
			if err := probePort(s.cfg.NATSListen); err != nil {
				return fmt.Errorf("server: nats-listen: %w", err)
			}
		}
	}
	if s.cfg.RunsAutonomous() {
		if s.autonomous, err = s.bind("autonomous", s.cfg.AutonomousAddr); err != nil {
			return err
		}
	}
	if s.cfg.PprofAddr != "" {
		if s.pprof, err = s.bind("pprof", s.cfg.PprofAddr); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) startEvents(ctx context.Context) error {
	var err error
	s.bus, err = bus.Open(ctx, bus.Options{
		URL:           s.cfg.NATSURL,
		DataDir:       filepath.Join(s.cfg.DataDir, "nats"),
		ListenAddr:    s.cfg.NATSListen,
		Token:         s.cfg.NATSToken,
		MaxBytes:      int64(s.cfg.NATSMaxBytes),
		MaxPayload:    api.EmbeddedMaxPayload(int64(s.cfg.MaxBodyBytes)),
		Partitions:    s.cfg.Partitions(),
		Stream:        s.cfg.NATSStream,
		SubjectPrefix: s.cfg.NATSSubject,
		Logger:        s.log,
		Registerer:    s.reg,
	})
	if err != nil {
		return err
	}
	s.stops.pushClose("intake log", s.bus.Close)
	// One instance processes the intake stream: where another instance
	// can reach it (an external NATS, or the embedded one with a client
	// listener), a second one fails here instead of splitting hosts' state.
	// Without a listener the data dir lock is enough.
	if !s.bus.Embedded() || s.cfg.NATSListen != "" {
		s.lease, err = s.bus.AcquireLease(ctx, bus.LeaseOptions{
			Holder:     leaseHolder(s.cfg),
			TTL:        s.opts.LeaseTTL,
			Logger:     s.log,
			Registerer: s.reg,
		})
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.stops.push("processing lease", s.lease.Release)
	}
	s.intake, err = intake.New(intake.Options{
		Bus:         s.bus,
		IDs:         event.NewIDGen(s.cfg.NodeID, s.now),
		Now:         s.now,
		MaxInFlight: s.cfg.MaxInFlight,
		Registerer:  s.reg,
	})
	if err != nil {
		return err
	}
	if err := s.startNotifications(ctx); err != nil {
		return err
	}
	if err := s.startDerived(); err != nil {
		return err
	}
	if err := s.openProcessed(ctx); err != nil {
		return err
	}
	if err := s.startRules(ctx); err != nil {
		return err
	}
	if err := s.startAnomaly(ctx); err != nil {
		return err
	}
	s.proc, err = newProcessing(ctx, s)
	if err != nil {
		return err
	}
	if err := s.startIncidents(ctx); err != nil {
		return err
	}
	procCtx := context.Background()
	if s.lease != nil {
		procCtx = s.lease.Context() // losing the lease stops processing
	}
	s.proc.start(procCtx, s.now())
	s.stops.push("pipeline", s.proc.stop)
	// Requests share envelopes: one per lane and partition (docs/design.md).
	// Started after the pipeline, so that its stop (publishing what it
	// holds) runs after the listeners stop and before the pipeline drains.
	s.submit, err = s.intake.Coalesce(intake.SubmitterOptions{})
	if err != nil {
		return err
	}
	s.stops.push("intake submitter", s.submit.Close)
	s.startRetention()
	if s.contextual, err = s.newContext(); err != nil {
		return err
	}

	// Adapters start here, after the pipeline, so that their listeners
	// stop before it drains. Each pushes its own stop: the webhook and the
	// HTTP adapters' routes are the events service below; syslog, SNMP and
	// SMTP listeners and the checks go beside it (adapters.go).
	routes, err := s.startAdapters(ctx)
	if err != nil {
		return err
	}
	h, err := api.NewEvents(api.EventsOptions{
		Routes:        routes,
		Store:         s.store,
		Auth:          s.auth,
		Submit:        s.intake,
		Assets:        s.proc.inventory,
		Rules:         s.ruleStore(),
		MaxBodyBytes:  int64(s.cfg.MaxBodyBytes),
		Webhook:       webhook.Options{MaxEventBytes: api.MaxEventBytes(s.bus.MaxPayload())},
		Logger:        s.log.With("component", "api"),
		Registerer:    s.reg,
		Now:           s.now,
		Ops:           api.NewOps(api.OpsOptions{Ready: s.Ready, Gatherer: s.reg, Service: "events", Logger: s.log, Registerer: s.reg}),
		Notifications: api.NotificationOptions{Store: s.store, SetPolicy: s.notify.setPolicy, SilencesChanged: s.notify.silencesChanged},
		PrepareTest:   s.proc.prepareTest,
		History:       s.store,
		Maintenance:   s.store,
		Context:       s.contextual,
		Incidents:     api.IncidentOptions{Store: s.store, Engine: s.incidents},
		Patterns:      api.PatternOptions{Store: s.store, Changed: s.proc.patternsChanged},
	})
	if err != nil {
		return err
	}
	s.serve(s.events, h)
	return nil
}

// startDerived builds the emitter of derived events on a dropping
// submitter of its own. Its stop (publishing what it holds) runs after the
// pipeline and the downstream consumers, which emit, have stopped.
func (s *Server) startDerived() error {
	sub, err := s.intake.NewSubmitter(intake.SubmitterOptions{Mode: intake.Dropping, MaxPendingEvents: 4096, MaxPendingBytes: 4 << 20})
	if err != nil {
		return err
	}
	s.stops.push("derived events submitter", sub.Close)
	s.derived, err = derived.New(derived.Options{Submitter: sub, Now: s.now, Logger: s.log.With("component", "derived"), Registerer: s.reg})
	return err
}

// bind binds a service's listener. Its stop (closing the socket, for a
// start that fails before it is served) runs last; serve pushes the HTTP
// server's graceful stop, which runs first.
func (s *Server) bind(name, addr string) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: %s service: listen on %s: %w", name, addr, err)
	}
	l := &listener{name: name, ln: ln, srv: &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}}
	s.stops.push(name+" listener", func(context.Context) error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	return l, nil
}

// probePort checks that a host:port can be bound (port 0 always can).
func probePort(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return nil // the bus reports a malformed address
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln.Close()
}

// serve starts serving a bound listener and pushes its graceful stop: no
// new requests, in-flight ones get their answers, connections are closed
// when ctx ends first.
func (s *Server) serve(l *listener, h http.Handler) {
	s.log.Info("listening", "service", l.name, "addr", l.ln.Addr().String())
	l.srv.Handler = h
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "service", l.name, "err", err)
		}
	}()
	s.stops.push(l.name+" service", func(ctx context.Context) error {
		err := l.srv.Shutdown(ctx)
		if err != nil {
			_ = l.srv.Close()
		}
		<-done
		return err
	})
}

// startRetention runs the retention loop until the shutdown stops it.
func (s *Server) startRetention() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.retentionLoop(ctx)
	}()
	s.stops.push("retention", func(ctx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// retentionLoop enforces the retention at start and then hourly.
func (s *Server) retentionLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before := s.now().Add(-time.Duration(s.cfg.Retention))
		n, err := s.store.EnforceRetention(ctx, before)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("retention", "err", err)
		case n != 0:
			s.log.Info("retention removed old events", "before", before, "removed", n)
		}
		// Delivery records and ended silences follow the events' retention.
		n, err = s.store.PruneNotifications(ctx, before)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("retention of notification records", "err", err)
		case n != 0:
			s.log.Info("retention removed old notification records and silences", "before", before, "removed", n)
		}
		// Ended maintenance windows too.
		n, err = s.store.PruneMaintenance(ctx, before)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("retention of maintenance windows", "err", err)
		case n != 0:
			s.log.Info("retention removed ended maintenance windows", "before", before, "removed", n)
		}
		// Resolved incidents follow it too.
		n, err = s.store.PruneIncidents(ctx, before)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("retention of incidents", "err", err)
		case n != 0:
			s.log.Info("retention removed old resolved incidents", "before", before, "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Ready returns nil once storage and the intake log answer and every lane
// of the pipeline works (it runs, has not stalled with messages waiting,
// and does not keep failing its batch; see LaneLimits), else the reason.
func (s *Server) Ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	st, b, proc, down := s.store, s.bus, s.proc, s.shutdown
	s.mu.Unlock()
	switch {
	case down:
		return errors.New("shutting down")
	case st == nil:
		return errors.New("storage not open")
	}
	if err := st.Ping(ctx); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if s.cfg.RunsEvents() && (b == nil || !b.Ready()) {
		return errors.New("intake log not ready")
	}
	if proc != nil {
		lanes, started := proc.lanes()
		pending := func(ctx context.Context, lane string) (uint64, error) { return b.Pending(ctx, bus.Lane(lane)) }
		if err := checkLanes(ctx, s.now(), started, lanes, pending, s.opts.Lanes); err != nil {
			return err
		}
	}
	// A failing publish to the processed stream shows as its lane failing
	// (the runner retries it as the step "downstream"), with the lanes' tolerance.
	return nil
}

// EventsAddr is the bound address of the Event Processing Service (nil if
// it does not run).
func (s *Server) EventsAddr() net.Addr {
	if s.events == nil {
		return nil
	}
	return s.events.ln.Addr()
}

// AutonomousAddr is the bound address of the Autonomous Response Service
// (nil if it does not run).
func (s *Server) AutonomousAddr() net.Addr {
	if s.autonomous == nil {
		return nil
	}
	return s.autonomous.ln.Addr()
}

// AdminKey is the admin key generated at this start, or "" if none was.
func (s *Server) AdminKey() string { return s.adminKY }

// Registry is the server's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Shutdown stops what Start started, in reverse: the listeners (no new
// requests; in-flight ones get their answers), the retention loop, the
// pipeline (runners store and acknowledge the batch they hold), the
// processing lease, the intake log, storage, and the data dir lock, within
// ctx's deadline (see stack.stop for a component that hangs). It is
// idempotent; later calls wait for the first to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		select {
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.shutdown = true
	s.mu.Unlock()
	defer close(s.done)
	err := s.stops.stop(ctx)
	s.log.Info("reflex stopped")
	return err
}

// usesDataDir reports whether the configuration keeps anything in the data
// dir (SQLite, or the embedded NATS server's store) or processes events:
// the processing lease names its holder by the data dir, which the lock
// makes unique on a host.
func usesDataDir(c config.Config) bool {
	return c.DatabaseURL == "" || c.RunsEvents()
}

// leaseHolder names this instance in the processing lease: its host and
// data dir, which the data dir lock makes unique on a host.
func leaseHolder(c config.Config) string {
	host, _ := os.Hostname()
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		dir = c.DataDir
	}
	return host + ":" + dir
}

func storeKind(c config.Config) string {
	if c.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}

func busKind(c config.Config) string {
	if c.NATSURL != "" {
		return "external-nats"
	}
	return "embedded-nats"
}
