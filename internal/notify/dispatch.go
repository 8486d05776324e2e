package notify

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Attempt statuses, as GET /api/v1/notifications reports them.
const (
	StatusSent     = "sent"     // the receiver took the notification
	StatusFailed   = "failed"   // an attempt failed (retried when the error is retryable)
	StatusRefused  = "refused"  // the outbound guard refused the connection; not retried
	StatusSilenced = "silenced" // a silence covered the alerts; nothing was sent
)

// Attempt is the record of one delivery attempt of a group's notification
// to its receiver, or of alerts a silence kept from it.
type Attempt struct {
	Receiver string `json:"receiver"`
	GroupKey string `json:"group_key"`
	Status   string `json:"status"`
	// Attempt counts the attempts of one flush of the group from 1; it is 0
	// for silenced alerts, which are not attempted.
	Attempt int `json:"attempt"`
	// Error is the failure, with the receiver's secrets and URLs replaced
	// by SecretPlaceholder, at most 512 bytes.
	Error  string    `json:"error,omitempty"`
	Alerts int       `json:"alerts"`
	At     time.Time `json:"at"`
	// EventIDs and RuleIDs are those of the alerts, each once, in order.
	EventIDs []int64 `json:"event_ids"`
	RuleIDs  []int64 `json:"rule_ids"`
}

// DispatcherOptions configure a Dispatcher. Senders is required; every
// other field has a default.
type DispatcherOptions struct {
	// Policy routes the alerts; nil until SetPolicy drops every alert
	// (counted as no_policy).
	Policy *Policy
	// Senders returns the Sender of a receiver. It is called at every
	// delivery, from several goroutines at once, and should be cheap (a
	// lookup). An error is recorded as a failed attempt; when Retryable,
	// the alerts are tried again at the group's next flush.
	Senders func(receiver string) (Sender, error)
	// Silences returns the silences at now (the active ones at least). It
	// is called at every flush, from several goroutines at once, and
	// should be cheap (an in-memory list).
	Silences func(now time.Time) []Silence
	// Record receives every attempt and its result. It is called from the
	// dispatcher's goroutines, several at once, and should not block long.
	Record func(Attempt)
	// Now is the time of records, expiry and silences (time.Now). Timers
	// use the time package: test under testing/synctest.
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics // NewMetrics(nil) when nil
	// MaxGroups bounds the groups held (10,000): a new group beyond it
	// evicts the oldest group that has nothing pending (else the oldest),
	// whose pending alerts are counted as dropped.
	MaxGroups int
	// MaxAlertsPerGroup bounds the alerts of a group (1,000): a new alert
	// beyond it pushes out the group's oldest, counted as dropped.
	MaxAlertsPerGroup int
	// AlertTTL is how long an alert stays in its group after it was
	// dispatched (24h): it is repeated every repeat_interval meanwhile.
	// A group whose alerts have all expired is removed.
	AlertTTL time.Duration
	// Retries of a retryable failure within one flush: backoff from
	// RetryMin (1s) doubling to RetryMax (1m), with jitter (each wait is
	// between half and all of its step), MaxAttempts attempts in all (6).
	// Alerts still unsent after them are tried again at the next flush.
	RetryMin, RetryMax time.Duration
	MaxAttempts        int
	// SendTimeout bounds one attempt (30s).
	SendTimeout time.Duration
	// StopFlush bounds the last delivery at a stop (5s): the alerts that
	// groups hold and have not notified yet (waiting for their
	// group_wait or group_interval) are sent at once, once, rather than
	// dropped; what is still unsent after it is counted as dropped.
	StopFlush time.Duration
}

// Defaults of DispatcherOptions.
const (
	DefaultMaxGroups         = 10_000
	DefaultMaxAlertsPerGroup = 1_000
	DefaultAlertTTL          = 24 * time.Hour
	DefaultRetryFirst        = time.Second
	DefaultRetryMax          = time.Minute
	DefaultMaxAttempts       = 6
	DefaultSendTimeout       = 30 * time.Second
	DefaultStopFlush         = 5 * time.Second
)

const maxErrorLen = 512

// Dispatcher groups alerts and sends each group's notification to its
// receiver, as Alertmanager does: the alerts of a new group wait the
// route's group_wait and go out as one notification; alerts that join the
// group later go out group_interval after the previous flush (only when
// there are new ones); with nothing new, the group is sent again, all of
// its alerts, once repeat_interval has passed since its last notification
// (checked at each group_interval). A group is one route and the values of
// its group_by labels.
//
// Each group has one goroutine, owned by Run, and at most one delivery in
// flight. A Dispatcher is safe for concurrent use.
type Dispatcher struct {
	senders     func(string) (Sender, error)
	silences    func(time.Time) []Silence
	record      func(Attempt)
	now         func() time.Time
	log         *slog.Logger
	m           *Metrics
	maxGroups   int
	maxAlerts   int
	ttl         time.Duration
	retryMin    time.Duration
	retryMax    time.Duration
	maxAttempts int
	sendTimeout time.Duration
	stopFlush   time.Duration
	jitter      func(d time.Duration) time.Duration // the wait of a backoff step d

	mu        sync.Mutex
	policy    *Policy
	groups    map[string]*group // by groupID
	order     *list.List        // *group, oldest first
	state     runState
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
}

type runState uint8

const (
	stateNew runState = iota
	stateRunning
	stateStopped
)

// group is an aggregation group. Its fields are guarded by Dispatcher.mu.
type group struct {
	id        string // receiver, NUL, group key
	groupKey  string
	receiver  string
	route     *Route
	alerts    []*entry // oldest first
	ids       map[alertID]bool
	elem      *list.Element
	flushed   bool      // the first flush happened
	lastFlush time.Time // the last flush that notified (or silenced, or gave up on) alerts
	cancel    context.CancelFunc
	dropped   bool // an alert was pushed out (logged once)
}

type entry struct {
	alert    Alert
	id       alertID
	arrived  time.Time
	notified bool // sent, silenced or given up on: not pending
}

// alertID identifies a firing, so that a redelivered alert is not
// notified twice. Alerts without an event id are not deduplicated.
type alertID struct{ rule, event int64 }

func (e *entry) dedup() bool { return e.id.event != 0 }

// NewDispatcher returns a Dispatcher; Run starts it.
func NewDispatcher(opts DispatcherOptions) (*Dispatcher, error) {
	if opts.Senders == nil {
		return nil, errors.New("notify: dispatcher: Senders is required")
	}
	d := &Dispatcher{
		senders:     opts.Senders,
		silences:    opts.Silences,
		record:      opts.Record,
		now:         opts.Now,
		log:         opts.Logger,
		m:           opts.Metrics,
		maxGroups:   positive(opts.MaxGroups, DefaultMaxGroups),
		maxAlerts:   positive(opts.MaxAlertsPerGroup, DefaultMaxAlertsPerGroup),
		ttl:         positive(opts.AlertTTL, DefaultAlertTTL),
		retryMin:    positive(opts.RetryMin, DefaultRetryFirst),
		retryMax:    positive(opts.RetryMax, DefaultRetryMax),
		maxAttempts: positive(opts.MaxAttempts, DefaultMaxAttempts),
		sendTimeout: positive(opts.SendTimeout, DefaultSendTimeout),
		stopFlush:   positive(opts.StopFlush, DefaultStopFlush),
		jitter:      equalJitter,
		policy:      opts.Policy,
		groups:      map[string]*group{},
		order:       list.New(),
		stopCh:      make(chan struct{}),
		done:        make(chan struct{}),
	}
	d.retryMax = max(d.retryMax, d.retryMin)
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "notify")
	if d.m == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		d.m = m
	}
	return d, nil
}

func positive[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// equalJitter waits between half and all of d.
func equalJitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1) //nolint:gosec // jitter, not a secret
}

// Policy returns the policy in use (nil for none).
func (d *Dispatcher) Policy() *Policy {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.policy
}

// Dispatch routes a and adds it to the group of each route it reaches. It
// does not block on delivery. An alert the group already holds (same rule
// and event id) is not added again. After Stop, or without a policy, a is
// dropped and counted.
func (d *Dispatcher) Dispatch(a Alert) {
	d.m.alerts.Inc()
	a.Labels = maps.Clone(a.Labels)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.state == stateStopped:
		d.m.dropped.WithLabelValues(dropStopped).Inc()
		d.log.Warn("alert dispatched after stop, dropped", "rule_id", a.RuleID, "event_id", a.EventID)
		return
	case d.policy == nil:
		d.m.dropped.WithLabelValues(dropNoPolicy).Inc()
		d.log.Debug("no notification policy, alert dropped", "rule_id", a.RuleID, "event_id", a.EventID)
		return
	}
	now := d.now()
	for _, r := range d.policy.Route(a) {
		g := d.groupFor(r, r.groupKey(&a))
		d.add(g, &entry{alert: a, id: alertID{a.RuleID, a.EventID}, arrived: now})
	}
	d.m.groups.Set(float64(len(d.groups)))
}

// groupFor returns the group of route r and group key gk, made and
// started when there is none. d.mu is held.
func (d *Dispatcher) groupFor(r *Route, gk string) *group {
	id := r.Receiver + "\x00" + gk
	if g := d.groups[id]; g != nil {
		return g
	}
	if len(d.groups) >= d.maxGroups {
		d.evict()
	}
	g := &group{id: id, groupKey: gk, receiver: r.Receiver, route: r, ids: map[alertID]bool{}}
	d.groups[id] = g
	g.elem = d.order.PushBack(g)
	d.start(g)
	return g
}

// add adds e to g, pushing out g's oldest alert when g is full. d.mu is
// held.
func (d *Dispatcher) add(g *group, e *entry) {
	if e.dedup() && g.ids[e.id] {
		d.m.dropped.WithLabelValues(dropDuplicate).Inc()
		return
	}
	if len(g.alerts) >= d.maxAlerts {
		old := g.alerts[0]
		g.alerts = slices.Delete(g.alerts, 0, 1)
		delete(g.ids, old.id)
		d.m.dropped.WithLabelValues(dropMaxAlerts).Inc()
		if !g.dropped {
			g.dropped = true
			d.log.Warn("alert group full, its oldest alerts are dropped",
				"receiver", g.receiver, "group_key", g.groupKey, "max_alerts_per_group", d.maxAlerts)
		}
	}
	g.alerts = append(g.alerts, e)
	if e.dedup() {
		g.ids[e.id] = true
	}
}

// evictScan bounds the search for an idle group to evict.
const evictScan = 64

// evict removes a group to make room: the oldest with nothing pending
// among the oldest evictScan, else the oldest. d.mu is held.
func (d *Dispatcher) evict() {
	front := d.order.Front()
	if front == nil {
		return
	}
	victim := front.Value.(*group)
	for e, i := front, 0; e != nil && i < evictScan; e, i = e.Next(), i+1 {
		if g := e.Value.(*group); g.pending() == 0 {
			victim = g
			break
		}
	}
	n := victim.pending()
	d.m.dropped.WithLabelValues(dropMaxGroups).Add(float64(n))
	d.m.evicted.Inc()
	d.log.Warn("too many alert groups, a group is dropped", "receiver", victim.receiver,
		"group_key", victim.groupKey, "pending_alerts", n, "max_groups", d.maxGroups)
	d.remove(victim)
}

// remove forgets g and stops its goroutine. d.mu is held.
func (d *Dispatcher) remove(g *group) {
	if d.groups[g.id] == g {
		delete(d.groups, g.id)
	}
	if g.elem != nil {
		d.order.Remove(g.elem)
		g.elem = nil
	}
	if g.cancel != nil {
		g.cancel()
	}
}

func (g *group) pending() int {
	n := 0
	for _, e := range g.alerts {
		if !e.notified {
			n++
		}
	}
	return n
}

// start runs g's goroutine when the dispatcher runs. d.mu is held.
func (d *Dispatcher) start(g *group) {
	if d.state != stateRunning || g.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	g.cancel = cancel
	d.wg.Add(1)
	go d.runGroup(ctx, g, g.route.GroupWait)
}

// runGroup flushes g after wait, then every group_interval, until g is
// removed or the dispatcher stops. As in Alertmanager, the next tick is
// set before a flush delivers, so that ticks keep their pace whatever a
// delivery takes.
func (d *Dispatcher) runGroup(ctx context.Context, g *group, wait time.Duration) {
	defer d.wg.Done()
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dl, next, alive := d.prepare(g)
		if !alive {
			return
		}
		t.Reset(next)
		if dl != nil {
			d.finish(g, dl, d.deliver(ctx, dl))
		}
	}
}

// item is an alert of a flush, with its entry to mark.
type item struct {
	e *entry
	a Alert
}

// delivery is what a flush delivers.
type delivery struct {
	receiver string
	groupKey string
	secrets  []string // of the receiver, kept out of errors
	items    []item
	at       time.Time
}

// prepare expires g's old alerts and returns its delivery: its pending
// alerts, or all of them when a repeat is due, or nil for nothing to do;
// and the time to the next flush. It reports false when g is gone.
func (d *Dispatcher) prepare(g *group) (*delivery, time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.groups[g.id] != g {
		return nil, 0, false
	}
	now := d.now()
	d.expire(g, now)
	if len(g.alerts) == 0 {
		d.remove(g)
		d.m.groups.Set(float64(len(d.groups)))
		return nil, 0, false
	}
	next := g.route.GroupInterval
	dl := d.newDelivery(g, now)
	if len(dl.items) == 0 && g.flushed && !now.Before(g.lastFlush.Add(g.route.RepeatInterval)) {
		for _, e := range g.alerts {
			dl.items = append(dl.items, item{e, e.alert})
		}
	}
	g.flushed = true
	if len(dl.items) == 0 {
		return nil, next, true
	}
	return dl, next, true
}

// newDelivery is g's delivery at now of its alerts not yet notified, with
// its receiver's secrets. d.mu is held.
func (d *Dispatcher) newDelivery(g *group, now time.Time) *delivery {
	dl := &delivery{receiver: g.receiver, groupKey: g.groupKey, at: now}
	for _, e := range g.alerts {
		if !e.notified {
			dl.items = append(dl.items, item{e, e.alert})
		}
	}
	if d.policy != nil {
		if r, ok := d.policy.Receiver(g.receiver); ok {
			dl.secrets = urlSecrets(receiverSecrets(r))
		}
	}
	return dl
}

// finish marks the entries a delivery is done with.
func (d *Dispatcher) finish(g *group, dl *delivery, handled []*entry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range handled {
		e.notified = true
	}
	if len(handled) > 0 {
		g.lastFlush = dl.at
	}
}

// expire drops g's alerts older than the TTL; pending ones are counted.
// d.mu is held.
func (d *Dispatcher) expire(g *group, now time.Time) {
	g.alerts = slices.DeleteFunc(g.alerts, func(e *entry) bool {
		if now.Before(e.arrived.Add(d.ttl)) {
			return false
		}
		if !e.notified {
			d.m.dropped.WithLabelValues(dropExpired).Inc()
		}
		delete(g.ids, e.id)
		return true
	})
}

// deliver records the silenced alerts of dl and sends the others. It
// returns the entries done with: sent, silenced or given up on.
func (d *Dispatcher) deliver(ctx context.Context, dl *delivery) []*entry {
	muted := d.activeSilences(dl.at)
	var send, silenced []item
	for _, it := range dl.items {
		if slices.ContainsFunc(muted, func(m Matchers) bool { return m.Matches(it.a) }) {
			silenced = append(silenced, it)
		} else {
			send = append(send, it)
		}
	}
	var done []*entry
	if len(silenced) > 0 {
		d.recordAttempt(dl, StatusSilenced, 0, nil, silenced)
		done = appendEntries(done, silenced)
	}
	if len(send) > 0 && d.send(ctx, dl, send) {
		done = appendEntries(done, send)
	}
	return done
}

func appendEntries(dst []*entry, items []item) []*entry {
	for _, it := range items {
		dst = append(dst, it.e)
	}
	return dst
}

// activeSilences are the matchers of the silences active at now.
func (d *Dispatcher) activeSilences(now time.Time) []Matchers {
	if d.silences == nil {
		return nil
	}
	var out []Matchers
	for _, s := range d.silences(now) {
		if !s.Active(now) || len(s.Matchers) == 0 {
			continue
		}
		if m, err := matchersFromAny(s.Matchers); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// send delivers items in one notification, retrying retryable failures
// with backoff. It reports whether the alerts are done with (sent,
// refused, or failed for good); false leaves them pending for the next
// flush.
func (d *Dispatcher) send(ctx context.Context, dl *delivery, items []item) bool {
	n := Notification{Receiver: dl.receiver, Status: "firing", GroupKey: dl.groupKey, Alerts: make([]Alert, len(items))}
	for i, it := range items {
		n.Alerts[i] = it.a
	}
	s, err := d.senders(dl.receiver)
	if err == nil && s == nil {
		err = &PermanentError{Err: fmt.Errorf("no sender for receiver %q", dl.receiver)}
	}
	if err != nil {
		d.recordAttempt(dl, StatusFailed, 1, err, items)
		return !Retryable(err)
	}
	for attempt := 1; ; attempt++ {
		err := d.attempt(ctx, s, n)
		switch {
		case err == nil:
			d.recordAttempt(dl, StatusSent, attempt, nil, items)
			return true
		case errors.Is(err, ErrRefused):
			d.recordAttempt(dl, StatusRefused, attempt, err, items)
			return true
		}
		d.recordAttempt(dl, StatusFailed, attempt, err, items)
		switch {
		case ctx.Err() != nil: // stopping, or the group is gone
			return false
		case !Retryable(err):
			return true
		case attempt >= d.maxAttempts:
			return false
		}
		if !sleep(ctx, d.jitter(d.backoff(attempt))) {
			return false
		}
	}
}

// attempt makes one bounded Send; a panic in the Sender is a permanent
// failure.
func (d *Dispatcher) attempt(ctx context.Context, s Sender, n Notification) (err error) {
	ctx, cancel := context.WithTimeout(ctx, d.sendTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		d.m.sendSeconds.WithLabelValues(n.Receiver).Observe(time.Since(start).Seconds())
		if p := recover(); p != nil {
			err = &PermanentError{Err: fmt.Errorf("sender panicked: %v", p)}
		}
	}()
	return s.Send(ctx, n)
}

// backoff is the step before attempt+1: RetryMin doubled per attempt, at
// most RetryMax.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	step := d.retryMin
	for i := 1; i < attempt && step < d.retryMax; i++ {
		step *= 2
	}
	return min(step, d.retryMax)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (d *Dispatcher) recordAttempt(dl *delivery, status string, attempt int, err error, items []item) {
	a := Attempt{
		Receiver: dl.receiver,
		GroupKey: dl.groupKey,
		Status:   status,
		Attempt:  attempt,
		Alerts:   len(items),
		At:       d.now(),
		EventIDs: []int64{},
		RuleIDs:  []int64{},
	}
	for _, it := range items {
		if !slices.Contains(a.EventIDs, it.a.EventID) {
			a.EventIDs = append(a.EventIDs, it.a.EventID)
		}
		if !slices.Contains(a.RuleIDs, it.a.RuleID) {
			a.RuleIDs = append(a.RuleIDs, it.a.RuleID)
		}
	}
	if err != nil {
		a.Error = scrub(err.Error(), dl.secrets)
	}
	d.m.notifications.WithLabelValues(dl.receiver, status).Inc()
	switch status {
	case StatusSent:
		d.log.Debug("notification sent", "receiver", a.Receiver, "group_key", a.GroupKey, "alerts", a.Alerts, "attempt", attempt)
	case StatusSilenced:
		d.log.Debug("alerts silenced", "receiver", a.Receiver, "group_key", a.GroupKey, "alerts", a.Alerts)
	default:
		d.log.Warn("notification not sent", "receiver", a.Receiver, "group_key", a.GroupKey, "alerts", a.Alerts,
			"attempt", attempt, "status", status, "err", a.Error)
	}
	if d.record != nil {
		d.record(a)
	}
}

// urlSecrets adds to secrets the forms of its URLs an error may quote: as
// Go prints them, and their paths and queries.
func urlSecrets(secrets []string) []string {
	out := slices.Clone(secrets)
	for _, s := range secrets {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			continue
		}
		out = append(out, u.String(), u.Redacted())
		// Parts long enough to be a token, not a word of the message.
		pw, _ := u.User.Password()
		for _, part := range []string{u.EscapedPath(), u.RawQuery, pw} {
			if len(part) >= 8 {
				out = append(out, part)
			}
		}
	}
	// Longest first, so that a URL is replaced whole before its path.
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return slices.Compact(out)
}

// scrub replaces secrets in msg and bounds its length.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, SecretPlaceholder)
		}
	}
	if len(msg) > maxErrorLen {
		msg = strings.ToValidUTF8(msg[:maxErrorLen], "") + "..."
	}
	return msg
}

// SetPolicy replaces the policy. The alerts held are routed again: an
// alert whose group (route, receiver, group_by values) is still there
// stays in it, with the group's timing; an alert that moves to a new
// group keeps whether it was notified, so that alerts already sent are
// not sent again (except as repeats) and pending ones go where the new
// policy says. With a nil policy the held alerts are dropped.
func (d *Dispatcher) SetPolicy(p *Policy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.policy = p
	type held struct {
		g       *group
		entries []*entry
	}
	var old []held
	prev := d.groups
	for e := d.order.Front(); e != nil; e = e.Next() {
		g := e.Value.(*group)
		old = append(old, held{g, g.alerts})
	}
	d.groups = make(map[string]*group, len(prev))
	d.order = list.New()
	kept := map[*group]bool{}
	var created []*group
	now := d.now()
	for _, h := range old {
		for _, en := range h.entries {
			if p == nil {
				if !en.notified {
					d.m.dropped.WithLabelValues(dropNoPolicy).Inc()
				}
				continue
			}
			for _, r := range p.Route(en.alert) {
				gk := r.groupKey(&en.alert)
				id := r.Receiver + "\x00" + gk
				ng := d.groups[id]
				if ng == nil {
					if pg := prev[id]; pg != nil && !kept[pg] {
						kept[pg] = true
						ng = pg
						ng.route, ng.alerts, ng.ids = r, nil, map[alertID]bool{}
						ng.elem = d.order.PushBack(ng)
						d.groups[id] = ng
					} else {
						if len(d.groups) >= d.maxGroups {
							d.evict()
						}
						ng = &group{id: id, groupKey: gk, receiver: r.Receiver, route: r, ids: map[alertID]bool{}}
						ng.elem = d.order.PushBack(ng)
						d.groups[id] = ng
						created = append(created, ng)
					}
				}
				e := en
				if ng != h.g {
					e = &entry{alert: en.alert, id: en.id, arrived: en.arrived, notified: en.notified}
				}
				d.add(ng, e)
			}
		}
	}
	for _, h := range old {
		if !kept[h.g] && h.g.cancel != nil {
			h.g.cancel()
		}
	}
	for _, g := range created {
		if d.groups[g.id] != g {
			continue // evicted meanwhile
		}
		if g.pending() == 0 { // holds sent alerts for their repeats only
			g.flushed, g.lastFlush = true, now
		}
		d.start(g)
	}
	d.m.groups.Set(float64(len(d.groups)))
}

// ErrRan is returned by Run on a Dispatcher that already ran or stopped.
var ErrRan = errors.New("notify: dispatcher already ran")

// Run runs the groups' timers and deliveries until ctx is done or Stop is
// called; alerts dispatched before Run wait for it. At the end deliveries
// in flight are canceled, the alerts not yet notified are sent once more,
// at once, within StopFlush, and what is still pending then is counted as
// dropped; on return every goroutine of the dispatcher has ended. Run
// returns nil, or ErrRan when called a second time.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.state != stateNew {
		d.mu.Unlock()
		return ErrRan
	}
	d.state = stateRunning
	d.runCtx, d.cancelRun = context.WithCancel(ctx)
	for e := d.order.Front(); e != nil; e = e.Next() {
		d.start(e.Value.(*group))
	}
	d.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-d.stopCh:
	}
	d.mu.Lock()
	d.state = stateStopped
	d.cancelRun()
	d.mu.Unlock()
	d.wg.Wait()
	d.flushPending()
	d.mu.Lock()
	d.dropPending(dropStopped)
	d.mu.Unlock()
	close(d.done)
	return nil
}

// flushPending delivers, at once and once (retries within StopFlush), the
// alerts each group holds and has not notified, so that a stop does not
// drop what waited for a group_wait or a group_interval. The groups'
// goroutines have ended.
func (d *Dispatcher) flushPending() {
	type flush struct {
		g  *group
		dl *delivery
	}
	var flushes []flush
	d.mu.Lock()
	now := d.now()
	for el := d.order.Front(); el != nil; el = el.Next() {
		g := el.Value.(*group)
		if dl := d.newDelivery(g, now); len(dl.items) > 0 {
			flushes = append(flushes, flush{g, dl})
		}
	}
	d.mu.Unlock()
	if len(flushes) == 0 {
		return
	}
	d.log.Info("notification router stopping: sending the alerts not yet notified", "groups", len(flushes), "within", d.stopFlush)
	ctx, cancel := context.WithTimeout(context.Background(), d.stopFlush)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range flushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.finish(f.g, f.dl, d.deliver(ctx, f.dl))
		}()
	}
	wg.Wait()
}

// Stop stops the dispatcher and waits until Run has returned. It is
// idempotent; after it, Dispatch drops alerts. Stopping a dispatcher that
// never ran drops the alerts it holds (counted as not_running).
func (d *Dispatcher) Stop() {
	d.stopOnce.Do(func() {
		close(d.stopCh)
		d.mu.Lock()
		if d.state == stateNew {
			d.state = stateStopped
			d.dropPending(dropUnscheduled)
			close(d.done)
		}
		d.mu.Unlock()
	})
	<-d.done
}

// dropPending counts and logs the pending alerts held at a stop. d.mu is
// held.
func (d *Dispatcher) dropPending(reason string) {
	n := 0
	for _, g := range d.groups {
		n += g.pending()
	}
	if n > 0 {
		d.m.dropped.WithLabelValues(reason).Add(float64(n))
		d.log.Warn("notification router stopped with alerts not yet notified", "alerts", n)
	}
}
