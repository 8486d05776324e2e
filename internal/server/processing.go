package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/correlate"
	"github.com/reflex-ops/reflex/internal/enrich"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/noise"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/patterns"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/severity"
	"github.com/reflex-ops/reflex/internal/templates"
)

// Lane settings: the critical lane takes small batches and lingers briefly;
// the low lane takes large batches, since the store costs less per event in
// large transactions, and may be pipelined (--pipeline-depth; docs/design.md,
// "Lanes and partitions"): its stages then run while its last batch is
// stored.
// A batch ends at maxBatch intake messages or maxBytes of them, whichever
// comes first: envelopes are small when intake is partitioned (a webhook
// request of 1,000 hosts' events splits 16 ways), and a batch counted in
// messages alone then holds few events and costs a commit each
// (docs/benchmarks.md: with 16 partitions on PostgreSQL and an external
// NATS, the critical lane's p50 was 12.5 s with batches of 16 messages and
// 141 ms with these bounds). With one partition (the embedded default) the
// byte bounds end the batches at about as many events as before.
var lanes = []struct {
	lane      bus.Lane
	maxBatch  int // intake messages per batch
	maxBytes  int // bytes of intake messages per batch
	linger    time.Duration
	pipelined bool // Pipeline is --pipeline-depth (else 1)
}{
	{bus.LaneHi, 256, 512 << 10, 2 * time.Millisecond, false},
	{bus.LaneLo, 512, 1 << 20, 20 * time.Millisecond, true},
}

// processing is the pipeline of the Event Processing Service: the stages
// and one runner per lane.
type processing struct {
	inventory *enrich.Inventory
	enricher  *enrich.Enricher
	dedup     *noise.Dedup
	corr      *correlate.Correlator
	templates *templates.Stage // nil with --templates=false
	// patterns learns sequences and frequencies and links sequences; nil
	// with --sequences=false. Its Precedes answers how often one template
	// precedes another.
	patterns *patterns.Learner
	runners  []*pipeline.Runner
	log      *slog.Logger

	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	started time.Time
	exited  map[*pipeline.Runner]error // runners whose Run returned, and its error
	errs    []error
}

func newProcessing(ctx context.Context, s *Server) (*processing, error) {
	p := &processing{inventory: enrich.NewInventory(), done: make(chan struct{}), exited: map[*pipeline.Runner]error{}, log: s.log}
	if s.cfg.AssetsFile != "" {
		assets, err := enrich.LoadFile(s.cfg.AssetsFile)
		if err != nil {
			return nil, err
		}
		for _, a := range assets {
			a.UpdatedAt = s.now()
			if err := s.store.PutAsset(ctx, a); err != nil {
				return nil, fmt.Errorf("server: load assets: %w", err)
			}
		}
		s.log.Info("loaded asset inventory", "file", s.cfg.AssetsFile, "assets", len(assets))
	}
	if err := p.inventory.Load(ctx, s.store); err != nil {
		return nil, err
	}

	var err error
	nopts := noise.Options{Window: time.Duration(s.cfg.DedupWindow), Rate: s.cfg.RateLimit, Burst: s.cfg.RateBurst, Registerer: s.reg}
	p.dedup, err = noise.NewDedup(nopts)
	if err != nil {
		return nil, err
	}
	// The limiter runs before dedup and charges no token for repeats.
	limiter, err := noise.NewRateLimiter(nopts, p.dedup)
	if err != nil {
		return nil, err
	}
	p.corr, err = correlate.New(correlate.Options{
		Window:       time.Duration(s.cfg.CorrelationWin),
		CausalWindow: time.Duration(s.cfg.CausalWindow),
		Registerer:   s.reg,
	})
	if err != nil {
		return nil, err
	}
	scorer, err := severity.New(severity.Options{Registerer: s.reg})
	if err != nil {
		return nil, err
	}
	enricher, err := enrich.New(p.inventory, enrich.Options{Registerer: s.reg})
	if err != nil {
		return nil, err
	}
	p.enricher = enricher

	// Warm the windows from what was stored recently, so that a restart
	// does not forget them.
	window := max(time.Duration(s.cfg.DedupWindow), time.Duration(s.cfg.CorrelationWin), time.Duration(s.cfg.CausalWindow))
	recent, err := s.store.RecentEvents(ctx, s.now().Add(-window), 100000)
	if err != nil {
		return nil, err
	}
	p.dedup.Warm(recent)
	p.corr.Warm(recent)

	norm, err := normalize.New(normalize.Options{
		Normalizers: s.normalizers(),
		MaxAge:      time.Duration(s.cfg.Retention),
		Logger:      s.log,
		Registerer:  s.reg,
	})
	if err != nil {
		return nil, err
	}
	stages := pipeline.MultiStage{enricher, limiter, p.dedup}
	if s.cfg.Templates {
		learning := time.Duration(s.cfg.TemplatesLearning)
		if learning == 0 {
			learning = -1 // none
		}
		p.templates, err = templates.New(ctx, templates.Options{
			Store:      s.store,
			Sink:       s.derived,
			Learning:   learning,
			Logger:     s.log.With("component", "templates"),
			Registerer: s.reg,
		})
		if err != nil {
			return nil, err
		}
		stages = append(stages, p.templates)
	}
	if s.cfg.Sequences {
		p.patterns, err = patterns.New(ctx, patterns.Options{
			Store:      s.store,
			Window:     time.Duration(s.cfg.SequenceWindow),
			Now:        s.now,
			Logger:     s.log.With("component", "patterns"),
			Registerer: s.reg,
		})
		if err != nil {
			return nil, err
		}
		stages = append(stages, p.patterns)
	}
	stages = append(stages, p.corr, scorer)
	for _, l := range lanes {
		cons, err := s.bus.Consume(ctx, l.lane, bus.ConsumeOptions{MaxBatch: l.maxBatch, MaxBytes: l.maxBytes, Linger: l.linger})
		if err != nil {
			return nil, err
		}
		depth := 1
		if l.pipelined {
			depth = s.cfg.PipelineDepth
		}
		r, err := pipeline.NewRunner(pipeline.RunnerOptions{
			Consumer:   cons,
			Lane:       string(l.lane),
			Urgent:     l.lane == bus.LaneHi,
			Normalize:  norm,
			Stages:     stages,
			Workers:    s.cfg.Workers,
			Store:      s.store,
			Now:        s.now,
			Logger:     s.log.With("component", "pipeline", "lane", string(l.lane)),
			Registerer: s.reg,
			// The drain follows --shutdown-timeout, leaving a reserve
			// for closing the intake log and storage after it.
			DrainTimeout: drainTimeout(time.Duration(s.cfg.ShutdownGrace)),
			Downstream:   s.downstream(),
			Pipeline:     depth,
		})
		if err != nil {
			return nil, err
		}
		p.runners = append(p.runners, r)
	}
	return p, nil
}

// drainTimeout is the part of the shutdown timeout the pipeline may spend
// finishing its batches: all of it but a reserve of a quarter (at most 5s)
// for what stops after it.
func drainTimeout(grace time.Duration) time.Duration {
	return grace - min(grace/4, 5*time.Second)
}

// start runs every runner until stop or until ctx ends (the processing
// lease is lost).
func (p *processing) start(ctx context.Context, now time.Time) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.mu.Lock()
	p.started = now
	p.mu.Unlock()
	var runners sync.WaitGroup
	for _, r := range p.runners {
		runners.Add(1)
		go func() {
			defer runners.Done()
			err := r.Run(ctx)
			if err != nil && errors.Is(err, context.Canceled) {
				err = nil
			}
			if err == nil && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
				err = context.Cause(ctx) // why processing stopped, for readiness
			}
			p.mu.Lock()
			p.exited[r] = err
			if err != nil && !errors.Is(err, context.Cause(ctx)) {
				p.errs = append(p.errs, err)
			}
			p.mu.Unlock()
		}()
	}
	go func() { runners.Wait(); close(p.done) }()
}

// lanes reports the state of each lane's runner, and when processing
// started.
func (p *processing) lanes() ([]laneState, time.Time) {
	out := make([]laneState, 0, len(p.runners))
	for _, r := range p.runners {
		out = append(out, laneState{RunnerStatus: r.Status()})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.runners {
		if err, ok := p.exited[r]; ok {
			out[i].Exited, out[i].ExitErr = true, err
		}
	}
	return out, p.started
}

// stop asks the runners to finish their current batch and waits for them.
func (p *processing) stop(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("server: pipeline did not drain: %w", ctx.Err())
	}
	var flushErr []error
	if p.templates != nil {
		// Counts and last seen times of what the drained batches mined.
		flushErr = append(flushErr, p.templates.Flush(ctx))
	}
	if p.patterns != nil {
		flushErr = append(flushErr, p.patterns.Flush(ctx))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(append(p.errs, flushErr...)...)
}

// patternsChanged reloads the sequence learner's patterns after an API
// change.
func (p *processing) patternsChanged(ctx context.Context) {
	if p.patterns == nil {
		return
	}
	if err := p.patterns.Reload(ctx); err != nil {
		p.log.Warn("reload patterns", "err", err)
	}
}

// prepareTest runs on the event of a rule test the stages after
// normalization that read nothing but the event and the inventory: the
// enricher (its asset, the asset's tags) and the severity scorer (as for
// an event that is not correlated), so that a rule's conditions on
// event_data.asset, tags, priority or the scored severity see what they
// would see in the pipeline. Deduplication and correlation depend on the
// events before it and are left out.
func (p *processing) prepareTest(_ context.Context, e *event.Event) error {
	p.enricher.Enrich(e)
	severity.Score(e, "")
	return nil
}
