// Package templates is the pipeline stage that mines the log text of each
// event into a log template (internal/logtmpl), sets event_data.template,
// keeps the templates in the store across restarts, and raises a
// new_log_pattern event (package derived) when a host logs a template it
// never logged before, once the host is past its learning period.
//
// Template ids are allocated by the miner and are stable: a template is
// stored before the batch whose events carry its id is stored, and the
// miner is restored from the store at start with the same ids. Counts,
// last seen times and evolved texts are written every FlushInterval and
// at Flush, so that after a crash (kill -9) they may be that far behind.
package templates

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/derived"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/logtmpl"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// Store is what the stage keeps in the store (store.TemplateStore).
type Store interface {
	PutTemplates(ctx context.Context, ts []store.LogTemplate) error
	AllTemplates(ctx context.Context) ([]store.LogTemplate, error)
	AddTemplateHosts(ctx context.Context, pairs []store.TemplateHost) ([]store.TemplateHost, error)
	HostsFirstSeen(ctx context.Context, hosts []string) (map[string]time.Time, error)
}

var _ Store = store.Store(nil)

// Defaults of Options.
const (
	DefaultLearning      = time.Hour
	DefaultFlushInterval = 10 * time.Second
	DefaultMaxHosts      = 100_000
	DefaultMaxPairs      = 1_000_000
	DefaultMaxRecent     = 100_000
	// maxExample bounds the example of a derived event, in bytes.
	maxExample = 500
)

// Options configure a Stage. Store is required.
type Options struct {
	Store Store
	// Sink takes the new_log_pattern events (default derived.Discard).
	Sink derived.Sink
	// Miner configures the miner (zero: logtmpl's defaults).
	Miner logtmpl.Options
	// Learning is how long after a host's first template its new
	// templates are learned silently (default 1h; negative: none). A new
	// server, and a new host on an old one, log nothing but templates new
	// to them at first.
	Learning time.Duration
	// FlushInterval is how often counts, last seen times and evolved
	// texts are written (default 10s).
	FlushInterval time.Duration
	// MaxHosts and MaxPairs bound the hosts' first seen times and the
	// (host, template) pairs known to be recorded that the stage keeps in
	// memory (defaults 100,000 and 1,000,000); past a bound the cache
	// starts again and the store answers for what it forgot.
	MaxHosts int
	MaxPairs int
	// MaxRecent bounds the kept events whose template the stage remembers,
	// to count the repeats that deduplication folds into them in later
	// batches (default 100,000).
	MaxRecent  int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Stage mines templates; see the package comment. It is safe for
// concurrent use, as pipeline.Stage requires.
type Stage struct {
	opts  Options
	store Store
	sink  derived.Sink
	miner *logtmpl.Miner
	log   *slog.Logger
	m     metrics

	mu        sync.Mutex
	stats     map[int64]*stat      // by template id
	hosts     map[string]time.Time // host -> first template seen
	pairs     map[pairKey]struct{} // (host, template) pairs recorded in the store
	recent    map[int64]int64      // kept event id -> template id
	ring      []int64              // the keys of recent, oldest replaced first
	ringAt    int
	top       int64 // every template id up to top is stored
	lastFlush time.Time
	flushing  sync.Mutex // one flush at a time
}

type stat struct {
	text    string
	example string
	count   int64
	folded  int64 // the template it was folded into
	first   time.Time
	last    time.Time
	stored  bool // the template's row exists
	dirty   bool // count, last or text changed since the last write
}

// state is the miner's form of a template, as store.LogTemplate.State
// keeps it.
type state struct {
	Tokens []string `json:"tokens"`
	Glued  []bool   `json:"glued,omitempty"`
}

type pairKey struct {
	host string
	id   int64
}

type metrics struct {
	templates prometheus.Gauge
	created   prometheus.Counter
	mined     prometheus.Counter
	newOnHost *prometheus.CounterVec
	seconds   prometheus.Histogram
}

// New restores the templates from the store and returns the stage.
func New(ctx context.Context, opts Options) (*Stage, error) {
	if opts.Store == nil {
		return nil, errors.New("templates: no store")
	}
	if opts.Sink == nil {
		opts.Sink = derived.Discard
	}
	if opts.Learning == 0 {
		opts.Learning = DefaultLearning
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MaxHosts <= 0 {
		opts.MaxHosts = DefaultMaxHosts
	}
	if opts.MaxPairs <= 0 {
		opts.MaxPairs = DefaultMaxPairs
	}
	if opts.MaxRecent <= 0 {
		opts.MaxRecent = DefaultMaxRecent
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stage{
		opts: opts, store: opts.Store, sink: opts.Sink, log: opts.Logger,
		miner:  logtmpl.New(opts.Miner),
		stats:  map[int64]*stat{},
		hosts:  map[string]time.Time{},
		pairs:  map[pairKey]struct{}{},
		recent: map[int64]int64{},
		ring:   make([]int64, opts.MaxRecent),
	}
	if err := s.registerMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	saved, err := opts.Store.AllTemplates(ctx)
	if err != nil {
		return nil, fmt.Errorf("templates: restore: %w", err)
	}
	restore := make([]logtmpl.Saved, len(saved))
	for i, t := range saved {
		var st state
		if err := json.Unmarshal(t.State, &st); err != nil || st.Tokens == nil {
			st = state{Tokens: strings.Fields(t.Text)} // a row without the miner's form: its words
		}
		restore[i] = logtmpl.Saved{ID: t.ID, Tokens: st.Tokens, Glued: st.Glued, Count: t.Count, FoldedInto: t.FoldedInto, Example: t.Example}
		s.stats[t.ID] = &stat{text: t.Text, example: t.Example, count: t.Count, folded: t.FoldedInto, first: t.FirstSeen, last: t.LastSeen, stored: true}
		s.top = max(s.top, t.ID)
	}
	if err := s.miner.Restore(restore); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	s.m.templates.Set(float64(len(saved)))
	return s, nil
}

func (s *Stage) registerMetrics(reg prometheus.Registerer) error {
	s.m = metrics{
		templates: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_templates",
			Help: "Log templates known to the template stage.",
		}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_templates_created_total",
			Help: "Log templates created by the template stage (new templates).",
		}),
		mined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_templates_mined_total",
			Help: "Log messages mined into templates.",
		}),
		newOnHost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_templates_new_on_host_total",
			Help: "Templates seen on a host for the first time, by outcome: emitted (a new_log_pattern event was taken), dropped (the emitter refused it), learning (the host was in its learning period).",
		}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reflex_templates_mining_seconds",
			Help:    "Time the template stage spends on a (sub-)batch, store writes included.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}),
	}
	err := errors.Join(
		promutil.Register(reg, &s.m.templates),
		promutil.Register(reg, &s.m.created),
		promutil.Register(reg, &s.m.mined),
		promutil.Register(reg, &s.m.newOnHost),
		promutil.Register(reg, &s.m.seconds),
	)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	return nil
}

// Name names the stage in errors and metrics.
func (s *Stage) Name() string { return "templates" }

var _ pipeline.Stage = (*Stage)(nil)

// hit is a mined event and its template id.
type hit struct {
	e  *event.Event
	id int64
}

// applied is what Process added to a template's count, for its undo.
type applied struct {
	id int64
	n  int64
}

// Process mines the log text of each event of b that has one (events of
// source reflex are not mined), sets its Template, counts the repeats
// folded into events of b and into events of earlier batches, stores the
// templates that are not stored yet and the (host, template) pairs not
// recorded yet, and emits a new_log_pattern event for each new pair of a
// host past its learning period. The counts it adds are undone when b is
// not stored.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) error {
	start := time.Now()
	defer func() { s.m.seconds.Observe(time.Since(start).Seconds()) }()
	now := b.Now
	hits := make([]hit, 0, len(b.Events))
	var examples map[int64]string // the first message of each template created here
	for _, e := range b.Events {
		if e.SourceType == event.SourceReflex || e.Message == "" {
			continue
		}
		t, isNew := s.miner.Add(e.Message)
		e.Template = &event.Template{ID: t.ID, Text: t.Text}
		hits = append(hits, hit{e, t.ID})
		if isNew {
			if examples == nil {
				examples = map[int64]string{}
			}
			examples[t.ID] = e.Message
		}
	}
	created := len(examples)
	if len(hits) == 0 {
		return nil
	}
	s.m.mined.Add(float64(len(hits)))
	s.m.created.Add(float64(created))

	var (
		undo []applied
		kept = make(map[int64]bool, len(hits))
	)
	b.OnAbort(func() { s.undo(undo) })
	s.mu.Lock()
	for _, h := range hits {
		e := h.e
		kept[e.ID] = true
		n := int64(max(1, e.OccurrenceCount))
		st := s.stats[h.id]
		if st == nil {
			st = &stat{text: e.Template.Text, example: e.Message, first: now}
			s.stats[h.id] = st
		}
		st.count += n
		st.text = e.Template.Text
		st.last = now
		st.dirty = true
		undo = append(undo, applied{h.id, n})
		s.remember(e.ID, h.id)
	}
	// Repeats that deduplication folded into events of earlier batches.
	for _, o := range b.Outcomes {
		if o.ProcessedEventID == 0 || o.Error != "" || o.Failed || kept[o.ProcessedEventID] {
			continue
		}
		if id, ok := s.recent[o.ProcessedEventID]; ok {
			if st := s.stats[id]; st != nil {
				st.count++
				st.last = now
				st.dirty = true
				undo = append(undo, applied{id, 1})
			}
		}
	}
	top := s.top
	s.mu.Unlock()
	if s.miner.Len() > top {
		if err := s.storeNew(ctx, now, top, examples); err != nil {
			return err
		}
	}
	if err := s.newOnHosts(ctx, now, hits); err != nil {
		return err
	}
	if s.flushDue(now) {
		if err := s.Flush(ctx); err != nil {
			// Counts wait for the next flush; the batch is not at fault.
			s.log.Warn("templates: flush", "err", err)
		}
	}
	return nil
}

// remember notes that kept event id has template tid, for the repeats of
// later batches; s.mu is held.
func (s *Stage) remember(id, tid int64) {
	if _, ok := s.recent[id]; ok {
		s.recent[id] = tid
		return
	}
	if old := s.ring[s.ringAt]; old != 0 {
		delete(s.recent, old)
	}
	s.ring[s.ringAt] = id
	s.ringAt = (s.ringAt + 1) % len(s.ring)
	s.recent[id] = tid
}

// undo takes back the counts of a batch that was not stored.
func (s *Stage) undo(undo []applied) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range undo {
		if st := s.stats[a.id]; st != nil {
			st.count = max(0, st.count-a.n)
			st.dirty = true
		}
	}
}

// row is the template's store row, sv its state in the miner; s.mu is
// held.
func (st *stat) row(sv logtmpl.Saved) store.LogTemplate {
	doc, _ := json.Marshal(state{Tokens: sv.Tokens, Glued: sv.Glued}) // strings and bools always encode
	return store.LogTemplate{ID: sv.ID, Text: sv.Text, Example: st.example, FoldedInto: sv.FoldedInto, State: doc,
		Count: st.count, FirstSeen: st.first, LastSeen: st.last}
}

// storeNew stores the templates the miner created after id top (by this
// batch or a concurrent one), and the templates that a fold among them
// changed, before the batch whose events carry their ids is stored. A
// fold moves the counts of the templates folded into the one they joined.
func (s *Stage) storeNew(ctx context.Context, now time.Time, top int64, examples map[int64]string) error {
	saved, newTop := s.miner.Changed(top)
	s.mu.Lock()
	for _, sv := range saved {
		st := s.stats[sv.ID]
		if st == nil {
			st = &stat{first: now, last: now}
			s.stats[sv.ID] = st
		}
		if st.example == "" {
			st.example = examples[sv.ID]
		}
		st.text = sv.Text
	}
	for _, sv := range saved { // folds, once every stat exists
		st := s.stats[sv.ID]
		if sv.FoldedInto != 0 && st.folded == 0 {
			if live := s.stats[sv.FoldedInto]; live != nil {
				live.count += st.count
				live.dirty = true
			}
			st.count = 0
		}
		st.folded = sv.FoldedInto
	}
	rows := make([]store.LogTemplate, len(saved))
	for i, sv := range saved {
		rows[i] = s.stats[sv.ID].row(sv)
	}
	s.m.templates.Set(float64(len(s.stats)))
	s.mu.Unlock()
	if err := s.store.PutTemplates(ctx, rows); err != nil {
		return fmt.Errorf("templates: store new templates: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.stats[r.ID].stored = true
	}
	s.top = max(s.top, newTop)
	return nil
}

// newOnHosts records the (host, template) pairs of hits that the store
// does not hold yet and emits a new_log_pattern event for each pair new in
// the store whose host is past its learning period.
func (s *Stage) newOnHosts(ctx context.Context, now time.Time, hits []hit) error {
	var (
		cand    []store.TemplateHost
		example = map[pairKey]*event.Event{}
		unknown []string
		asked   = map[string]bool{}
	)
	s.mu.Lock()
	for _, h := range hits {
		host := h.e.SourceHost
		if host == "" {
			continue
		}
		k := pairKey{host, h.id}
		if _, ok := s.pairs[k]; ok {
			continue
		}
		if _, ok := example[k]; ok {
			continue
		}
		example[k] = h.e
		cand = append(cand, store.TemplateHost{TemplateID: h.id, Host: host, FirstSeen: now})
		if _, ok := s.hosts[host]; !ok && !asked[host] {
			asked[host] = true
			unknown = append(unknown, host)
		}
	}
	s.mu.Unlock()
	if len(cand) == 0 {
		return nil
	}
	// When each host began, before this batch's pairs are recorded: a
	// host without any is new, and begins now.
	var first map[string]time.Time
	if len(unknown) > 0 {
		var err error
		if first, err = s.store.HostsFirstSeen(ctx, unknown); err != nil {
			return fmt.Errorf("templates: hosts: %w", err)
		}
	}
	added, err := s.store.AddTemplateHosts(ctx, cand)
	if err != nil {
		return fmt.Errorf("templates: record hosts: %w", err)
	}
	s.mu.Lock()
	began := make(map[string]time.Time, len(asked))
	for _, c := range cand {
		if at, ok := s.hosts[c.Host]; ok {
			began[c.Host] = at
		} else if at, ok := first[c.Host]; ok {
			began[c.Host] = at
		} else {
			began[c.Host] = now
		}
	}
	if len(s.hosts)+len(unknown) > s.opts.MaxHosts {
		clear(s.hosts)
	}
	for h, at := range began {
		s.hosts[h] = at
	}
	if len(s.pairs)+len(cand) > s.opts.MaxPairs {
		clear(s.pairs)
	}
	for _, c := range cand {
		s.pairs[pairKey{c.Host, c.TemplateID}] = struct{}{}
	}
	var out []derived.Event
	learning := 0
	for _, a := range added {
		if s.opts.Learning > 0 && now.Sub(began[a.Host]) < s.opts.Learning {
			learning++
			continue
		}
		e := example[pairKey{a.Host, a.TemplateID}]
		if e == nil {
			continue
		}
		text := ""
		if st := s.stats[a.TemplateID]; st != nil {
			text = st.text
		}
		out = append(out, derived.Event{
			Type:     derived.TypeNewLogPattern,
			Severity: event.Info,
			Host:     a.Host,
			Service:  e.SourceService,
			Message:  "new log pattern on " + a.Host + ": " + text,
			Metadata: map[string]any{
				"template_id": a.TemplateID,
				"template":    text,
				"example":     store.CleanText(e.Message, maxExample),
			},
			At: now,
		})
	}
	s.mu.Unlock()
	s.m.newOnHost.WithLabelValues("learning").Add(float64(learning))
	for _, ev := range out {
		if s.sink.Emit(ev) {
			s.m.newOnHost.WithLabelValues("emitted").Inc()
		} else {
			s.m.newOnHost.WithLabelValues("dropped").Inc()
		}
	}
	return nil
}

// flushDue reports whether a flush is due at now, and if so marks it
// begun.
func (s *Stage) flushDue(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastFlush.IsZero() {
		s.lastFlush = now
		return false
	}
	if now.Sub(s.lastFlush) < s.opts.FlushInterval {
		return false
	}
	s.lastFlush = now
	return true
}

// Flush writes the counts, last seen times and texts that changed since
// the last write. The server calls it after the pipeline has drained;
// Process calls it every FlushInterval.
func (s *Stage) Flush(ctx context.Context) error {
	s.flushing.Lock()
	defer s.flushing.Unlock()
	s.mu.Lock()
	var ids []int64
	for id, st := range s.stats {
		if st.dirty && st.stored {
			ids = append(ids, id)
			st.dirty = false
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	saved := s.miner.Snapshot(ids)
	rows := make([]store.LogTemplate, len(saved))
	s.mu.Lock()
	for i, sv := range saved {
		st := s.stats[sv.ID]
		st.text = sv.Text
		rows[i] = st.row(sv)
	}
	s.mu.Unlock()
	if err := s.store.PutTemplates(ctx, rows); err != nil {
		s.mu.Lock()
		for _, r := range rows {
			s.stats[r.ID].dirty = true
		}
		s.mu.Unlock()
		return fmt.Errorf("templates: flush: %w", err)
	}
	return nil
}

// Templates returns the templates mined so far, by id, with the counts
// the stage keeps (repeats included).
func (s *Stage) Templates() []store.LogTemplate {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.LogTemplate, 0, len(s.stats))
	for id, st := range s.stats {
		out = append(out, store.LogTemplate{ID: id, Text: st.text, Example: st.example, FoldedInto: st.folded, Count: st.count, FirstSeen: st.first, LastSeen: st.last})
	}
	slices.SortFunc(out, func(a, b store.LogTemplate) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
