// Package correlate is the correlation stage of the pipeline. It groups
// the events of one host that arrive within a window (time-based
// correlation) and links an event to an open critical event on a host its
// asset depends on (causal correlation), and emits the groups as
// events.event_correlations rows.
package correlate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/keyed"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Defaults of Options.
const (
	DefaultWindow       = 5 * time.Minute
	DefaultCausalWindow = 15 * time.Minute
	DefaultMaxRelated   = 100
	DefaultMaxKeys      = 100_000
)

// Options configures a Correlator. The zero value is valid and gives the
// defaults.
type Options struct {
	// Window is how long after a host's first event (in batch time) later
	// events of the host join its time-based group; DefaultWindow if zero
	// or negative.
	Window time.Duration
	// CausalWindow is how long a critical event stays open for causal
	// correlation (in batch time); DefaultCausalWindow if zero or negative.
	CausalWindow time.Duration
	// MaxRelated caps related_event_ids of a row (the group keeps growing
	// and counting, the reason says the list is capped);
	// DefaultMaxRelated if zero or negative.
	MaxRelated int
	// MaxKeys caps each of the two state maps (hosts with a time-based
	// group, hosts with an open critical event); DefaultMaxKeys if zero or
	// negative. When full, the oldest entry is evicted.
	MaxKeys int
	// Registerer registers the stage's metrics; nil does not register.
	Registerer prometheus.Registerer
}

// Correlator is the correlation stage.
//
// Time-based: the first event of a host opens a group with a new
// correlation id; every event of that host within Window of the group's
// first event (in batch time) joins it. Every event with a host gets its
// group's correlation_id, a lone one too, so that later events can join.
// Once a group has two events, each batch that grows it emits the group's
// full current row (type time_based, primary = the first event).
//
// Causal: a critical event opens its host for CausalWindow (the latest
// critical event of a host replaces the earlier one). An event of any
// severity on a host H whose asset dependencies (the event's
// Asset.Dependencies, set by the enricher) include a host D with an open
// critical event gets parent_event_id = that critical event, and the
// causal group of the critical event (its own correlation id; primary =
// the critical event, related = the dependent events) is emitted. If
// several dependencies have one, the earliest opened is the parent: the
// first failure is the likeliest cause.
//
// What Process applied for a batch that is not stored is undone
// (pipeline.Batch.OnAbort): the batch's events leave the groups they
// joined, and the groups and critical windows they opened close.
//
// Correlator is safe for concurrent use. Time-based state is per host; the
// open-critical registry is shared by all partitions and lanes. Within one
// Process call events are handled in order, so a critical event earlier in
// the same sub-batch is always seen; one in another partition's sub-batch
// of the same batch is seen only if that partition got to it first.
type Correlator struct {
	window, causalWindow time.Duration
	maxRelated           int
	groups               *keyed.Table[*group]
	crits                *keyed.Table[*openCritical]
	m                    metrics
	sweep                keyed.SweepClock
}

var _ pipeline.Stage = (*Correlator)(nil)

// group is a host's time-based group.
type group struct {
	id        string
	host      string
	primary   int64
	start     time.Time // batch time of the first event
	createdAt time.Time // occurred_at of the first event
	related   []int64   // at most maxRelated
	count     int       // events in the group, the primary included
	sev       [5]int    // events by severity rank
	// emitted and emittedRank are len(related) and the highest severity
	// rank when the row was last emitted: a row is emitted again only when
	// one of them changes, so a busy host's row is rewritten at most
	// maxRelated times per window rather than once per event.
	emitted, emittedRank int
}

// openCritical is the latest critical event of a host.
type openCritical struct {
	id         int64
	host       string
	title      string
	at         time.Time // batch time at which it was seen
	occurredAt time.Time
	corrID     string
	children   []int64 // at most maxRelated
	count      int     // dependent events, all of them
	hosts      []string
	hostSet    map[string]bool
	emitted    int // len(children) when the row was last emitted
}

type metrics struct {
	rows      *prometheus.CounterVec
	events    *prometheus.CounterVec
	evictions [2]*prometheus.CounterVec // groups, crits
}

// New returns a Correlator configured by opts.
func New(opts Options) (*Correlator, error) {
	c := &Correlator{
		window:       opts.Window,
		causalWindow: opts.CausalWindow,
		maxRelated:   opts.MaxRelated,
	}
	if c.window <= 0 {
		c.window = DefaultWindow
	}
	if c.causalWindow <= 0 {
		c.causalWindow = DefaultCausalWindow
	}
	if c.maxRelated <= 0 {
		c.maxRelated = DefaultMaxRelated
	}
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	c.sweep.Every = min(c.window, c.causalWindow)
	if err := c.newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	c.groups = keyed.New[*group](maxKeys, func(reason string) { c.m.evictions[0].WithLabelValues(reason).Inc() })
	c.crits = keyed.New[*openCritical](maxKeys, func(reason string) { c.m.evictions[1].WithLabelValues(reason).Inc() })
	return c, nil
}

func (c *Correlator) newMetrics(reg prometheus.Registerer) error {
	c.m = metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_correlations_emitted_total",
			Help: "Correlation rows created or updated by the correlator, by type (time_based, causal).",
		}, []string{"type"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_correlated_events_total",
			Help: "Events that joined an existing time-based group (type time_based) or got a parent event (type causal).",
		}, []string{"type"}),
	}
	states := [2]string{"time_group", "open_critical"}
	sizes := [2]func() float64{
		func() float64 { return float64(c.groups.Len()) },
		func() float64 { return float64(c.crits.Len()) },
	}
	for i, st := range states {
		c.m.evictions[i] = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "reflex_correlate_state_evictions_total",
			Help:        "Keys evicted from the correlator's state, by state (time_group, open_critical) and reason (expired, capacity).",
			ConstLabels: prometheus.Labels{"state": st},
		}, []string{"reason"})
		if err := promutil.Register(reg, &c.m.evictions[i]); err != nil {
			return err
		}
		var keys prometheus.Collector = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "reflex_correlate_state_keys",
			Help:        "Hosts in the correlator's state, by state: with an open time-based group (time_group), with an open critical event (open_critical).",
			ConstLabels: prometheus.Labels{"state": st},
		}, sizes[i])
		if err := promutil.Register(reg, &keys); err != nil {
			return err
		}
	}
	if err := promutil.Register(reg, &c.m.rows); err != nil {
		return err
	}
	return promutil.Register(reg, &c.m.events)
}

// Process correlates b.Events in order and appends the rows of the groups
// it created or grew to b.Correlations: time-based groups first, then
// causal ones, each in the order first touched.
func (c *Correlator) Process(_ context.Context, b *pipeline.Batch) error {
	now := b.Now
	if c.sweep.Due(now) {
		c.Sweep(now)
	}
	var (
		groups []*group
		crits  []*openCritical
		undo   []change
	)
	b.OnAbort(func() { c.undo(undo) })
	for _, e := range b.Events {
		if g := c.join(e, now, &undo); g != nil && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
		if oc := c.link(e, now, &undo); oc != nil && !slices.Contains(crits, oc) {
			crits = append(crits, oc)
		}
		if e.Severity == event.Critical {
			c.open(e, now, &undo)
		}
	}
	for _, g := range groups {
		if row, ok := c.groupRow(g); ok {
			b.Correlations = append(b.Correlations, row)
			c.m.rows.WithLabelValues(string(event.CorrelationTimeBased)).Inc()
		}
	}
	for _, oc := range crits {
		if row, ok := c.causalRow(oc); ok {
			b.Correlations = append(b.Correlations, row)
			c.m.rows.WithLabelValues(string(event.CorrelationCausal)).Inc()
		}
	}
	return nil
}

// join puts e in its host's time-based group, opening one if none is open,
// and sets e.CorrelationID. It returns the group (nil for an event without
// a host).
func (c *Correlator) join(e *event.Event, now time.Time, undo *[]change) *group {
	host := e.SourceHost
	if host == "" {
		return nil
	}
	s := c.groups.Lock(host)
	defer s.Unlock()
	en := c.groups.Get(s, host)
	if en != nil && now.Sub(en.Val.start) >= c.window {
		c.groups.Expire(s, en)
		en = nil
	}
	if en == nil {
		g := &group{id: GroupID(e.ID), host: host, primary: e.ID, start: now, createdAt: e.OccurredAt, count: 1}
		g.sev[rank(e.Severity)]++
		*undo = append(*undo, change{host: host, g: g})
		c.groups.Put(s, host, g)
		e.CorrelationID = g.id
		return g
	}
	g := en.Val
	if g.add(e.ID, rank(e.Severity), c.maxRelated) {
		*undo = append(*undo, change{host: host, g: g, id: e.ID, rank: rank(e.Severity)})
		c.m.events.WithLabelValues(string(event.CorrelationTimeBased)).Inc()
	} else {
		g.emitted = 0 // a retried batch: its rows may not have been stored
	}
	e.CorrelationID = g.id
	return g
}

// add adds event id to g unless it is already a member (a retried batch).
func (g *group) add(id int64, r, maxRelated int) bool {
	if id == g.primary || slices.Contains(g.related, id) {
		return false
	}
	g.count++
	g.sev[r]++
	if len(g.related) < maxRelated {
		g.related = append(g.related, id)
	}
	return true
}

// link gives e a parent if a host e's asset depends on has an open
// critical event, and returns that event's causal group.
func (c *Correlator) link(e *event.Event, now time.Time, undo *[]change) *openCritical {
	if e.SourceHost == "" {
		return nil
	}
	deps := Dependencies(e)
	if len(deps) == 0 {
		return nil
	}
	var (
		best   *openCritical
		bestAt time.Time
		bestID int64
	)
	for _, d := range deps {
		d = strings.ToLower(d)
		if d == e.SourceHost || d == "" {
			continue
		}
		s := c.crits.Lock(d)
		if en := c.crits.Get(s, d); en != nil {
			oc := en.Val
			switch {
			case now.Sub(oc.at) >= c.causalWindow:
				c.crits.Expire(s, en)
			case best == nil || oc.at.Before(bestAt) || oc.at.Equal(bestAt) && oc.id < bestID:
				best, bestAt, bestID = oc, oc.at, oc.id
			}
		}
		s.Unlock()
	}
	if best == nil {
		return nil
	}
	s := c.crits.Lock(best.host)
	defer s.Unlock()
	oc := best
	if en := c.crits.Get(s, best.host); en != nil && en.Val != best && now.Sub(en.Val.at) < c.causalWindow {
		// A newer critical event replaced it meanwhile: it is open too.
		oc = en.Val
	}
	if oc.addChild(e.ID, e.SourceHost, c.maxRelated) {
		*undo = append(*undo, change{host: oc.host, oc: oc, id: e.ID})
		c.m.events.WithLabelValues(string(event.CorrelationCausal)).Inc()
	} else {
		oc.emitted = 0 // a retried batch: its rows may not have been stored
	}
	e.ParentEventID = oc.id
	return oc
}

// addChild adds dependent event id of host to oc unless it is already
// there (a retried batch).
func (oc *openCritical) addChild(id int64, host string, maxRelated int) bool {
	if slices.Contains(oc.children, id) {
		return false
	}
	oc.count++
	if len(oc.children) < maxRelated {
		oc.children = append(oc.children, id)
	}
	if !oc.hostSet[host] && len(oc.hosts) < maxRelated {
		if oc.hostSet == nil {
			oc.hostSet = make(map[string]bool)
		}
		oc.hostSet[host] = true
		oc.hosts = append(oc.hosts, host)
	}
	return true
}

// open records critical event e as its host's open critical event.
func (c *Correlator) open(e *event.Event, now time.Time, undo *[]change) {
	host := e.SourceHost
	if host == "" {
		return
	}
	s := c.crits.Lock(host)
	defer s.Unlock()
	var prev *openCritical
	if en := c.crits.Get(s, host); en != nil {
		if en.Val.id == e.ID {
			return // a retried batch
		}
		if now.Before(en.Val.at) {
			return // another lane already opened a later one
		}
		prev = en.Val
	}
	oc := &openCritical{id: e.ID, host: host, title: e.Title, at: now, occurredAt: e.OccurredAt, corrID: CausalID(e.ID)}
	*undo = append(*undo, change{host: host, oc: oc, prev: prev, opened: true})
	c.crits.Put(s, host, oc)
}

// change is one state change of Process, for its undo: a group opened
// (g, id 0) or grown by event id (g), an open critical event grown by
// dependent event id (oc), or opened (oc, opened) in place of prev.
type change struct {
	host   string
	g      *group
	oc     *openCritical
	prev   *openCritical
	id     int64
	rank   int
	opened bool
}

// undo reverts what Process applied for a batch that was not stored, the
// last change first, so that its events neither stay members of a group
// nor open a causal window (pipeline.Batch.OnAbort). Rows are emitted
// again when the groups next grow.
func (c *Correlator) undo(changes []change) {
	for i := len(changes) - 1; i >= 0; i-- {
		ch := &changes[i]
		switch {
		case ch.g != nil:
			s := c.groups.Lock(ch.host)
			if ch.id == 0 {
				if en := c.groups.Get(s, ch.host); en != nil && en.Val == ch.g {
					c.groups.Remove(s, en)
				}
			} else {
				ch.g.remove(ch.id, ch.rank)
			}
			s.Unlock()
		case ch.opened:
			s := c.crits.Lock(ch.host)
			if en := c.crits.Get(s, ch.host); en != nil && en.Val == ch.oc {
				if ch.prev != nil {
					en.Val = ch.prev
				} else {
					c.crits.Remove(s, en)
				}
			}
			s.Unlock()
		case ch.oc != nil:
			s := c.crits.Lock(ch.host)
			if j := slices.Index(ch.oc.children, ch.id); j >= 0 {
				ch.oc.children = slices.Delete(ch.oc.children, j, j+1)
			}
			ch.oc.count = max(0, ch.oc.count-1)
			ch.oc.emitted = 0
			s.Unlock()
		}
	}
}

// remove takes event id (of severity rank r) out of g, undoing add.
func (g *group) remove(id int64, r int) {
	if j := slices.Index(g.related, id); j >= 0 {
		g.related = slices.Delete(g.related, j, j+1)
	}
	g.count = max(1, g.count-1)
	g.sev[r] = max(0, g.sev[r]-1)
	g.emitted = 0
}

// groupRow is g's current row, if g has two events or more and the row
// changed since it was last emitted.
func (c *Correlator) groupRow(g *group) (event.Correlation, bool) {
	s := c.groups.Lock(g.host)
	defer s.Unlock()
	if g.count < 2 {
		return event.Correlation{}, false
	}
	maxRank := 0
	for r, n := range g.sev {
		if n > 0 {
			maxRank = r
		}
	}
	if g.emitted > 0 && len(g.related) == g.emitted && maxRank == g.emittedRank {
		return event.Correlation{}, false
	}
	g.emitted, g.emittedRank = len(g.related), maxRank
	reason := fmt.Sprintf("%d events on %s within %s: %s", g.count, g.host, c.window, severitySummary(g.sev))
	if len(g.related) < g.count-1 || len(g.related) >= c.maxRelated {
		reason = fmt.Sprintf("at least %d events on %s within %s: %s; related_event_ids is capped at %d, later events of the window share the correlation_id",
			g.count, g.host, c.window, severitySummary(g.sev), c.maxRelated)
	}
	return event.Correlation{
		CorrelationID:   g.id,
		Type:            event.CorrelationTimeBased,
		PrimaryEventID:  g.primary,
		RelatedEventIDs: slices.Clone(g.related),
		Score:           TimeScore(g.count, event.SeverityFromRank(maxRank)),
		Reason:          reason,
		CreatedAt:       g.createdAt,
	}, true
}

// causalRow is oc's current causal row, if it changed since it was last
// emitted.
func (c *Correlator) causalRow(oc *openCritical) (event.Correlation, bool) {
	s := c.crits.Lock(oc.host)
	defer s.Unlock()
	if oc.emitted > 0 && len(oc.children) == oc.emitted {
		return event.Correlation{}, false
	}
	oc.emitted = len(oc.children)
	const named = 3
	hosts := strings.Join(oc.hosts[:min(named, len(oc.hosts))], ", ")
	verb := "depends"
	if len(oc.hosts) > 1 {
		verb = "depend"
	}
	if n := len(oc.hosts) - named; n > 0 {
		hosts += fmt.Sprintf(" and %d more hosts", n)
	}
	title := oc.title
	if r := []rune(title); len(r) > 80 {
		title = string(r[:79]) + "…"
	}
	plural := "s"
	if oc.count == 1 {
		plural = ""
	}
	reason := fmt.Sprintf("%s %s on %s, which has an open critical event %d (%q, occurred %s); %d dependent event%s",
		hosts, verb, oc.host, oc.id, title, oc.occurredAt.UTC().Format(time.RFC3339), oc.count, plural)
	if len(oc.children) < oc.count || len(oc.children) >= c.maxRelated {
		reason += fmt.Sprintf("; related_event_ids is capped at %d, later dependent events name the parent in parent_event_id", c.maxRelated)
	}
	return event.Correlation{
		CorrelationID:   oc.corrID,
		Type:            event.CorrelationCausal,
		PrimaryEventID:  oc.id,
		RelatedEventIDs: slices.Clone(oc.children),
		Score:           CausalScore(oc.count),
		Reason:          reason,
		CreatedAt:       oc.occurredAt,
	}, true
}

// Sweep removes the groups and open critical events whose window has
// closed at now and returns how many it removed. Process sweeps by itself
// once per window of batch time; a runner may call Sweep too.
func (c *Correlator) Sweep(now time.Time) int {
	n := c.groups.Sweep(func(g **group) bool { return now.Sub((*g).start) >= c.window })
	return n + c.crits.Sweep(func(oc **openCritical) bool { return now.Sub((*oc).at) >= c.causalWindow })
}

// Len returns the number of hosts with a time-based group and with an open
// critical event.
func (c *Correlator) Len() (groups, criticals int) { return c.groups.Len(), c.crits.Len() }

// Warm seeds the state from events stored recently (store.RecentEvents,
// oldest first), so that a restart neither splits an open group nor
// forgets an open critical event. Times are taken from each event's
// received_at; severities are the source severities recorded by the scorer
// (Scoring.SourceSeverity, kept in event_data.scoring), else the stored
// severity. A group or causal group that grows after Warm is emitted with
// its stored members and the same correlation id.
func (c *Correlator) Warm(events []event.Event) {
	opened := make(map[int64]*openCritical)
	for i := range events {
		e := &events[i]
		at := e.ReceivedAt
		if at.IsZero() {
			at = event.TimeOfID(e.ID)
		}
		sev := sourceSeverity(e)
		host := e.SourceHost
		if host != "" && e.CorrelationID != "" {
			s := c.groups.Lock(host)
			en := c.groups.Get(s, host)
			switch {
			case en != nil && en.Val.id == e.CorrelationID:
				en.Val.add(e.ID, rank(sev), c.maxRelated)
			case en == nil || !at.Before(en.Val.start):
				g := &group{id: e.CorrelationID, host: host, primary: e.ID, start: at, createdAt: e.OccurredAt, count: 1}
				g.sev[rank(sev)]++
				c.groups.Put(s, host, g)
			}
			s.Unlock()
		}
		if oc := opened[e.ParentEventID]; oc != nil && host != "" {
			s := c.crits.Lock(oc.host)
			oc.addChild(e.ID, host, c.maxRelated)
			s.Unlock()
		}
		if host != "" && sev == event.Critical {
			oc := &openCritical{id: e.ID, host: host, title: e.Title, at: at, occurredAt: e.OccurredAt, corrID: CausalID(e.ID)}
			s := c.crits.Lock(host)
			if en := c.crits.Get(s, host); en == nil || !at.Before(en.Val.at) {
				c.crits.Put(s, host, oc)
			}
			s.Unlock()
			opened[e.ID] = oc
		}
	}
}

// Correlation kinds, encoded in the ids of their groups.
const (
	kindTimeBased = 0
	kindCausal    = 1
)

// GroupID is the correlation id of the time-based group whose first event
// is id. It is derived from id alone, so a retried batch or a restart gives
// the group the same id, and it sorts by the time of its first event (the
// event id leads), so the store's correlation_id index grows at its right
// edge like a UUIDv7 rather than at random places (see correlationID).
func GroupID(id int64) string { return correlationID(id, kindTimeBased) }

// CausalID is the correlation id of the causal group whose parent is
// critical event id (see GroupID).
func CausalID(id int64) string { return correlationID(id, kindCausal) }

// correlationID lays out a version 8 (custom) UUID, RFC 9562:
//
//	bytes 0-5   bits 63..16 of the event id (its time and node)
//	byte  6     0x8_ version nibble, then the kind
//	byte  7     bits 15..8 of the event id
//	byte  8     0b10 variant, then bits 7..2 of the event id
//	byte  9     bits 1..0 of the event id
//	bytes 10-15 "reflex"
func correlationID(id int64, kind byte) string {
	var u uuid.UUID
	v := uint64(id)
	for i := 0; i < 6; i++ {
		u[i] = byte(v >> (56 - 8*i))
	}
	u[6] = 0x80 | kind&0x0f
	u[7] = byte(v >> 8)
	u[8] = 0x80 | byte(v)>>2
	u[9] = byte(v) & 0x03
	copy(u[10:], "reflex")
	return u.String()
}

// severityWeight is the part of a time-based score owed to the group's
// most severe event, by rank (info .. critical).
var severityWeight = [5]float64{0, 0.05, 0.10, 0.20, 0.30}

// TimeScore is the score of a time-based group of n events whose most
// severe event has severity worst:
//
//	0.30 + min(0.40, 0.10 × log2(n)) + w(worst)
//
// with w = 0.30 critical, 0.20 high, 0.10 medium, 0.05 low, 0 info,
// rounded to 2 decimals and at most 1.00 (the column is DECIMAL(3,2)). Two
// info events score 0.40, two critical ones 0.70, sixteen with a critical
// one 1.00.
func TimeScore(n int, worst event.Severity) float64 {
	if n < 1 {
		n = 1
	}
	return round2(0.30 + math.Min(0.40, 0.10*math.Log2(float64(n))) + severityWeight[rank(worst)])
}

// CausalScore is the score of a causal group with n dependent events:
// 0.70 + 0.05 × (n − 1), rounded to 2 decimals and at most 1.00 (seven
// dependent events or more).
func CausalScore(n int) float64 {
	return round2(0.70 + 0.05*float64(max(0, n-1)))
}

func round2(x float64) float64 {
	return math.Min(1, math.Max(0, math.Round(x*100)/100))
}

// rank is s.Rank(), with an unknown severity counted as info.
func rank(s event.Severity) int {
	return max(0, s.Rank())
}

func severitySummary(sev [5]int) string {
	var parts []string
	for r := len(sev) - 1; r >= 0; r-- {
		if sev[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", sev[r], event.SeverityFromRank(r)))
		}
	}
	return strings.Join(parts, ", ")
}

// Dependencies returns the hosts e's asset depends on, as the enricher set
// them in e.Asset (nil without an asset).
func Dependencies(e *event.Event) []string {
	if e.Asset == nil {
		return nil
	}
	return e.Asset.Dependencies
}

// sourceSeverity is the severity e had before scoring, as the scorer
// recorded it in e.Scoring, else e's severity.
func sourceSeverity(e *event.Event) event.Severity {
	if e.Scoring != nil && e.Scoring.SourceSeverity.Valid() {
		return e.Scoring.SourceSeverity
	}
	return e.Severity
}
