// Package patterns learns sequence and frequency patterns from the event
// stream and links events that follow a known sequence. It is a pipeline
// stage placed after the template stage: each event is an item (its log
// template, or its event type when it has none); the Learner counts how
// often an item B follows an item A on the same host within a window, and
// each item's events per hour. A pair seen often enough, with B following
// A in most cases, becomes a sequence pattern in events.event_patterns; an
// item seen for enough hours, a frequency pattern with its hourly mean and
// standard deviation. When an event matches the second step of an active
// sequence pattern whose first step occurred on its host within the
// pattern's window, the two are linked by a pattern_based correlation row.
//
// The Learner keeps its counts in memory, bounded, and rebuilds them at
// start from the events stored in the last day (the stored patterns are
// the persisted part). Precedes answers, for the incident grouping, how
// often one template precedes another.
package patterns

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// Store is what the Learner reads and writes.
type Store interface {
	CreatePattern(ctx context.Context, p store.EventPattern) (store.EventPattern, error)
	Patterns(ctx context.Context, q store.PatternQuery) ([]store.EventPattern, error)
	RecentEvents(ctx context.Context, since time.Time, limit int) ([]event.Event, error)
}

var _ Store = store.Store(nil)

// Defaults of Options.
const (
	DefaultWindow        = 5 * time.Minute
	DefaultMinSupport    = 20
	DefaultMinConfidence = 0.8
	DefaultThreshold     = 0.8
	DefaultMinHours      = 24
	DefaultFlushInterval = 30 * time.Second
	DefaultMaxItems      = 100_000
	DefaultMaxPairs      = 200_000
	DefaultMaxHosts      = 10_000
	DefaultPerHost       = 32
	DefaultMaxPatterns   = 10_000
	DefaultWarmSince     = 24 * time.Hour
	DefaultWarmLimit     = 200_000
	// maxRelated bounds the related ids of a sequence's correlation row.
	maxRelated = 100
)

// Options configure a Learner. Store is required; zero values take the
// defaults.
type Options struct {
	Store Store
	// Window is how soon after A an event B counts as following it, and
	// the window of learned sequence patterns (default 5m).
	Window time.Duration
	// MinSupport is how many times B must have followed A, and A have
	// occurred, before the pair can be a pattern (default 20);
	// MinConfidence the share of A's occurrences that B followed (default
	// 0.8).
	MinSupport    int
	MinConfidence float64
	// Threshold is the confidence_threshold of learned patterns: a
	// pattern links events while its confidence is at least its threshold
	// (default 0.8).
	Threshold float64
	// MinHours is how many hours of an item's events make a frequency
	// pattern (default 24).
	MinHours int
	// FlushInterval is how often learned pairs and frequencies are
	// turned into stored patterns and the stored patterns read again
	// (default 30s).
	FlushInterval time.Duration
	// Bounds of the memory: items counted, pairs counted, hosts with a
	// window of recent events, events per host window, stored patterns
	// the learner creates.
	MaxItems, MaxPairs, MaxHosts, PerHost, MaxPatterns int
	// WarmSince and WarmLimit bound the stored events replayed at start
	// (default the last 24h, at most 200,000 events); WarmLimit < 0: none.
	WarmSince time.Duration
	WarmLimit int
	// Now is the clock of the start's replay (default time.Now).
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Item is one step of a sequence: a log template, or an event type for an
// event without one. It is kept in pattern definitions as
// {"template_id": 12} or {"event_type": "service_down"}.
type Item struct {
	TemplateID int64  `json:"template_id,omitempty"`
	EventType  string `json:"event_type,omitempty"`
}

// ItemOf is the item of e.
func ItemOf(e *event.Event) Item {
	if e.Template != nil && e.Template.ID > 0 {
		return Item{TemplateID: e.Template.ID}
	}
	return Item{EventType: e.EventType}
}

func (it Item) valid() bool { return it.TemplateID > 0 || (it.TemplateID == 0 && it.EventType != "") }

func (it Item) String() string {
	if it.TemplateID > 0 {
		return "template " + strconv.FormatInt(it.TemplateID, 10)
	}
	return "event type " + strconv.Quote(it.EventType)
}

// SequenceDefinition is the pattern_definition of a sequence pattern.
type SequenceDefinition struct {
	Before Item `json:"before"`
	After  Item `json:"after"`
	// WithinSeconds is the window: B within it after A (default the
	// learner's window).
	WithinSeconds int `json:"within_seconds,omitempty"`
	// Learned marks a pattern the learner created; Support and
	// Confidence are its figures when it was created or last refreshed.
	Learned    bool    `json:"learned,omitempty"`
	Support    int64   `json:"support,omitempty"`
	Confidence float64 `json:"confidence,omitempty"`
	// Names of the steps (their template texts), for people.
	BeforeText string `json:"before_text,omitempty"`
	AfterText  string `json:"after_text,omitempty"`
}

// FrequencyDefinition is the pattern_definition of a frequency pattern:
// the item's events per hour over Hours hours.
type FrequencyDefinition struct {
	Item    Item    `json:"item"`
	Text    string  `json:"text,omitempty"`
	Hours   int64   `json:"hours"`
	Mean    float64 `json:"per_hour_mean"`
	StdDev  float64 `json:"per_hour_stddev"`
	Learned bool    `json:"learned,omitempty"`
}

// ParseSequence reads and checks a sequence pattern's definition.
func ParseSequence(def []byte) (SequenceDefinition, error) {
	var d SequenceDefinition
	if err := json.Unmarshal(def, &d); err != nil {
		return d, fmt.Errorf("patterns: sequence definition: %w", err)
	}
	switch {
	case !d.Before.valid():
		return d, errors.New("patterns: sequence definition: before needs a template_id (positive) or an event_type")
	case !d.After.valid():
		return d, errors.New("patterns: sequence definition: after needs a template_id (positive) or an event_type")
	case d.Before == d.After:
		return d, errors.New("patterns: sequence definition: before and after are the same item")
	case d.WithinSeconds < 0 || d.WithinSeconds > 86400:
		return d, errors.New("patterns: sequence definition: within_seconds must be from 1 to 86400")
	}
	return d, nil
}

type pair struct{ before, after Item }

type itemStat struct {
	count  int64
	text   string
	hour   int64 // the unix hour being counted
	inHour int64
	hours  int64 // closed hours
	mean   float64
	m2     float64
}

// occ is an event in a host's window.
type occ struct {
	it       Item
	etype    string // its event type, which a step may name instead of its template
	at       time.Time
	id       int64
	credited []Item            // items counted as following it
	links    map[int64][]int64 // pattern id -> related event ids of its row
}

// is reports whether the event is step it of a sequence: its template,
// or its event type when the step names one.
func (o *occ) is(it Item) bool {
	if it.TemplateID > 0 {
		return o.it.TemplateID == it.TemplateID
	}
	return o.etype == it.EventType
}

type hostWin struct{ occs []*occ }

// sequence is an active sequence pattern.
type sequence struct {
	id        int64
	def       SequenceDefinition
	within    time.Duration
	threshold float64
}

// Learner learns and matches patterns; see the package comment. It is a
// pipeline.Stage, safe for concurrent use.
type Learner struct {
	opts Options
	st   Store
	log  *slog.Logger

	mu      sync.Mutex
	items   map[Item]*itemStat
	pairs   map[pair]int64
	hosts   map[string]*hostWin
	byAfter map[Item][]*sequence // active sequences by their second step
	known   map[pair]int64       // stored sequence patterns (any state) by pair
	freq    map[Item]int64       // stored frequency patterns by item
	created int                  // patterns this learner created
	maxWin  time.Duration        // the largest window of the active sequences and Window

	flushMu   sync.Mutex
	lastFlush time.Time

	m struct {
		learned *prometheus.CounterVec
		links   prometheus.Counter
		pairs   prometheus.Gauge
	}
}

var _ pipeline.Stage = (*Learner)(nil)

// New reads the stored patterns, replays the recent stored events and
// returns the Learner.
func New(ctx context.Context, opts Options) (*Learner, error) {
	if opts.Store == nil {
		return nil, errors.New("patterns: no store")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MinSupport, DefaultMinSupport)
	def(&opts.MinHours, DefaultMinHours)
	def(&opts.MaxItems, DefaultMaxItems)
	def(&opts.MaxPairs, DefaultMaxPairs)
	def(&opts.MaxHosts, DefaultMaxHosts)
	def(&opts.PerHost, DefaultPerHost)
	def(&opts.MaxPatterns, DefaultMaxPatterns)
	if opts.WarmLimit == 0 {
		opts.WarmLimit = DefaultWarmLimit
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MinConfidence <= 0 || opts.MinConfidence > 1 {
		opts.MinConfidence = DefaultMinConfidence
	}
	if opts.Threshold <= 0 || opts.Threshold > 1 {
		opts.Threshold = DefaultThreshold
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.WarmSince <= 0 {
		opts.WarmSince = DefaultWarmSince
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Learner{
		opts: opts, st: opts.Store, log: opts.Logger,
		items: map[Item]*itemStat{}, pairs: map[pair]int64{}, hosts: map[string]*hostWin{},
		byAfter: map[Item][]*sequence{}, known: map[pair]int64{}, freq: map[Item]int64{},
		maxWin: opts.Window,
	}
	if err := l.registerMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	if err := l.Reload(ctx); err != nil {
		return nil, err
	}
	if opts.WarmLimit > 0 {
		evs, err := opts.Store.RecentEvents(ctx, opts.Now().Add(-opts.WarmSince), opts.WarmLimit)
		if err != nil {
			return nil, fmt.Errorf("patterns: warm: %w", err)
		}
		l.Warm(evs)
	}
	return l, nil
}

func (l *Learner) registerMetrics(reg prometheus.Registerer) error {
	l.m.learned = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_patterns_learned_total",
		Help: "Patterns the learner stored, by pattern type (sequence, frequency).",
	}, []string{"pattern_type"})
	l.m.links = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reflex_patterns_sequence_links_total",
		Help: "Events linked to an earlier event by a sequence pattern (pattern_based correlations grown).",
	})
	l.m.pairs = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "reflex_patterns_pairs",
		Help: "Item pairs (A followed by B on a host) the learner counts.",
	})
	if err := errors.Join(promutil.Register(reg, &l.m.learned), promutil.Register(reg, &l.m.links), promutil.Register(reg, &l.m.pairs)); err != nil {
		return fmt.Errorf("patterns: %w", err)
	}
	return nil
}

// Name names the stage in errors and metrics.
func (l *Learner) Name() string { return "patterns" }

// Precedes reports how often the template before was followed by the
// template after on the same host within the window, among the
// occurrences of before the learner has seen: the confidence (0..1) and
// the support (how many occurrences of before were followed by after).
// It is (0, 0) for templates it has not seen together. Safe for
// concurrent use.
func (l *Learner) Precedes(before, after int64) (confidence float64, support int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, b := Item{TemplateID: before}, Item{TemplateID: after}
	n := l.pairs[pair{a, b}]
	st := l.items[a]
	if n == 0 || st == nil || st.count == 0 {
		return 0, 0
	}
	return min(1, float64(n)/float64(st.count)), int(n)
}

// Warm replays stored events (oldest first by receipt) into the counts,
// without linking them.
func (l *Learner) Warm(evs []event.Event) {
	slices.SortStableFunc(evs, func(a, b event.Event) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.ID, b.ID))
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range evs {
		e := &evs[i]
		if e.SourceType == event.SourceReflex {
			continue
		}
		l.see(e, e.ReceivedAt, nil, nil)
	}
	l.m.pairs.Set(float64(len(l.pairs)))
}

// Process counts the events of b (derived events excepted) and links each
// that completes an active sequence pattern on its host to the event that
// began it, appending the pattern_based correlation rows to
// b.Correlations. What it counted and linked is undone when b is not
// stored.
func (l *Learner) Process(ctx context.Context, b *pipeline.Batch) error {
	var undo []func()
	b.OnAbort(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	})
	l.mu.Lock()
	for _, e := range b.Events {
		if e.SourceType == event.SourceReflex {
			continue
		}
		at := e.ReceivedAt
		if at.IsZero() {
			at = b.Now
		}
		l.see(e, at, &undo, b)
	}
	l.m.pairs.Set(float64(len(l.pairs)))
	l.mu.Unlock()
	if l.flushDue(b.Now) {
		if err := l.Flush(ctx); err != nil {
			l.log.Warn("patterns: flush", "err", err)
		}
	}
	return nil
}

// see counts e, seen at at; with b it links e and records undos. l.mu is
// held.
func (l *Learner) see(e *event.Event, at time.Time, undo *[]func(), b *pipeline.Batch) {
	it := ItemOf(e)
	if !it.valid() {
		return
	}
	text := ""
	if e.Template != nil {
		text = e.Template.Text
	}
	st := l.count(it, text, at)
	if st != nil && undo != nil {
		*undo = append(*undo, func() { st.count = max(0, st.count-1); st.inHour = max(0, st.inHour-1) })
	}
	host := e.SourceHost
	if host == "" {
		return
	}
	w := l.hosts[host]
	if w == nil {
		if len(l.hosts) >= l.opts.MaxHosts {
			for h := range l.hosts { // drop one host's window
				delete(l.hosts, h)
				break
			}
		}
		w = &hostWin{}
		l.hosts[host] = w
	}
	// Forget what is older than every window.
	keep := w.occs[:0]
	for _, o := range w.occs {
		if at.Sub(o.at) <= l.maxWin {
			keep = append(keep, o)
		}
	}
	clear(w.occs[len(keep):])
	w.occs = keep
	for _, o := range w.occs {
		if o.it == it || o.id == e.ID || at.Sub(o.at) > l.opts.Window || slices.Contains(o.credited, it) || len(o.credited) >= l.opts.PerHost {
			continue
		}
		p := pair{o.it, it}
		if _, ok := l.pairs[p]; !ok && len(l.pairs) >= l.opts.MaxPairs {
			continue
		}
		l.pairs[p]++
		o.credited = append(o.credited, it)
		if undo != nil {
			o := o
			*undo = append(*undo, func() {
				if l.pairs[p]--; l.pairs[p] <= 0 {
					delete(l.pairs, p)
				}
				if i := slices.Index(o.credited, it); i >= 0 {
					o.credited = slices.Delete(o.credited, i, i+1)
				}
			})
		}
	}
	if b != nil {
		for _, s := range l.byAfter[it] {
			l.link(w, s, e, at, undo, b)
		}
		if byType := (Item{EventType: e.EventType}); byType != it && byType.valid() {
			for _, s := range l.byAfter[byType] {
				l.link(w, s, e, at, undo, b)
			}
		}
	}
	o := &occ{it: it, etype: e.EventType, at: at, id: e.ID}
	if len(w.occs) >= l.opts.PerHost {
		w.occs[0] = nil
		w.occs = w.occs[1:]
	}
	w.occs = append(w.occs, o)
	if undo != nil {
		*undo = append(*undo, func() {
			if i := slices.Index(w.occs, o); i >= 0 {
				w.occs = slices.Delete(w.occs, i, i+1)
			}
		})
	}
}

// count adds an event of it at at to its counts; nil when the item bound
// is reached. l.mu is held.
func (l *Learner) count(it Item, text string, at time.Time) *itemStat {
	st := l.items[it]
	if st == nil {
		if len(l.items) >= l.opts.MaxItems {
			return nil
		}
		st = &itemStat{hour: at.Unix() / 3600}
		l.items[it] = st
	}
	if text != "" {
		st.text = text
	}
	if h := at.Unix() / 3600; h > st.hour {
		st.close(st.inHour)
		for k := st.hour + 1; k < h && k <= st.hour+24; k++ { // hours without events, at most a day of them
			st.close(0)
		}
		st.hour, st.inHour = h, 0
	}
	st.count++
	st.inHour++
	return st
}

// close adds an hour of n events to the item's hourly mean and variance
// (Welford).
func (st *itemStat) close(n int64) {
	st.hours++
	d := float64(n) - st.mean
	st.mean += d / float64(st.hours)
	st.m2 += d * (float64(n) - st.mean)
}

func (st *itemStat) stddev() float64 {
	if st.hours < 2 {
		return 0
	}
	return math.Sqrt(st.m2 / float64(st.hours-1))
}

// confidence is the sequence's confidence: what the learner counted, once
// it has MinSupport cases, else the definition's (1 for a hand-made
// pattern without one). l.mu is held.
func (l *Learner) confidence(s *sequence) float64 {
	n := l.pairs[pair{s.def.Before, s.def.After}]
	if st := l.items[s.def.Before]; n >= int64(l.opts.MinSupport) && st != nil && st.count > 0 {
		return min(1, float64(n)/float64(st.count))
	}
	if s.def.Confidence > 0 {
		return min(1, s.def.Confidence)
	}
	if s.def.Learned {
		return 0
	}
	return 1
}

// link links e to the latest event of s's first step in w within s's
// window, when s is confident enough. l.mu is held.
func (l *Learner) link(w *hostWin, s *sequence, e *event.Event, at time.Time, undo *[]func(), b *pipeline.Batch) {
	conf := l.confidence(s)
	if conf < s.threshold {
		return
	}
	var first *occ
	for i := len(w.occs) - 1; i >= 0; i-- {
		if o := w.occs[i]; o.is(s.def.Before) && o.id != e.ID && at.Sub(o.at) <= s.within {
			first = o
			break
		}
	}
	if first == nil {
		return
	}
	if first.links == nil {
		first.links = map[int64][]int64{}
	}
	rel := first.links[s.id]
	if slices.Contains(rel, e.ID) {
		return
	}
	if len(rel) < maxRelated {
		first.links[s.id] = append(rel, e.ID)
		if undo != nil {
			*undo = append(*undo, func() {
				if r := first.links[s.id]; len(r) > 0 && r[len(r)-1] == e.ID {
					first.links[s.id] = r[:len(r)-1]
				}
			})
		}
	}
	l.m.links.Inc()
	b.Correlations = append(b.Correlations, event.Correlation{
		CorrelationID:   SequenceCorrelationID(s.id, first.id),
		Type:            event.CorrelationPatternBased,
		PrimaryEventID:  first.id,
		RelatedEventIDs: slices.Clone(first.links[s.id]),
		Score:           math.Round(conf*100) / 100,
		Reason: fmt.Sprintf("sequence pattern %d: %s is followed by %s on %s within %s in %.0f%% of cases",
			s.id, name(s.def.Before, s.def.BeforeText), name(s.def.After, s.def.AfterText), e.SourceHost, s.within, conf*100),
		CreatedAt: first.at,
	})
}

func name(it Item, text string) string {
	if text != "" {
		return strconv.Quote(text)
	}
	return it.String()
}

// sequenceNS is the namespace of the correlation ids of sequence links.
var sequenceNS = uuid.MustParse("6f1c2a7e-9a43-4c55-8e0d-7265666c6578")

// SequenceCorrelationID is the correlation_id of the row linking the
// events that followed event first by sequence pattern pattern: the same
// for every delivery.
func SequenceCorrelationID(pattern, first int64) string {
	return uuid.NewSHA1(sequenceNS, []byte(strconv.FormatInt(pattern, 10)+":"+strconv.FormatInt(first, 10))).String()
}

// Reload reads the stored sequence and frequency patterns again: the
// active sequences are matched from then on. The server calls it after
// an API change; Flush calls it every FlushInterval.
func (l *Learner) Reload(ctx context.Context) error {
	seqs, err := l.st.Patterns(ctx, store.PatternQuery{Type: store.PatternSequence, Limit: 10000})
	if err != nil {
		return fmt.Errorf("patterns: reload: %w", err)
	}
	freqs, err := l.st.Patterns(ctx, store.PatternQuery{Type: store.PatternFrequency, Limit: 10000})
	if err != nil {
		return fmt.Errorf("patterns: reload: %w", err)
	}
	byAfter := map[Item][]*sequence{}
	known := map[pair]int64{}
	maxWin := l.opts.Window
	for _, p := range seqs {
		d, err := ParseSequence(p.Definition)
		if err != nil {
			l.log.Warn("patterns: a stored sequence pattern is not valid", "pattern_id", p.ID, "err", err)
			continue
		}
		known[pair{d.Before, d.After}] = p.ID
		if !p.Active {
			continue
		}
		within := l.opts.Window
		if d.WithinSeconds > 0 {
			within = time.Duration(d.WithinSeconds) * time.Second
		}
		maxWin = max(maxWin, within)
		byAfter[d.After] = append(byAfter[d.After], &sequence{id: p.ID, def: d, within: within, threshold: p.ConfidenceThreshold})
	}
	freq := map[Item]int64{}
	for _, p := range freqs {
		var d FrequencyDefinition
		if json.Unmarshal(p.Definition, &d) == nil && d.Item.valid() {
			freq[d.Item] = p.ID
		}
	}
	l.mu.Lock()
	l.byAfter, l.known, l.freq, l.maxWin = byAfter, known, freq, maxWin
	l.mu.Unlock()
	return nil
}

func (l *Learner) flushDue(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastFlush.IsZero() {
		l.lastFlush = now
		return false
	}
	if now.Sub(l.lastFlush) < l.opts.FlushInterval {
		return false
	}
	l.lastFlush = now
	return true
}

// Flush stores the pairs and items that became patterns since the last
// flush and reads the stored patterns again. Process calls it every
// FlushInterval.
func (l *Learner) Flush(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	type learned struct {
		p    store.EventPattern
		pair pair
		item Item
	}
	var news []learned
	l.mu.Lock()
	for p, n := range l.pairs {
		if l.created+len(news) >= l.opts.MaxPatterns {
			break
		}
		st := l.items[p.before]
		if n < int64(l.opts.MinSupport) || st == nil || st.count < int64(l.opts.MinSupport) {
			continue
		}
		conf := min(1, float64(n)/float64(st.count))
		if _, ok := l.known[p]; ok || conf < l.opts.MinConfidence {
			continue
		}
		d := SequenceDefinition{Before: p.before, After: p.after, WithinSeconds: int(l.opts.Window / time.Second),
			Learned: true, Support: n, Confidence: math.Round(conf*1000) / 1000, BeforeText: st.text}
		if a := l.items[p.after]; a != nil {
			d.AfterText = a.text
		}
		def, _ := json.Marshal(d) // plain fields always encode
		news = append(news, learned{pair: p, p: store.EventPattern{Name: name(d.Before, d.BeforeText) + " → " + name(d.After, d.AfterText),
			Type: store.PatternSequence, Definition: def, ConfidenceThreshold: l.opts.Threshold, Active: true}})
	}
	for it, st := range l.items {
		if l.created+len(news) >= l.opts.MaxPatterns {
			break
		}
		if _, ok := l.freq[it]; ok || st.hours < int64(l.opts.MinHours) {
			continue
		}
		d := FrequencyDefinition{Item: it, Text: st.text, Hours: st.hours, Mean: math.Round(st.mean*1000) / 1000,
			StdDev: math.Round(st.stddev()*1000) / 1000, Learned: true}
		def, _ := json.Marshal(d)
		news = append(news, learned{item: it, p: store.EventPattern{Name: name(it, st.text) + " per hour",
			Type: store.PatternFrequency, Definition: def, ConfidenceThreshold: l.opts.Threshold, Active: true}})
	}
	l.mu.Unlock()
	// Sorted, so that ids follow a stable order.
	slices.SortFunc(news, func(a, b learned) int { return cmp.Compare(a.p.Name, b.p.Name) })
	var errs []error
	for _, n := range news {
		stored, err := l.st.CreatePattern(ctx, n.p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l.mu.Lock()
		l.created++
		if n.p.Type == store.PatternSequence {
			l.known[n.pair] = stored.ID
		} else {
			l.freq[n.item] = stored.ID
		}
		l.mu.Unlock()
		l.m.learned.WithLabelValues(n.p.Type).Inc()
	}
	if err := l.Reload(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
