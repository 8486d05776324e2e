// Package incident is reflex's incident engine. It reads the processed
// stream as the durable consumer "incidents" (downstream of the store, so
// that the pipeline's write path does not wait for it), groups correlated
// events into incidents with a lifecycle (open, acknowledged, resolved),
// ranks each incident's candidate root causes with their reasons, and
// keeps incidents, their events, the parent links of the events to the
// root and a correlation row per incident in the store.
//
// # Grouping
//
// An event at or above Options.MinSeverity joins an open (or
// acknowledged) incident that it is connected to within Window of the
// incident's events (event time): one that already holds its host, one
// holding a host that its host depends on (directly or through other
// assets of the inventory), or one holding a host that depends on its
// host. When it connects several incidents, they are merged into the
// oldest. An event below MinSeverity only joins an incident that already
// holds its host; it never opens one. Nor does a derived event (source
// type reflex, such as an anomaly in the rate of an event type) without a
// host. An event whose host the inventory
// does not relate to any other host (no dependencies, no dependents)
// groups by its labels (Options.GroupBy, by default its type and
// template) with the events of other such hosts: a pattern_based
// incident. Events of hosts that the inventory knows to be unrelated are
// never merged because they are close in time or look alike.
//
// A new incident waits GroupWait for company before it is announced:
// then its root's parent links and its correlation row are written, and
// after that at most every GroupInterval while it grows. Its ranking and
// root_event_id are kept current with every batch. An incident that got
// no event for ResolveAfter is resolved; a resolved incident absorbs no
// event (a later one opens a new incident) until it is reopened.
//
// # Delivery and idempotency
//
// Records come at least once. Before a batch is handled, the engine asks
// the store which of its events are in an incident already and skips
// them; an incident's id is the id of the event that opened it, so a
// batch handled again after a failed write recreates the same rows.
// incident_events holds each event once. When a write fails, the engine
// reads its state back from the store before the batch is tried again.
package incident

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/store"
)

// ConsumerName is the engine's durable consumer of the processed stream.
const ConsumerName = "incidents"

// Defaults of Options.
const (
	DefaultMinSeverity   = event.Medium
	DefaultWindow        = 15 * time.Minute
	DefaultGroupWait     = 30 * time.Second
	DefaultGroupInterval = 5 * time.Minute
	DefaultResolveAfter  = time.Hour
	DefaultMaxOpen       = 2_000
	DefaultMaxEvents     = 500
	DefaultMaxDepth      = 8
	DefaultTickEvery     = time.Second
)

// DefaultGroupBy are the labels that group the events of hosts the
// inventory does not relate.
var DefaultGroupBy = []string{"event_type", "template"}

// maxRelated bounds related_event_ids of an incident's correlation row.
const maxRelated = 100

// maxLearned bounds the signatures whose root history is kept.
const maxLearned = 10_000

// Graph is the asset inventory (*enrich.Inventory): each host's
// dependencies, and whether any asset depends on a host. Safe for
// concurrent use.
type Graph interface {
	Get(host string) (store.Asset, bool)
	HasDependents(host string) bool
}

// Precedence is an optional learner of sequences: how confident it is,
// and on how many observations, that template before precedes template
// after. It must be safe for concurrent use.
type Precedence interface {
	Precedes(before, after int64) (confidence float64, support int)
}

// Store is what the engine reads and writes.
type Store interface {
	store.IncidentStore
	Event(ctx context.Context, id int64) (*event.Event, error)
	EventsByID(ctx context.Context, ids []int64) ([]event.Event, error)
}

// Options configure an Engine. Store is required; the zero value of the
// others gives the defaults.
type Options struct {
	Store Store
	// Graph is the asset inventory; nil: no dependencies are known (every
	// host groups by labels).
	Graph Graph
	// Precedence, if set, is consulted in root-cause ranking.
	Precedence Precedence
	// TemplateOf returns the log template id of an event, if it has one
	// (nil: DataTemplate, which reads event_data.template).
	TemplateOf func(ev *event.Event) (id int64, ok bool)
	// MinSeverity is the severity floor: an event at or above it can open
	// an incident and join one through the dependency graph or labels;
	// below it an event only joins an incident already holding its host
	// (default medium).
	MinSeverity event.Severity
	// Window is how far (in event time) an event may be from an
	// incident's events to join it (default 15m).
	Window time.Duration
	// GroupWait is how long a new incident waits for company before it is
	// announced (default 30s); GroupInterval how often an announced
	// incident's parent links and correlation row are rewritten while it
	// changes (default 5m). Both in wall-clock time.
	GroupWait, GroupInterval time.Duration
	// ResolveAfter resolves an incident that got no event for this long
	// (wall clock; default 1h).
	ResolveAfter time.Duration
	// GroupBy are the labels that group events of hosts the inventory does
	// not relate: event_type, service, source, template, tags (default
	// event_type and template).
	GroupBy []string
	// MaxOpen bounds the incidents held open in memory; past it the one
	// quiet longest is resolved (default 2,000).
	MaxOpen int
	// MaxEvents bounds the events of an incident kept for ranking and
	// parent links, and its hosts indexed; later ones are counted (default
	// 500).
	MaxEvents int
	// MaxDepth bounds the dependency chains followed (default 8).
	MaxDepth int
	// TickEvery is how often Run announces, flushes and resolves
	// (default 1s).
	TickEvery time.Duration
	// Logger receives logs; nil discards.
	Logger *slog.Logger
	// Registerer registers the metrics; nil does not register.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ValidGroupBy reports whether label is one that GroupBy accepts.
func ValidGroupBy(label string) bool {
	switch label {
	case "event_type", "service", "source", "template", "tags":
		return true
	}
	return false
}

// member is an event of an incident, as ranking needs it.
type member struct {
	id        int64
	host      string
	at        time.Time
	sev       int
	crit      int
	sig       string
	tmpl      int64
	title     string
	eventType string
}

// state is an incident held in memory.
type state struct {
	row store.Incident
	// cands holds each host's candidate root: its earliest event at or
	// above the severity floor, else its earliest; links the events whose
	// parent_event_id the engine sets. Both at most MaxEvents.
	cands   map[string]member
	links   []link
	hosts   map[string]bool
	up      map[string]bool // hosts that the hosts depend on, transitively
	key     string          // label key of a pattern incident; "" otherwise
	first   time.Time       // event times
	last    time.Time
	seenAt  time.Time // wall clock of the last event
	created time.Time // wall clock when this engine first held it

	announced bool
	flushedAt time.Time
	changed   bool            // members or root changed since the last flush
	linked    map[int64]int64 // event -> parent written
	ranked    []store.RootCandidate

	// alerts are the alerts (alertID) of its events that are firing;
	// alerted says it has had one. An incident that has had alerts is
	// resolved when the last of them is.
	alerts  map[string]bool
	alerted bool
}

// link is an event of an incident: its id and occurred_at (which locates
// its partition).
type link struct {
	id int64
	at time.Time
}

// better reports whether m is a better candidate root of its host than c.
func (e *Engine) better(m, c member) bool {
	floor := e.opts.MinSeverity.Rank()
	if (m.sev >= floor) != (c.sev >= floor) {
		return m.sev >= floor
	}
	return m.at.Before(c.at) || m.at.Equal(c.at) && m.id < c.id
}

// keep records m in st: its link, and as its host's candidate if it is
// the better one.
func (e *Engine) keep(st *state, m member) {
	if len(st.links) < e.opts.MaxEvents {
		st.links = append(st.links, link{m.id, m.at})
	}
	if c, ok := st.cands[m.host]; ok {
		if e.better(m, c) {
			st.cands[m.host] = m
		}
	} else if len(st.cands) < e.opts.MaxEvents {
		st.cands[m.host] = m
	}
	st.first, st.last = minTime(st.first, m.at), maxTime(st.last, m.at)
}

// rootStat is the history of a signature: incidents it was in and
// incidents it was the root of.
type rootStat struct{ seen, roots int }

// Engine is the incident engine. Its methods are safe for concurrent use.
type Engine struct {
	opts Options
	log  *slog.Logger
	met  metrics

	mu      sync.Mutex
	open    map[int64]*state
	byHost  map[string]map[int64]bool // host -> open incidents holding it
	byUp    map[string]map[int64]bool // host -> open incidents whose hosts depend on it
	byKey   map[string]int64          // label key -> open pattern incident
	byAlert map[string]int64          // alertID of a firing member -> its open incident
	learned map[string]*rootStat
	// pendingResolved are rows resolved for capacity, written with the
	// next write.
	pendingResolved []store.Incident
}

// New returns an engine with its open incidents and its root history
// read back from the store.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("incident: Options.Store is required")
	}
	if opts.MinSeverity == "" {
		opts.MinSeverity = DefaultMinSeverity
	}
	if !opts.MinSeverity.Valid() {
		return nil, fmt.Errorf("incident: unknown MinSeverity %q", opts.MinSeverity)
	}
	opts.Window = orDefault(opts.Window, DefaultWindow)
	opts.GroupWait = orDefault(opts.GroupWait, DefaultGroupWait)
	opts.GroupInterval = orDefault(opts.GroupInterval, DefaultGroupInterval)
	opts.ResolveAfter = orDefault(opts.ResolveAfter, DefaultResolveAfter)
	opts.TickEvery = orDefault(opts.TickEvery, DefaultTickEvery)
	opts.MaxOpen = orDefault(opts.MaxOpen, DefaultMaxOpen)
	opts.MaxEvents = orDefault(opts.MaxEvents, DefaultMaxEvents)
	opts.MaxDepth = orDefault(opts.MaxDepth, DefaultMaxDepth)
	if opts.GroupBy == nil {
		opts.GroupBy = DefaultGroupBy
	}
	for _, l := range opts.GroupBy {
		if !ValidGroupBy(l) {
			return nil, fmt.Errorf("incident: unknown group_by label %q: want event_type, service, source, template or tags", l)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TemplateOf == nil {
		opts.TemplateOf = DataTemplate
	}
	e := &Engine{opts: opts, log: opts.Logger.With("component", "incidents"), learned: map[string]*rootStat{}}
	e.reset()
	var err error
	if e.met, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	if err := e.restore(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func orDefault[T cmp.Ordered](v, d T) T {
	var zero T
	if v <= zero {
		return d
	}
	return v
}

func (e *Engine) reset() {
	e.open = map[int64]*state{}
	e.byHost = map[string]map[int64]bool{}
	e.byUp = map[string]map[int64]bool{}
	e.byKey = map[string]int64{}
	e.byAlert = map[string]int64{}
}

// alertID identifies the alert of ev across its firing and resolution.
func alertID(ev *event.Event) string { return string(ev.SourceType) + "\x00" + ev.Alert.Key }

// restore reads the open and acknowledged incidents, with their events,
// and the root history of the resolved ones.
func (e *Engine) restore(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reset()
	now := e.opts.Now()
	q := store.IncidentQuery{Status: []store.IncidentStatus{store.IncidentOpen, store.IncidentAcknowledged}, Limit: 1000}
	for len(e.open) < e.opts.MaxOpen {
		page, err := e.opts.Store.ListIncidents(ctx, q)
		if err != nil {
			return fmt.Errorf("incident: restore: %w", err)
		}
		for _, row := range page.Incidents {
			if len(e.open) >= e.opts.MaxOpen {
				break
			}
			ids, err := e.opts.Store.IncidentEventIDs(ctx, row.ID, e.opts.MaxEvents)
			if err != nil {
				return fmt.Errorf("incident: restore: %w", err)
			}
			evs, err := e.opts.Store.EventsByID(ctx, ids)
			if err != nil {
				return fmt.Errorf("incident: restore: %w", err)
			}
			alerts, err := e.opts.Store.AlertsOfEvents(ctx, ids)
			if err != nil {
				return fmt.Errorf("incident: restore: %w", err)
			}
			st := e.held(row, evs, now)
			for i := range evs {
				if ev := &evs[i]; ev.Alert != nil && ev.Alert.Status == event.AlertFiring {
					st.alerted = true
					if a, ok := alerts[ev.ID]; ok && a.Status == event.AlertFiring {
						st.alerts[alertID(ev)] = true
					}
				}
			}
			st.seenAt = row.UpdatedAt
			e.index(st)
		}
		if !page.More {
			break
		}
		q.CursorTime, q.CursorID = page.NextTime, page.NextID
	}
	// The root history: the most recent resolved incidents.
	q = store.IncidentQuery{Status: []store.IncidentStatus{store.IncidentResolved}, Limit: 1000}
	for range 5 {
		page, err := e.opts.Store.ListIncidents(ctx, q)
		if err != nil {
			return fmt.Errorf("incident: restore root history: %w", err)
		}
		for _, row := range page.Incidents {
			e.learn(row.RootCauseRanking, row.RootEventID)
		}
		if !page.More {
			break
		}
		q.CursorTime, q.CursorID = page.NextTime, page.NextID
	}
	e.met.open.Set(float64(len(e.open)))
	return nil
}

// held is the state of a stored incident row with its events evs, as
// the engine holds it after a restart or a reopen.
func (e *Engine) held(row store.Incident, evs []event.Event, now time.Time) *state {
	st := &state{row: row, cands: map[string]member{}, hosts: map[string]bool{}, up: map[string]bool{}, seenAt: now,
		created: now, announced: true, flushedAt: now, linked: map[int64]int64{}, ranked: row.RootCauseRanking,
		alerts: map[string]bool{}}
	if row.CorrelationType == event.CorrelationPatternBased && len(evs) > 0 {
		st.key = e.labelKey(&evs[0])
	}
	for i := range evs {
		e.keep(st, e.memberOf(&evs[i]))
		if evs[i].ParentEventID == row.RootEventID {
			st.linked[evs[i].ID] = row.RootEventID
		}
	}
	return st
}

// index adds st to the open incidents and the host, upstream and label
// indexes.
func (e *Engine) index(st *state) {
	e.open[st.row.ID] = st
	for h := range st.cands {
		e.addHost(st, h)
	}
	if st.key != "" {
		e.byKey[st.key] = st.row.ID
	}
	for a := range st.alerts {
		e.byAlert[a] = st.row.ID
	}
}

// addHost adds host, and the hosts it depends on, to st; past MaxEvents
// hosts, new ones are not indexed.
func (e *Engine) addHost(st *state, host string) {
	if host == "" {
		return // events without a host group by their labels only
	}
	if !st.hosts[host] {
		if len(st.hosts) >= e.opts.MaxEvents {
			return
		}
		st.hosts[host] = true
		add(e.byHost, host, st.row.ID)
	}
	for _, a := range e.ancestors(host) {
		if !st.up[a] {
			st.up[a] = true
			add(e.byUp, a, st.row.ID)
		}
	}
}

func add(idx map[string]map[int64]bool, k string, id int64) {
	s := idx[k]
	if s == nil {
		s = map[int64]bool{}
		idx[k] = s
	}
	s[id] = true
}

func remove(idx map[string]map[int64]bool, k string, id int64) {
	if s := idx[k]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(idx, k)
		}
	}
}

// drop removes st from memory.
func (e *Engine) drop(st *state) {
	id := st.row.ID
	delete(e.open, id)
	for h := range st.hosts {
		remove(e.byHost, h, id)
	}
	for h := range st.up {
		remove(e.byUp, h, id)
	}
	if st.key != "" && e.byKey[st.key] == id {
		delete(e.byKey, st.key)
	}
	for a := range st.alerts {
		if e.byAlert[a] == id {
			delete(e.byAlert, a)
		}
	}
}

// ancestors returns the hosts host depends on, directly or through other
// assets, at most MaxDepth levels deep.
func (e *Engine) ancestors(host string) []string {
	if e.opts.Graph == nil || host == "" {
		return nil
	}
	seen := map[string]bool{host: true}
	var out []string
	level := []string{host}
	for d := 0; d < e.opts.MaxDepth && len(level) > 0; d++ {
		var next []string
		for _, h := range level {
			a, ok := e.opts.Graph.Get(h)
			if !ok {
				continue
			}
			for _, dep := range a.Dependencies {
				if !seen[dep] {
					seen[dep] = true
					out = append(out, dep)
					next = append(next, dep)
				}
			}
		}
		level = next
	}
	return out
}

// related reports whether the inventory relates host to any other host.
func (e *Engine) related(host string) bool {
	if e.opts.Graph == nil || host == "" {
		return false
	}
	if a, ok := e.opts.Graph.Get(host); ok && len(a.Dependencies) > 0 {
		return true
	}
	return e.opts.Graph.HasDependents(host)
}

// memberOf is what the engine keeps of ev.
func (e *Engine) memberOf(ev *event.Event) member {
	m := member{id: ev.ID, host: hostOf(ev), at: ev.OccurredAt, sev: ev.Severity.Rank(), title: ev.Title, eventType: ev.EventType}
	if m.at.IsZero() {
		m.at = ev.ReceivedAt
	}
	m.sig, m.tmpl = e.signature(ev)
	if ev.Asset != nil {
		m.crit = criticality(ev.Asset.Criticality)
	} else if e.opts.Graph != nil {
		if a, ok := e.opts.Graph.Get(m.host); ok {
			m.crit = criticality(a.Criticality)
		}
	}
	return m
}

func hostOf(ev *event.Event) string { return strings.ToLower(strings.TrimSpace(ev.SourceHost)) }

func criticality(c string) int {
	switch strings.ToLower(c) {
	case "critical":
		return 3
	case "high":
		return 2
	case "medium":
		return 1
	}
	return 0
}

// DataTemplate reads the log template of an event: the template stage's
// typed result (event.Event.Template, which event_data.template decodes
// into), else a {"id": ..., "text": ...} map under event_data.template in
// its Data. It is the default of Options.TemplateOf.
func DataTemplate(ev *event.Event) (int64, bool) {
	if ev.Template != nil && ev.Template.ID > 0 {
		return ev.Template.ID, true
	}
	t, ok := ev.Data["template"].(map[string]any)
	if !ok {
		return 0, false
	}
	switch id := t["id"].(type) {
	case float64:
		return int64(id), true
	case int64:
		return id, true
	case json.Number:
		n, err := id.Int64()
		return n, err == nil
	}
	return 0, false
}

// signature is what an event is an instance of: its log template
// (Options.TemplateOf) when it has one, else its type and its title
// without digits. tmpl is the template id, 0 without one.
func (e *Engine) signature(ev *event.Event) (sig string, tmpl int64) {
	if id, ok := e.opts.TemplateOf(ev); ok {
		return "template:" + strconv.FormatInt(id, 10), id
	}
	var b strings.Builder
	b.WriteString("type:")
	b.WriteString(ev.EventType)
	b.WriteByte(':')
	for _, r := range strings.ToLower(ev.Title) {
		if r < '0' || r > '9' {
			b.WriteRune(r)
		}
	}
	return b.String(), 0
}

// labelKey is the key of ev's labels in GroupBy.
func (e *Engine) labelKey(ev *event.Event) string {
	parts := make([]string, len(e.opts.GroupBy))
	for i, l := range e.opts.GroupBy {
		switch l {
		case "event_type":
			parts[i] = ev.EventType
		case "service":
			parts[i] = ev.SourceService
		case "source":
			parts[i] = ev.SourceSystem
		case "template":
			parts[i], _ = e.signature(ev)
		case "tags":
			parts[i] = strings.Join(slices.Sorted(slices.Values(ev.Tags)), ",")
		}
	}
	return strings.Join(parts, "\x00")
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// batch is what one Handle call changes.
type batch struct {
	alerts  []store.AlertChange
	touched map[int64]bool
	members []store.IncidentMember
	merges  []store.IncidentMerge
	into    map[int64]int64 // merged incident -> the one it went into
}

func (b *batch) final(id int64) int64 {
	for {
		next, ok := b.into[id]
		if !ok {
			return id
		}
		id = next
	}
}

// Handle groups the events of a batch of processed-stream records
// (processed.Handler).
func (e *Engine) Handle(ctx context.Context, recs []processed.Record) error {
	evs, repeats, err := e.eventsOf(ctx, recs)
	if err != nil {
		return err
	}
	if len(evs) == 0 && len(repeats) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(evs)+len(repeats))
	for i := range evs {
		ids = append(ids, evs[i].ID)
	}
	for id := range repeats {
		ids = append(ids, id)
	}
	have, err := e.opts.Store.IncidentsOfEvents(ctx, ids)
	if err != nil {
		return fmt.Errorf("incident: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opts.Now()
	b := &batch{touched: map[int64]bool{}, into: map[int64]int64{}}
	for id, at := range repeats {
		if st := e.open[have[id]]; st != nil {
			st.seenAt, st.last = now, maxTime(st.last, at)
			st.row.UpdatedAt = now
			b.touched[st.row.ID] = true
		}
	}
	slices.SortStableFunc(evs, func(a, b event.Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
	for i := range evs {
		ev := &evs[i]
		if _, ok := have[ev.ID]; ok {
			continue // handled before: a redelivery
		}
		if ev.Alert != nil {
			at := ev.OccurredAt
			if ev.Alert.Status == event.AlertResolved && ev.Alert.EndsAt != nil {
				at = *ev.Alert.EndsAt
			} else if ev.Alert.Status == event.AlertFiring && ev.Alert.StartsAt != nil {
				at = *ev.Alert.StartsAt
			}
			b.alerts = append(b.alerts, store.AlertChange{SourceType: ev.SourceType, Key: ev.Alert.Key,
				Status: ev.Alert.Status, EventID: ev.ID, At: at})
			if ev.Resolves() {
				e.resolveAlert(ev, now)
				continue // a resolution joins no incident
			}
		}
		st := e.assign(ev, b, now)
		if st != nil && ev.Alert != nil {
			id := alertID(ev)
			st.alerts[id], st.alerted = true, true
			e.byAlert[id] = st.row.ID
		}
	}
	w := e.write(b, now)
	e.due(&w, now)
	if err := e.opts.Store.WriteIncidents(ctx, w); err != nil {
		e.mu.Unlock()
		rerr := e.restore(ctx)
		e.mu.Lock()
		return fmt.Errorf("incident: %w", errors.Join(err, rerr))
	}
	e.met.open.Set(float64(len(e.open)))
	return nil
}

// eventsOf returns the new events of recs (each once) and, for the
// repeats, the processed event and the time of the repeat.
func (e *Engine) eventsOf(ctx context.Context, recs []processed.Record) ([]event.Event, map[int64]time.Time, error) {
	var evs []event.Event
	repeats := map[int64]time.Time{}
	seen := map[int64]bool{}
	for i := range recs {
		r := &recs[i]
		if r.Kind == processed.KindRepeat {
			repeats[r.EventID] = maxTime(repeats[r.EventID], r.LastSeenAt)
			continue
		}
		if seen[r.EventID] {
			continue
		}
		seen[r.EventID] = true
		ev := r.Event
		if ev == nil || r.Truncated {
			var err error
			ev, err = e.opts.Store.Event(ctx, r.EventID)
			switch {
			case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnreadable):
				e.log.Warn("a processed record's event is not in the store; incidents skip it", "event_id", r.EventID, "err", err)
				continue
			case err != nil:
				return nil, nil, fmt.Errorf("incident: read event %d: %w", r.EventID, err)
			}
		}
		evs = append(evs, *ev)
	}
	return evs, repeats, nil
}

// inWindow reports whether at is within Window of st's events.
func (e *Engine) inWindow(st *state, at time.Time) bool {
	return !at.Before(st.first.Add(-e.opts.Window)) && !at.After(st.last.Add(e.opts.Window))
}

// resolveAlert takes the alert ev resolves out of the open incident that
// holds it, and resolves that incident when it was its last alert firing.
func (e *Engine) resolveAlert(ev *event.Event, now time.Time) {
	id := alertID(ev)
	inc, ok := e.byAlert[id]
	if !ok {
		return
	}
	delete(e.byAlert, id)
	st := e.open[inc]
	if st == nil {
		return
	}
	delete(st.alerts, id)
	if st.alerted && len(st.alerts) == 0 {
		e.resolve(st, now, "alerts_resolved")
		e.pendingResolved = append(e.pendingResolved, st.row)
	}
}

// assign puts ev in an incident, opening one when it may, and returns
// the incident (nil: none).
func (e *Engine) assign(ev *event.Event, b *batch, now time.Time) *state {
	m := e.memberOf(ev)
	urgent := m.sev >= e.opts.MinSeverity.Rank()
	if ev.SourceType == event.SourceReflex && m.host == "" {
		// reflex's own finding about no host (an anomaly in the rate of
		// an event type or a service, during a storm a symptom of the
		// incidents it counts) opens no incident of its own.
		urgent = false
	}
	cands := map[int64]bool{}
	for id := range e.byHost[m.host] { // none for an event without a host
		cands[id] = true
	}
	if urgent && e.related(m.host) {
		for id := range e.byUp[m.host] { // it is upstream of a member
			cands[id] = true
		}
		for _, a := range e.ancestors(m.host) { // it depends on a member
			for id := range e.byHost[a] {
				cands[id] = true
			}
		}
	}
	var join []*state
	for id := range cands {
		if st := e.open[id]; st != nil && e.inWindow(st, m.at) {
			join = append(join, st)
		}
	}
	key := ""
	if urgent && !e.related(m.host) {
		key = e.labelKey(ev)
		if st := e.open[e.byKey[key]]; st != nil && e.inWindow(st, m.at) && !slices.Contains(join, st) {
			join = append(join, st)
		}
	}
	if len(join) == 0 {
		if !urgent {
			return nil
		}
		st := e.openIncident(ev, m, key, now)
		join = []*state{st}
	}
	slices.SortFunc(join, func(a, b *state) int {
		if c := a.row.OpenedAt.Compare(b.row.OpenedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.row.ID, b.row.ID)
	})
	into := join[0]
	for _, other := range join[1:] {
		e.merge(other, into, b)
	}
	e.join(into, m, now)
	b.touched[into.row.ID] = true
	b.members = append(b.members, store.IncidentMember{IncidentID: into.row.ID, EventID: m.id, AddedAt: now})
	e.met.grouped.Inc()
	return into
}

// openIncident opens an incident for ev.
func (e *Engine) openIncident(ev *event.Event, m member, key string, now time.Time) *state {
	typ := event.CorrelationTimeBased
	if key != "" {
		typ = event.CorrelationPatternBased
	}
	st := &state{
		row: store.Incident{ID: ev.ID, CorrelationID: incidentUUID(ev.ID), Status: store.IncidentOpen, Title: m.title,
			CorrelationType: typ, RootEventID: ev.ID, OpenedAt: now, UpdatedAt: now, Hosts: []string{}},
		cands: map[string]member{}, hosts: map[string]bool{}, up: map[string]bool{}, key: key, first: m.at, last: m.at,
		seenAt: now, created: now, linked: map[int64]int64{}, alerts: map[string]bool{},
	}
	e.open[st.row.ID] = st
	if key != "" {
		e.byKey[key] = st.row.ID
	}
	e.met.opened.Inc()
	if len(e.open) > e.opts.MaxOpen {
		e.evictQuietest(now)
	}
	return st
}

// incidentUUID is the correlation id of the incident id: derived from the
// id, so that handling a batch again makes the same one.
func incidentUUID(id int64) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("reflex-incident-"+strconv.FormatInt(id, 10))).String()
}

// join adds m to st.
func (e *Engine) join(st *state, m member, now time.Time) {
	st.row.EventCount++
	e.keep(st, m)
	e.addHost(st, m.host)
	st.seenAt, st.row.UpdatedAt = now, now
	st.changed = true
}

// merge moves the incident from into into.
func (e *Engine) merge(from, into *state, b *batch) {
	e.drop(from)
	into.row.EventCount += from.row.EventCount
	for _, l := range from.links {
		if len(into.links) < e.opts.MaxEvents {
			into.links = append(into.links, l)
		}
	}
	for h, m := range from.cands {
		if c, ok := into.cands[h]; !ok && len(into.cands) < e.opts.MaxEvents || ok && e.better(m, c) {
			into.cands[h] = m
		}
	}
	for id, p := range from.linked {
		into.linked[id] = p
	}
	for h := range from.hosts {
		e.addHost(into, h)
	}
	for a := range from.alerts {
		into.alerts[a] = true
		e.byAlert[a] = into.row.ID
	}
	into.alerted = into.alerted || from.alerted
	into.first, into.last = minTime(into.first, from.first), maxTime(into.last, from.last)
	into.seenAt = maxTime(into.seenAt, from.seenAt)
	into.announced = into.announced || from.announced
	into.changed = true
	if into.row.CorrelationType == event.CorrelationPatternBased && from.row.CorrelationType != event.CorrelationPatternBased {
		into.row.CorrelationType = from.row.CorrelationType
	}
	b.merges = append(b.merges, store.IncidentMerge{From: from.row.ID, Into: into.row.ID})
	b.into[from.row.ID] = into.row.ID
	delete(b.touched, from.row.ID)
	b.touched[into.row.ID] = true
	e.met.merged.Inc()
}

// evictQuietest resolves the open incident that has been quiet longest.
func (e *Engine) evictQuietest(now time.Time) {
	var q *state
	for _, st := range e.open {
		if q == nil || st.seenAt.Before(q.seenAt) {
			q = st
		}
	}
	if q != nil {
		e.log.Warn("too many open incidents: resolving the one quiet longest", "incident_id", q.row.ID, "max_open", e.opts.MaxOpen)
		e.resolve(q, now, "capacity")
		e.pendingResolved = append(e.pendingResolved, q.row)
	}
}

// write is the store write of b: the rows of the touched incidents (with
// their rankings) and the members, and the merges.
func (e *Engine) write(b *batch, now time.Time) store.IncidentWrite {
	w := store.IncidentWrite{Merges: b.merges, Alerts: b.alerts}
	w.Incidents = append(w.Incidents, e.pendingResolved...)
	e.pendingResolved = nil
	for _, id := range slices.Sorted(maps.Keys(b.touched)) {
		st := e.open[id]
		if st == nil {
			continue
		}
		e.rank(st)
		w.Incidents = append(w.Incidents, st.row)
	}
	for _, m := range b.members {
		m.IncidentID = b.final(m.IncidentID)
		w.Members = append(w.Members, m)
	}
	_ = now
	return w
}
