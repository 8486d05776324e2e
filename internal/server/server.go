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

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/event"
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
}

// Server is a running reflex. Its methods are safe for concurrent use.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	stderr io.Writer
	now    func() time.Time
	reg    *prometheus.Registry

	store   store.Store
	bus     *bus.Bus
	intake  *intake.Intake
	auth    *auth.Authenticator
	proc    *processing
	adminKY string

	processed *processedOut // the processed-event stream (processed.go)

	events, autonomous, pprof *listener

	bg       sync.WaitGroup
	cancelBG context.CancelFunc

	mu       sync.Mutex
	started  bool
	shutdown bool
	done     chan struct{}
}

type listener struct {
	srv *http.Server
	ln  net.Listener
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
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// OpenStore opens the configured store (PostgreSQL when DatabaseURL is
// set, else SQLite in the data dir) and applies the migrations.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time) (store.Store, error) {
	var (
		st  store.Store
		err error
	)
	if cfg.DatabaseURL != "" {
		st, err = postgres.Open(ctx, postgres.Options{URL: cfg.DatabaseURL, Logger: log, Now: now})
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("server: data dir: %w", err)
		}
		st, err = sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(cfg.DataDir, "reflex.db"), Logger: log, Now: now})
	}
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return st, nil
}

// Start opens storage and the intake log, starts the pipeline and begins
// listening. It returns once the listeners are bound; the services are
// Ready when Start returns without error. On error everything already
// started is stopped.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	s.started = true
	defer func() {
		if err != nil {
			_ = s.closeAll(context.Background()) // the start error is the one to report
		}
	}()
	log := s.log
	log.Info("starting reflex", "services", s.cfg.Services, "data_dir", s.cfg.DataDir,
		"store", storeKind(s.cfg), "bus", busKind(s.cfg))
	log.Debug("configuration", "config", s.cfg.Redacted())

	s.store, err = OpenStore(ctx, s.cfg, log, s.now)
	if err != nil {
		return err
	}

	bgctx, cancel := context.WithCancel(context.Background())
	s.cancelBG = cancel

	if s.cfg.RunsEvents() {
		if err := s.startEvents(ctx, bgctx); err != nil {
			return err
		}
	}
	if s.cfg.PprofAddr != "" {
		s.pprof, err = listen(s.cfg.PprofAddr, pprofHandler())
		if err != nil {
			return fmt.Errorf("server: pprof: %w", err)
		}
		s.serve(s.pprof, "pprof")
	}
	if s.cfg.RunsAutonomous() {
		h := api.NewOps(api.OpsOptions{Ready: s.Ready, Gatherer: s.reg, Service: "autonomous", Logger: log, Registerer: s.reg})
		s.autonomous, err = listen(s.cfg.AutonomousAddr, h)
		if err != nil {
			return fmt.Errorf("server: autonomous service: %w", err)
		}
		s.serve(s.autonomous, "autonomous")
	}
	return nil
}

func (s *Server) startEvents(ctx, bgctx context.Context) error {
	var err error
	s.bus, err = bus.Open(ctx, bus.Options{
		URL:           s.cfg.NATSURL,
		DataDir:       filepath.Join(s.cfg.DataDir, "nats"),
		ListenAddr:    s.cfg.NATSListen,
		Token:         s.cfg.NATSToken,
		MaxBytes:      int64(s.cfg.NATSMaxBytes),
		Stream:        s.cfg.NATSStream,
		SubjectPrefix: s.cfg.NATSSubject,
		Logger:        s.log,
		Registerer:    s.reg,
	})
	if err != nil {
		return err
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
	if err := s.openProcessed(ctx); err != nil {
		return err
	}
	s.proc, err = newProcessing(ctx, s)
	if err != nil {
		return err
	}
	s.proc.start(bgctx, &s.bg)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.retentionLoop(bgctx)
	}()

	h, err := api.NewEvents(api.EventsOptions{
		Store:        s.store,
		Auth:         s.auth,
		Submit:       s.intake,
		Assets:       s.proc.inventory,
		MaxBodyBytes: int64(s.cfg.MaxBodyBytes),
		Logger:       s.log.With("component", "api"),
		Registerer:   s.reg,
		Now:          s.now,
		Ops:          api.NewOps(api.OpsOptions{Ready: s.Ready, Gatherer: s.reg, Service: "events", Logger: s.log, Registerer: s.reg}),
	})
	if err != nil {
		return err
	}
	s.events, err = listen(s.cfg.EventsAddr, h)
	if err != nil {
		return fmt.Errorf("server: events service: %w", err)
	}
	s.serve(s.events, "events")
	return nil
}

func listen(addr string, h http.Handler) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &listener{ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}}, nil
}

func (s *Server) serve(l *listener, name string) {
	s.log.Info("listening", "service", name, "addr", l.ln.Addr().String())
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "service", name, "err", err)
		}
	}()
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
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Ready returns nil once storage and the intake log answer, else the
// reason.
func (s *Server) Ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	st, b, down := s.store, s.bus, s.shutdown
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
	return s.processedReady()
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

// Shutdown stops intake, drains the pipeline, closes the intake log and
// storage, in that order, within ctx's deadline. It is idempotent; later
// calls wait for the first to finish.
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
	return s.closeAll(ctx)
}

func (s *Server) closeAll(ctx context.Context) error {
	var errs []error
	// 1. Stop intake: no new requests; in-flight ones get their answers.
	for _, l := range []*listener{s.events, s.autonomous, s.pprof} {
		if l != nil {
			if err := l.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("server: http shutdown: %w", err))
			}
		}
	}
	// 2. Drain the pipeline: runners store and acknowledge the batch they
	// hold, then stop.
	if s.proc != nil {
		if err := s.proc.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.cancelBG != nil {
		s.cancelBG()
	}
	waited := make(chan struct{})
	go func() { s.bg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("server: background tasks did not stop: %w", ctx.Err()))
	}
	// 3. Close the intake log, then 4. storage.
	if s.bus != nil {
		if err := s.bus.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("reflex stopped")
	return errors.Join(errs...)
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
