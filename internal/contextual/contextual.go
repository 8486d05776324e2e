// Package contextual is reflex's context analyzer: what reflex knows about
// a host now (its asset, business hours, maintenance windows, recent
// change events, open incidents on it and on its dependencies, its event
// rate against its baseline), for GET /api/v1/context and, in process,
// for the decision engine.
package contextual

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/calendar"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/history"
	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
)

// Store is the part of store.Store the analyzer reads. It must be safe for
// concurrent use.
type Store interface {
	Asset(ctx context.Context, host string) (store.Asset, error)
	Events(ctx context.Context, q store.EventQuery) (store.EventPage, error)
	MaintenanceWindows(ctx context.Context, q store.MaintenanceQuery) ([]maintenance.Window, error)
	EventCounts(ctx context.Context, host string, ranges []store.TimeRange) ([]int64, error)
}

var _ Store = store.Store(nil)

// Assets is the in-memory asset inventory (*enrich.Inventory).
type Assets interface {
	Get(host string) (store.Asset, bool)
}

// RateState is a host's event rate against its baseline: the events of
// the last Interval (Current), the range expected from the baseline and an
// anomaly score in [0, 1], as of At. Its fields are those of the anomaly
// detector's state, so that one converts to the other.
type RateState struct {
	Interval                  time.Duration
	Current                   float64
	ExpectedLow, ExpectedHigh float64
	Score                     float64
	At                        time.Time
}

// RateFunc returns the rate of host, false when it has none.
type RateFunc func(host string) (RateState, bool)

// IncidentRef is an open incident as the context lists it.
type IncidentRef struct {
	ID     int64  `json:"id"`
	Title  string `json:"title"`
	Status string `json:"status"`
	// RootEventID is the incident's probable root cause (0: not ranked yet).
	RootEventID int64     `json:"root_event_id"`
	Hosts       []string  `json:"hosts"`
	OpenedAt    time.Time `json:"opened_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// OpenIncidentsFunc returns the open incidents that involve any of hosts.
type OpenIncidentsFunc func(ctx context.Context, hosts []string) ([]IncidentRef, error)

// Defaults of Options.
const (
	DefaultChangeWindow   = 24 * time.Hour
	DefaultMaxChanges     = 5
	DefaultRateInterval   = 5 * time.Minute
	DefaultBaselineDays   = 7
	DefaultUpcomingWithin = 7 * 24 * time.Hour
	DefaultMaxUpcoming    = 5
	// ChangeEventType is the event_type of change events (deployments,
	// configuration changes).
	ChangeEventType = "change"
	// maxWindows bounds the windows read per context.
	maxWindows = 10_000
	// maxDependencies bounds the dependencies looked at.
	maxDependencies = 100
	// rateSigmas is the half width of the expected range, in standard
	// deviations of the baseline.
	rateSigmas = 3
)

// Options configure New. Only Store is required.
type Options struct {
	// Store holds the assets, events and maintenance windows. Required.
	Store Store
	// Assets, when set, is read before the store for the asset of a host.
	Assets Assets
	// Calendar is the business hours; nil: not configured.
	Calendar *calendar.Calendar
	// Rate, when set, gives the anomaly detector's rate of a host; nil, or
	// a host it does not know, falls back to the store (see Context).
	Rate RateFunc
	// OpenIncidents, when set, lists open incidents; nil: the context says
	// incidents are not available.
	OpenIncidents OpenIncidentsFunc
	// ChangeWindow is how far back change events are listed (default 24h);
	// MaxChanges how many, newest first (default 5).
	ChangeWindow time.Duration
	MaxChanges   int
	// RateInterval is the interval of the store's rate (default 5m);
	// BaselineDays the number of previous days at the same time of day
	// that form its baseline (default 7, at most 60).
	RateInterval time.Duration
	BaselineDays int
	// UpcomingWithin is how far ahead upcoming maintenance windows are
	// listed (default 7d); MaxUpcoming how many (default 5).
	UpcomingWithin time.Duration
	MaxUpcoming    int
	// Logger receives the failures of the optional hooks; nil discards.
	Logger *slog.Logger
}

// Analyzer answers the context of a host. It is safe for concurrent use.
type Analyzer struct {
	o Options
}

// New returns an analyzer, or an error when Store is missing.
func New(o Options) (*Analyzer, error) {
	if o.Store == nil {
		return nil, errors.New("contextual: new: Options.Store is required")
	}
	if o.ChangeWindow <= 0 {
		o.ChangeWindow = DefaultChangeWindow
	}
	if o.MaxChanges <= 0 {
		o.MaxChanges = DefaultMaxChanges
	}
	if o.RateInterval <= 0 {
		o.RateInterval = DefaultRateInterval
	}
	if o.BaselineDays <= 0 {
		o.BaselineDays = DefaultBaselineDays
	}
	o.BaselineDays = min(o.BaselineDays, 60)
	if o.UpcomingWithin <= 0 {
		o.UpcomingWithin = DefaultUpcomingWithin
	}
	if o.MaxUpcoming <= 0 {
		o.MaxUpcoming = DefaultMaxUpcoming
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Analyzer{o: o}, nil
}

// Context is what reflex knows about a host at At.
type Context struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
	// Asset is the host's entry of the inventory; nil for an unknown host.
	Asset         *store.Asset      `json:"asset"`
	BusinessHours BusinessHours     `json:"business_hours"`
	Maintenance   MaintenanceStatus `json:"maintenance"`
	Changes       Changes           `json:"changes"`
	Incidents     Incidents         `json:"incidents"`
	EventRate     EventRate         `json:"event_rate"`
}

// BusinessHours says whether At is inside business hours. Configured is
// false when no calendar is set (Inside is then false). NextChange is when
// Inside next flips (omitted when it does not within 400 days).
type BusinessHours struct {
	Configured bool       `json:"configured"`
	Inside     bool       `json:"inside"`
	Holiday    bool       `json:"holiday"`
	Calendar   string     `json:"calendar,omitempty"`
	Timezone   string     `json:"timezone,omitempty"`
	NextChange *time.Time `json:"next_change,omitempty"`
}

// MaintenanceStatus lists the maintenance windows that cover the host as
// a whole (its host, and its asset's service and tags) now and those that
// will within the upcoming horizon, soonest first; Active is whether any
// covers it now. DependenciesInMaintenance names the dependencies that a
// window covers now.
type MaintenanceStatus struct {
	Active                    bool                 `json:"active"`
	Windows                   []maintenance.Window `json:"windows"`
	Upcoming                  []maintenance.Window `json:"upcoming"`
	DependenciesInMaintenance []string             `json:"dependencies_in_maintenance"`
}

// Changes are the recent change events of the host, newest first.
type Changes struct {
	Since  time.Time   `json:"since"`
	Events []ChangeRef `json:"events"`
}

// ChangeRef is a change event, in short: GET /api/v1/events/{id} has the
// rest.
type ChangeRef struct {
	EventID      int64          `json:"event_id"`
	OccurredAt   time.Time      `json:"occurred_at"`
	Title        string         `json:"title"`
	Description  string         `json:"description,omitempty"`
	Service      string         `json:"service,omitempty"`
	SourceSystem string         `json:"source_system"`
	Severity     event.Severity `json:"severity"`
}

// Incidents are the open incidents on the host and on its dependencies
// (an incident on both is listed on the host). Available is false when
// reflex has no incident source wired, or it failed (Error says why).
type Incidents struct {
	Available      bool          `json:"available"`
	Error          string        `json:"error,omitempty"`
	OnHost         []IncidentRef `json:"on_host"`
	OnDependencies []IncidentRef `json:"on_dependencies"`
}

// EventRate is the host's event rate against its baseline. Source is
// "anomaly" (the anomaly detector's state) or "store" (counted from
// stored events: Current is the events of the last Interval, the baseline
// the same interval of each of the previous BaselineDays days, and the
// expected range its mean ± 3 standard deviations, the deviation at least
// the square root of the mean and at least 1, as for Poisson counts).
// Score in [0, 1] is the detector's, or for the store erf(|z|/√2) of the
// z-score; Anomalous is Current outside [ExpectedLow, ExpectedHigh].
type EventRate struct {
	Source       string    `json:"source"`
	Interval     string    `json:"interval"`
	Current      float64   `json:"current"`
	ExpectedLow  float64   `json:"expected_low"`
	ExpectedHigh float64   `json:"expected_high"`
	Baseline     *float64  `json:"baseline_mean,omitempty"`
	BaselineDays int       `json:"baseline_days,omitempty"`
	Score        float64   `json:"score"`
	Anomalous    bool      `json:"anomalous"`
	At           time.Time `json:"at"`
}

// Rate sources.
const (
	RateFromAnomaly = "anomaly"
	RateFromStore   = "store"
)

// Context returns what reflex knows about host at now. A failure of the
// store is an error; a failure of the incidents hook is reported in
// Incidents.Error instead.
func (a *Analyzer) Context(ctx context.Context, host string, now time.Time) (Context, error) {
	host = strings.TrimSpace(host)
	if host == "" {
		return Context{}, errors.New("contextual: context: empty host")
	}
	now = now.UTC()
	c := Context{Host: host, At: now}

	asset, ok, err := a.asset(ctx, host)
	if err != nil {
		return c, err
	}
	if ok {
		c.Asset = &asset
	}
	c.BusinessHours = a.businessHours(now)

	deps := dependencies(c.Asset)
	if c.Maintenance, err = a.maintenance(ctx, host, c.Asset, deps, now); err != nil {
		return c, err
	}
	if c.Changes, err = a.changes(ctx, host, now); err != nil {
		return c, err
	}
	c.Incidents = a.incidents(ctx, host, deps)
	if c.EventRate, err = a.rate(ctx, host, now); err != nil {
		return c, err
	}
	return c, nil
}

func (a *Analyzer) asset(ctx context.Context, host string) (store.Asset, bool, error) {
	if a.o.Assets != nil {
		if as, ok := a.o.Assets.Get(host); ok {
			return as, true, nil
		}
	}
	as, err := a.o.Store.Asset(ctx, host)
	switch {
	case err == nil:
		return as, true, nil
	case errors.Is(err, store.ErrNotFound):
		return store.Asset{}, false, nil
	}
	return store.Asset{}, false, fmt.Errorf("contextual: asset of %s: %w", host, err)
}

func dependencies(as *store.Asset) []string {
	if as == nil {
		return nil
	}
	deps := slices.Clone(as.Dependencies)
	if len(deps) > maxDependencies {
		deps = deps[:maxDependencies]
	}
	return deps
}

func (a *Analyzer) businessHours(now time.Time) BusinessHours {
	cal := a.o.Calendar
	if cal == nil {
		return BusinessHours{}
	}
	b := BusinessHours{Configured: true, Inside: cal.Inside(now), Holiday: cal.Holiday(now), Calendar: cal.String(), Timezone: cal.Location().String()}
	if next, ok := cal.NextChange(now); ok {
		next = next.UTC()
		b.NextChange = &next
	}
	return b
}

// target is a host as a whole, for the windows: its asset's service and
// tags.
func target(host string, as *store.Asset) maintenance.Target {
	t := maintenance.Target{Host: host}
	if as != nil {
		t.Service, t.Tags = as.Service, as.Tags
	}
	return t
}

func (a *Analyzer) maintenance(ctx context.Context, host string, as *store.Asset, deps []string, now time.Time) (MaintenanceStatus, error) {
	m := MaintenanceStatus{Windows: []maintenance.Window{}, Upcoming: []maintenance.Window{}, DependenciesInMaintenance: []string{}}
	list, err := a.o.Store.MaintenanceWindows(ctx, store.MaintenanceQuery{EndsAfter: now, Limit: maxWindows})
	if err != nil {
		return m, fmt.Errorf("contextual: maintenance windows: %w", err)
	}
	t := target(host, as)
	depTargets := make([]maintenance.Target, len(deps))
	for i, d := range deps {
		da, ok, err := a.asset(ctx, d)
		if err != nil {
			return m, err
		}
		if ok {
			depTargets[i] = target(d, &da)
		} else {
			depTargets[i] = target(d, nil)
		}
	}
	for _, w := range list {
		switch {
		case w.Active(now):
			if w.Matches(t) {
				m.Windows = append(m.Windows, w)
			}
			for i, dt := range depTargets {
				if w.Matches(dt) && !slices.Contains(m.DependenciesInMaintenance, deps[i]) {
					m.DependenciesInMaintenance = append(m.DependenciesInMaintenance, deps[i])
				}
			}
		case w.StartsAt.Before(now.Add(a.o.UpcomingWithin)) && len(m.Upcoming) < a.o.MaxUpcoming:
			if w.Matches(t) {
				m.Upcoming = append(m.Upcoming, w)
			}
		}
	}
	m.Active = len(m.Windows) > 0
	return m, nil
}

// Maintenance returns the windows that cover t (an event, or a host as a
// whole) at now: the decision engine's "is this in maintenance".
func (a *Analyzer) Maintenance(ctx context.Context, t maintenance.Target, now time.Time) ([]maintenance.Window, error) {
	list, err := a.o.Store.MaintenanceWindows(ctx, store.MaintenanceQuery{EndsAfter: now, StartsBy: now, Limit: maxWindows})
	if err != nil {
		return nil, fmt.Errorf("contextual: maintenance windows: %w", err)
	}
	out := []maintenance.Window{}
	for _, w := range list {
		if w.Covers(t, now) {
			out = append(out, w)
		}
	}
	return out, nil
}

func (a *Analyzer) changes(ctx context.Context, host string, now time.Time) (Changes, error) {
	ch := Changes{Since: now.Add(-a.o.ChangeWindow), Events: []ChangeRef{}}
	page, err := a.o.Store.Events(ctx, store.EventQuery{Host: host, EventType: ChangeEventType, Since: ch.Since, Until: now.Add(time.Microsecond), Limit: a.o.MaxChanges})
	if err != nil {
		return ch, fmt.Errorf("contextual: change events: %w", err)
	}
	for _, e := range page.Events {
		ch.Events = append(ch.Events, ChangeRef{
			EventID: e.ID, OccurredAt: e.OccurredAt, Title: e.Title, Description: e.Description,
			Service: e.SourceService, SourceSystem: e.SourceSystem, Severity: e.Severity,
		})
	}
	return ch, nil
}

func (a *Analyzer) incidents(ctx context.Context, host string, deps []string) Incidents {
	in := Incidents{OnHost: []IncidentRef{}, OnDependencies: []IncidentRef{}}
	if a.o.OpenIncidents == nil {
		return in
	}
	list, err := a.o.OpenIncidents(ctx, append([]string{host}, deps...))
	if err != nil {
		a.o.Logger.LogAttrs(ctx, slog.LevelWarn, "open incidents failed", slog.String("host", host), slog.Any("err", err))
		in.Error = "open incidents: " + err.Error()
		return in
	}
	in.Available = true
	for _, inc := range list {
		switch {
		case slices.ContainsFunc(inc.Hosts, func(h string) bool { return strings.EqualFold(h, host) }):
			in.OnHost = append(in.OnHost, inc)
		case slices.ContainsFunc(inc.Hosts, func(h string) bool {
			return slices.ContainsFunc(deps, func(d string) bool { return strings.EqualFold(h, d) })
		}):
			in.OnDependencies = append(in.OnDependencies, inc)
		}
	}
	return in
}

func (a *Analyzer) rate(ctx context.Context, host string, now time.Time) (EventRate, error) {
	if a.o.Rate != nil {
		if r, ok := a.o.Rate(host); ok {
			return EventRate{
				Source: RateFromAnomaly, Interval: history.Short(r.Interval), Current: r.Current,
				ExpectedLow: r.ExpectedLow, ExpectedHigh: r.ExpectedHigh, Score: r.Score,
				Anomalous: r.Current < r.ExpectedLow || r.Current > r.ExpectedHigh, At: r.At.UTC(),
			}, nil
		}
	}
	iv, days := a.o.RateInterval, a.o.BaselineDays
	ranges := make([]store.TimeRange, 0, days+1)
	ranges = append(ranges, store.TimeRange{Since: now.Add(-iv), Until: now})
	for k := 1; k <= days; k++ {
		end := now.Add(-time.Duration(k) * 24 * time.Hour)
		ranges = append(ranges, store.TimeRange{Since: end.Add(-iv), Until: end})
	}
	counts, err := a.o.Store.EventCounts(ctx, host, ranges)
	if err != nil {
		return EventRate{}, fmt.Errorf("contextual: event counts: %w", err)
	}
	r := BaselineRate(float64(counts[0]), toFloats(counts[1:]))
	r.Interval, r.At, r.BaselineDays = history.Short(iv), now, days
	return r, nil
}

func toFloats(ns []int64) []float64 {
	out := make([]float64, len(ns))
	for i, n := range ns {
		out[i] = float64(n)
	}
	return out
}

// BaselineRate compares current with the baseline counts: the expected
// range is mean ± 3σ, σ the baseline's standard deviation but at least
// √mean and 1; the score is erf(|z|/√2).
func BaselineRate(current float64, baseline []float64) EventRate {
	var mean float64
	for _, v := range baseline {
		mean += v
	}
	if len(baseline) > 0 {
		mean /= float64(len(baseline))
	}
	var ss float64
	for _, v := range baseline {
		ss += (v - mean) * (v - mean)
	}
	sd := 0.0
	if len(baseline) > 1 {
		sd = math.Sqrt(ss / float64(len(baseline)-1))
	}
	sd = max(sd, math.Sqrt(mean), 1)
	z := (current - mean) / sd
	r := EventRate{
		Source: RateFromStore, Current: current,
		ExpectedLow: max(0, mean-rateSigmas*sd), ExpectedHigh: mean + rateSigmas*sd,
		Baseline: &mean, Score: math.Erf(math.Abs(z) / math.Sqrt2),
	}
	r.Anomalous = current < r.ExpectedLow || current > r.ExpectedHigh
	return r
}
