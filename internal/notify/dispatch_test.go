package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// fakeSender records what it is sent; fail, when set, decides the result
// of each call (numbered from 1).
type fakeSender struct {
	mu    sync.Mutex
	calls []time.Time
	sent  []sentNotification
	fail  func(call int, n Notification) error
	block bool // wait for the context to end
}

type sentNotification struct {
	at time.Time
	n  Notification
}

func (f *fakeSender) Send(ctx context.Context, n Notification) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Now())
	if f.fail != nil {
		if err := f.fail(len(f.calls), n); err != nil {
			return err
		}
	}
	f.sent = append(f.sent, sentNotification{time.Now(), n})
	return nil
}

func (f *fakeSender) notifications() []sentNotification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentNotification(nil), f.sent...)
}

func (f *fakeSender) callTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

// harness runs a Dispatcher inside a synctest bubble.
type harness struct {
	t        *testing.T
	d        *Dispatcher
	start    time.Time
	senders  map[string]*fakeSender
	m        *Metrics
	mu       sync.Mutex
	attempts []Attempt
	silences []Silence
	runDone  chan error
}

// newHarness makes a dispatcher for the policy and runs it; call stop
// before the bubble ends. opts may change the options.
func newHarness(t *testing.T, policy string, opts func(*DispatcherOptions)) *harness {
	t.Helper()
	p := mustPolicy(t, policy)
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	h := &harness{t: t, start: time.Now(), senders: map[string]*fakeSender{}, m: m, runDone: make(chan error, 1)}
	for _, name := range p.ReceiverNames() {
		h.senders[name] = &fakeSender{}
	}
	o := DispatcherOptions{
		Policy: p,
		Senders: func(receiver string) (Sender, error) {
			s, ok := h.senders[receiver]
			if !ok {
				return nil, fmt.Errorf("no receiver %q", receiver)
			}
			return s, nil
		},
		Silences: func(time.Time) []Silence {
			h.mu.Lock()
			defer h.mu.Unlock()
			return append([]Silence(nil), h.silences...)
		},
		Record: func(a Attempt) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.attempts = append(h.attempts, a)
		},
		Metrics: m,
	}
	if opts != nil {
		opts(&o)
	}
	h.d, err = NewDispatcher(o)
	require.NoError(t, err)
	return h
}

func (h *harness) run() *harness {
	go func() { h.runDone <- h.d.Run(context.Background()) }()
	synctest.Wait()
	return h
}

func (h *harness) stop() {
	h.d.Stop()
	require.NoError(h.t, <-h.runDone)
}

// at sleeps until start+offset and lets the dispatcher settle.
func (h *harness) at(offset time.Duration) {
	h.t.Helper()
	d := time.Until(h.start.Add(offset))
	require.GreaterOrEqual(h.t, d, time.Duration(0), "at %s: already past", offset)
	time.Sleep(d)
	synctest.Wait()
}

func (h *harness) records() []Attempt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Attempt(nil), h.attempts...)
}

func (h *harness) silence(s Silence) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.silences = append(h.silences, s)
}

func (h *harness) dropped(reason string) float64 {
	return value(h.m.dropped.WithLabelValues(reason))
}

// value reads a counter or a gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func alert(event int64, host string) Alert {
	return Alert{
		RuleID: 1, RuleName: "High CPU Alert", EventID: event, SourceHost: host, Severity: "high",
		Title: fmt.Sprintf("cpu on %s", host),
		Labels: map[string]string{
			"rule": "High CPU Alert", "rule_id": "1", "source_host": host, "severity": "high",
			"event_type": "threshold_breach", "source": "prometheus", "service": "api",
		},
	}
}

func eventIDs(n Notification) []int64 {
	var ids []int64
	for _, a := range n.Alerts {
		ids = append(ids, a.EventID)
	}
	return ids
}

const onePolicy = `
receivers: [{name: ops, webhook: {url: "https://hooks.example/ops"}}]
route: {receiver: ops, group_by: [rule]}
`

func TestDispatchGroupWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil).run()
		defer h.stop()
		ops := h.senders["ops"]

		h.d.Dispatch(alert(1, "db-01"))
		h.at(10 * time.Second)
		h.d.Dispatch(alert(2, "db-02"))
		h.at(20 * time.Second)
		h.d.Dispatch(alert(3, "db-03"))
		h.at(30*time.Second - time.Millisecond)
		require.Empty(t, ops.notifications(), "nothing before group_wait")

		h.at(30 * time.Second)
		got := ops.notifications()
		require.Len(t, got, 1, "one notification for the group")
		require.Equal(t, h.start.Add(30*time.Second), got[0].at)
		n := got[0].n
		require.Equal(t, "ops", n.Receiver)
		require.Equal(t, "firing", n.Status)
		require.Equal(t, `{}:{rule="High CPU Alert"}`, n.GroupKey)
		require.Equal(t, []int64{1, 2, 3}, eventIDs(n))
		require.Equal(t, "cpu on db-02", n.Alerts[1].Title)

		require.Equal(t, []Attempt{{
			Receiver: "ops", GroupKey: n.GroupKey, Status: StatusSent, Attempt: 1, Alerts: 3,
			At: h.start.Add(30 * time.Second), EventIDs: []int64{1, 2, 3}, RuleIDs: []int64{1},
		}}, h.records())
		require.Equal(t, 1.0, value(h.m.notifications.WithLabelValues("ops", StatusSent)))
		require.Equal(t, 3.0, value(h.m.alerts))
		require.Equal(t, 1.0, value(h.m.groups))
	})
}

func TestDispatchGroupInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil).run()
		defer h.stop()
		ops := h.senders["ops"]

		h.d.Dispatch(alert(1, "db-01"))
		h.at(30 * time.Second)
		require.Len(t, ops.notifications(), 1)

		// A later alert waits for group_interval after the first flush.
		h.at(time.Minute)
		h.d.Dispatch(alert(2, "db-01"))
		h.d.Dispatch(alert(3, "db-02"))
		h.at(5*time.Minute + 30*time.Second - time.Millisecond)
		require.Len(t, ops.notifications(), 1)
		h.at(5*time.Minute + 30*time.Second)
		got := ops.notifications()
		require.Len(t, got, 2)
		require.Equal(t, []int64{2, 3}, eventIDs(got[1].n), "only the new alerts")

		// Nothing new: no notification at the following intervals.
		h.at(20*time.Minute + 30*time.Second)
		require.Len(t, ops.notifications(), 2)
	})
}

func TestDispatchRepeatInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		policy := `
receivers: [{name: ops, webhook: {url: "https://hooks.example/ops"}}]
route: {receiver: ops, group_by: [rule], group_interval: 1m, repeat_interval: 10m}
`
		h := newHarness(t, policy, func(o *DispatcherOptions) { o.AlertTTL = 35 * time.Minute }).run()
		defer h.stop()
		ops := h.senders["ops"]

		h.d.Dispatch(alert(1, "db-01"))
		h.at(2 * time.Minute)
		h.d.Dispatch(alert(2, "db-02"))
		h.at(2*time.Minute + 30*time.Second)
		got := ops.notifications()
		require.Len(t, got, 2)
		require.Equal(t, h.start.Add(30*time.Second), got[0].at)
		require.Equal(t, []int64{2}, eventIDs(got[1].n))

		// repeat_interval after the last notification, at a group_interval
		// tick: every alert of the group.
		h.at(12*time.Minute + 30*time.Second - time.Millisecond)
		require.Len(t, ops.notifications(), 2)
		h.at(12*time.Minute + 30*time.Second)
		got = ops.notifications()
		require.Len(t, got, 3)
		require.Equal(t, []int64{1, 2}, eventIDs(got[2].n))
		h.at(22*time.Minute + 30*time.Second)
		got = ops.notifications()
		require.Len(t, got, 4)
		require.Equal(t, h.start.Add(22*time.Minute+30*time.Second), got[3].at)

		// Alert 1 expires at 35m, alert 2 at 37m: the repeat at 32m30s
		// holds both; then the group is gone.
		h.at(32*time.Minute + 30*time.Second)
		require.Len(t, ops.notifications(), 5)
		h.at(37*time.Minute + 30*time.Second)
		require.Equal(t, 0.0, value(h.m.groups))
		h.at(2 * time.Hour)
		require.Len(t, ops.notifications(), 5, "no repeats once the alerts expired")
		require.Equal(t, 0.0, h.dropped(dropExpired), "expired alerts had been sent")
	})
}

func TestDispatchGroupBy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		policy := `
receivers: [{name: ops, webhook: {url: "https://hooks.example/ops"}}]
route: {receiver: ops, group_by: [rule, source_host]}
`
		h := newHarness(t, policy, nil).run()
		defer h.stop()

		h.d.Dispatch(alert(1, "db-01"))
		h.d.Dispatch(alert(2, "db-02"))
		h.d.Dispatch(alert(3, "db-01"))
		h.at(30 * time.Second)
		got := map[string][]int64{}
		for _, s := range h.senders["ops"].notifications() {
			got[s.n.GroupKey] = eventIDs(s.n)
		}
		require.Equal(t, map[string][]int64{
			`{}:{rule="High CPU Alert",source_host="db-01"}`: {1, 3},
			`{}:{rule="High CPU Alert",source_host="db-02"}`: {2},
		}, got)
	})
}

func TestDispatchRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, routingPolicy, nil).run()
		defer h.stop()

		deploy := Alert{EventID: 1, RuleID: 2, Labels: map[string]string{"rule": "deploys", "event_type": "deploy", "service": "nginx"}}
		dbCrit := Alert{EventID: 2, RuleID: 3, SourceHost: "db-01",
			Labels: map[string]string{"rule": "db down", "service": "postgres", "severity": "critical"}}
		other := Alert{EventID: 3, RuleID: 4, Labels: map[string]string{"rule": "disk", "service": "redis"}}
		h.d.Dispatch(deploy)
		h.d.Dispatch(dbCrit)
		h.d.Dispatch(other)
		h.at(30 * time.Second)

		count := map[string][]int64{}
		for name, s := range h.senders {
			for _, n := range s.notifications() {
				count[name] = append(count[name], eventIDs(n.n)...)
			}
		}
		require.Equal(t, map[string][]int64{
			"audit":     {1}, // continue: true ...
			"web":       {1}, // ... and the next sibling that matches
			"dba-pager": {2}, // the nested route, not its parent
			"default":   {3}, // no child matched
		}, count)
		n := h.senders["dba-pager"].notifications()[0].n
		require.Equal(t, `{}/{service=["postgres","mysql"]}/{severity=["critical"]}:{source_host="db-01"}`, n.GroupKey)
	})
}

func TestDispatchSilences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil).run()
		defer h.stop()
		ops := h.senders["ops"]
		h.silence(Silence{ID: 1, Matchers: map[string]any{"source_host": "db-01"},
			StartsAt: h.start.Add(10 * time.Second), EndsAt: h.start.Add(time.Hour)})
		h.silence(Silence{ID: 2, Matchers: map[string]any{"source_host": []any{"db-02", "db-03"}}, // not yet
			StartsAt: h.start.Add(2 * time.Hour), EndsAt: h.start.Add(3 * time.Hour)})
		h.silence(Silence{ID: 3, Matchers: map[string]any{"source_host": "db-02"}, // over
			StartsAt: h.start.Add(-2 * time.Hour), EndsAt: h.start.Add(-time.Hour)})

		// Dispatched before the silence starts: silences are read when the
		// group is flushed.
		h.d.Dispatch(alert(1, "db-01"))
		h.d.Dispatch(alert(2, "db-02"))
		h.at(30 * time.Second)
		got := ops.notifications()
		require.Len(t, got, 1)
		require.Equal(t, []int64{2}, eventIDs(got[0].n), "the silenced alert is not sent")
		key := got[0].n.GroupKey
		require.Equal(t, []Attempt{
			{Receiver: "ops", GroupKey: key, Status: StatusSilenced, Attempt: 0, Alerts: 1,
				At: h.start.Add(30 * time.Second), EventIDs: []int64{1}, RuleIDs: []int64{1}},
			{Receiver: "ops", GroupKey: key, Status: StatusSent, Attempt: 1, Alerts: 1,
				At: h.start.Add(30 * time.Second), EventIDs: []int64{2}, RuleIDs: []int64{1}},
		}, h.records())
		require.Equal(t, 1.0, value(h.m.notifications.WithLabelValues("ops", StatusSilenced)))

		// Every alert of a flush silenced: nothing is sent.
		h.at(time.Minute)
		h.d.Dispatch(alert(3, "db-01"))
		h.at(5*time.Minute + 30*time.Second)
		require.Len(t, ops.notifications(), 1)
		recs := h.records()
		require.Len(t, recs, 3)
		require.Equal(t, StatusSilenced, recs[2].Status)
		require.Equal(t, []int64{3}, recs[2].EventIDs)

		// Once the silence ended, a new alert of db-01 is sent.
		h.at(time.Hour + time.Minute)
		h.d.Dispatch(alert(4, "db-01"))
		h.at(time.Hour + 5*time.Minute + 30*time.Second)
		got = ops.notifications()
		require.Len(t, got, 2)
		require.Equal(t, []int64{4}, eventIDs(got[1].n))
	})
}

func TestDispatchSilencedRepeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		policy := `
receivers: [{name: ops, webhook: {url: "https://hooks.example/ops"}}]
route: {receiver: ops, group_by: [rule], group_interval: 1m, repeat_interval: 10m}
`
		h := newHarness(t, policy, nil).run()
		defer h.stop()
		ops := h.senders["ops"]
		h.d.Dispatch(alert(1, "db-01"))
		h.at(30 * time.Second)
		require.Len(t, ops.notifications(), 1)

		// A silence made after the notification covers its repeats.
		h.silence(Silence{Matchers: map[string]any{"rule": "High CPU Alert"},
			StartsAt: h.start.Add(time.Minute), EndsAt: h.start.Add(15 * time.Minute)})
		h.at(10*time.Minute + 30*time.Second)
		require.Len(t, ops.notifications(), 1, "the repeat is silenced")
		recs := h.records()
		require.Equal(t, StatusSilenced, recs[len(recs)-1].Status)
		// The next repeat, after the silence, is sent.
		h.at(20*time.Minute + 30*time.Second)
		require.Len(t, ops.notifications(), 2)
	})
}

func TestDispatchRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, func(o *DispatcherOptions) {
			o.RetryMin, o.RetryMax, o.MaxAttempts = time.Second, 4*time.Second, 6
		})
		h.d.jitter = func(d time.Duration) time.Duration { return d }
		h.run()
		defer h.stop()
		ops := h.senders["ops"]
		ops.fail = func(call int, _ Notification) error {
			if call <= 4 {
				return fmt.Errorf("webhook: 503 Service Unavailable")
			}
			return nil
		}

		h.d.Dispatch(alert(1, "db-01"))
		h.at(time.Minute)
		// Backoff 1s, 2s, 4s, then capped at 4s.
		s := h.start.Add(30 * time.Second)
		require.Equal(t, []time.Time{s, s.Add(time.Second), s.Add(3 * time.Second), s.Add(7 * time.Second), s.Add(11 * time.Second)},
			ops.callTimes())
		require.Len(t, ops.notifications(), 1)
		var got []string
		for _, a := range h.records() {
			got = append(got, fmt.Sprintf("%d %s %s %s", a.Attempt, a.Status, a.At.Sub(h.start), a.Error))
		}
		require.Equal(t, []string{
			"1 failed 30s webhook: 503 Service Unavailable",
			"2 failed 31s webhook: 503 Service Unavailable",
			"3 failed 33s webhook: 503 Service Unavailable",
			"4 failed 37s webhook: 503 Service Unavailable",
			"5 sent 41s ",
		}, got)
		require.Equal(t, 4.0, value(h.m.notifications.WithLabelValues("ops", StatusFailed)))
		require.Equal(t, 1.0, value(h.m.notifications.WithLabelValues("ops", StatusSent)))

		// Sent: not sent again at the next interval.
		h.at(6 * time.Minute)
		require.Len(t, ops.callTimes(), 5)
	})
}

func TestDispatchRetryJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, func(o *DispatcherOptions) {
			o.RetryMin, o.RetryMax, o.MaxAttempts = 2*time.Second, time.Minute, 6
		}).run()
		defer h.stop()
		ops := h.senders["ops"]
		ops.fail = func(int, Notification) error { return context.DeadlineExceeded }
		h.d.Dispatch(alert(1, "db-01"))
		h.at(2 * time.Minute)
		calls := ops.callTimes()
		require.Len(t, calls, 6)
		step := 2 * time.Second
		for i := 1; i < len(calls); i++ {
			gap := calls[i].Sub(calls[i-1])
			require.GreaterOrEqual(t, gap, step/2, "attempt %d", i+1)
			require.LessOrEqual(t, gap, step, "attempt %d", i+1)
			step *= 2
		}
	})
	for range 1000 {
		d := equalJitter(10 * time.Second)
		require.GreaterOrEqual(t, d, 5*time.Second)
		require.LessOrEqual(t, d, 10*time.Second)
	}
}

func TestDispatchRetriesExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, func(o *DispatcherOptions) {
			o.RetryMin, o.MaxAttempts = time.Second, 3
		}).run()
		defer h.stop()
		ops := h.senders["ops"]
		var down sync.Mutex
		broken := true
		ops.fail = func(int, Notification) error {
			down.Lock()
			defer down.Unlock()
			if broken {
				return errors.New("connection reset by peer")
			}
			return nil
		}
		h.d.Dispatch(alert(1, "db-01"))
		h.at(time.Minute)
		require.Len(t, ops.callTimes(), 3, "MaxAttempts")
		require.Empty(t, ops.notifications())

		// Still pending: tried again at the next flush, with a new alert.
		h.d.Dispatch(alert(2, "db-01"))
		h.at(6 * time.Minute)
		calls := ops.callTimes()
		require.Len(t, calls, 6)
		require.Equal(t, h.start.Add(5*time.Minute+30*time.Second), calls[3], "at the next group_interval tick")
		down.Lock()
		broken = false
		down.Unlock()
		h.at(10*time.Minute + 30*time.Second)
		got := ops.notifications()
		require.Len(t, got, 1)
		require.Equal(t, []int64{1, 2}, eventIDs(got[0].n))
		recs := h.records()
		require.Len(t, recs, 7)
		require.Equal(t, Attempt{Receiver: "ops", GroupKey: got[0].n.GroupKey, Status: StatusSent, Attempt: 1, Alerts: 2,
			At: h.start.Add(10*time.Minute + 30*time.Second), EventIDs: []int64{1, 2}, RuleIDs: []int64{1}}, recs[6])
	})
}

func TestDispatchNoRetry(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status string
	}{
		{"permanent", &PermanentError{Err: errors.New("webhook: 400 Bad Request")}, StatusFailed},
		{"refused", fmt.Errorf("dial 127.0.0.1:80: %w", ErrRefused), StatusRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, onePolicy, nil).run()
				defer h.stop()
				ops := h.senders["ops"]
				ops.fail = func(int, Notification) error { return tt.err }
				h.d.Dispatch(alert(1, "db-01"))
				h.at(30 * time.Second)
				require.Equal(t, []Attempt{{
					Receiver: "ops", GroupKey: `{}:{rule="High CPU Alert"}`, Status: tt.status, Attempt: 1,
					Error: tt.err.Error(), Alerts: 1, At: h.start.Add(30 * time.Second), EventIDs: []int64{1}, RuleIDs: []int64{1},
				}}, h.records())
				// Neither retried nor tried again at the next intervals.
				h.at(30 * time.Minute)
				require.Len(t, ops.callTimes(), 1)
				require.Len(t, h.records(), 1)
				require.Equal(t, 1.0, value(h.m.notifications.WithLabelValues("ops", tt.status)))
			})
		})
	}
}

func TestDispatchSenderErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		policy := `
receivers:
  - {name: ops, webhook: {url: "https://hooks.example/ops"}}
  - {name: chat, slack: {url: "https://hooks.slack.com/services/T0/B0/SLACKTOKEN"}}
  - {name: hook, webhook: {url: "https://user:hookpass@hooks.example/path-token?key=querytoken", secret: whsec-value}}
route:
  receiver: ops
  routes:
    - {matchers: {service: chat}, receiver: chat}
    - {matchers: {service: hook}, receiver: hook}
`
		var senderErr error
		h := newHarness(t, policy, func(o *DispatcherOptions) {
			senders := o.Senders
			o.Senders = func(name string) (Sender, error) {
				if name == "ops" {
					return nil, senderErr
				}
				return senders(name)
			}
		}).run()
		defer h.stop()
		senderErr = &PermanentError{Err: errors.New("email: password_file: permission denied")}
		h.senders["chat"].fail = func(int, Notification) error {
			return &PermanentError{Err: errors.New(`Post "https://hooks.slack.com/services/T0/B0/SLACKTOKEN": 404 no_team`)}
		}
		h.senders["hook"].fail = func(int, Notification) error {
			return &PermanentError{Err: errors.New(`Post "https://user:xxxxx@hooks.example/path-token?key=querytoken": signed with whsec-value: 410 ` +
				string(make([]byte, 600)))}
		}
		a := alert(1, "db-01")
		h.d.Dispatch(a)
		a.Labels["service"] = "chat"
		h.d.Dispatch(a)
		a.Labels["service"] = "hook"
		h.d.Dispatch(a)
		h.at(30 * time.Second)
		errs := map[string]string{}
		for _, r := range h.records() {
			require.Equal(t, StatusFailed, r.Status)
			errs[r.Receiver] = r.Error
		}
		require.Equal(t, "email: password_file: permission denied", errs["ops"])
		require.Equal(t, `Post "<secret>": 404 no_team`, errs["chat"])
		require.Contains(t, errs["hook"], `Post "<secret>": signed with <secret>: 410`)
		require.LessOrEqual(t, len(errs["hook"]), maxErrorLen+3)
		for _, secret := range []string{"SLACKTOKEN", "hookpass", "path-token", "querytoken", "whsec-value"} {
			for _, e := range errs {
				require.NotContains(t, e, secret)
			}
		}
	})
}

func TestDispatchBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		policy := `
receivers: [{name: ops, webhook: {url: "https://hooks.example/ops"}}]
route: {receiver: ops, group_by: [source_host]}
`
		h := newHarness(t, policy, func(o *DispatcherOptions) { o.MaxGroups, o.MaxAlertsPerGroup = 2, 2 }).run()
		defer h.stop()
		ops := h.senders["ops"]

		// A full group pushes out its oldest alert.
		h.d.Dispatch(alert(1, "a"))
		h.d.Dispatch(alert(2, "a"))
		h.d.Dispatch(alert(3, "a"))
		h.at(30 * time.Second)
		got := ops.notifications()
		require.Len(t, got, 1)
		require.Equal(t, []int64{2, 3}, eventIDs(got[0].n))
		require.Equal(t, 1.0, h.dropped(dropMaxAlerts))

		// A third group evicts the oldest idle one (a, all sent) ...
		h.at(time.Minute)
		h.d.Dispatch(alert(4, "b"))
		h.at(time.Minute + 10*time.Second)
		h.d.Dispatch(alert(5, "c"))
		require.Equal(t, 1.0, value(h.m.evicted))
		require.Equal(t, 0.0, h.dropped(dropMaxGroups), "the evicted group had nothing pending")
		// ... and with every group pending, the oldest (b).
		h.at(time.Minute + 15*time.Second)
		h.d.Dispatch(alert(6, "d"))
		require.Equal(t, 2.0, value(h.m.evicted))
		require.Equal(t, 1.0, h.dropped(dropMaxGroups))
		require.Equal(t, 2.0, value(h.m.groups))

		h.at(2 * time.Minute)
		var sent []int64
		for _, s := range ops.notifications()[1:] {
			sent = append(sent, eventIDs(s.n)...)
		}
		require.Equal(t, []int64{5, 6}, sent, "b was dropped")
	})
}

func TestDispatchDuplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil).run()
		defer h.stop()
		ops := h.senders["ops"]
		h.d.Dispatch(alert(1, "db-01"))
		h.d.Dispatch(alert(1, "db-01")) // redelivered
		h.at(30 * time.Second)
		got := ops.notifications()
		require.Len(t, got, 1)
		require.Equal(t, []int64{1}, eventIDs(got[0].n))
		// Redelivered after it was sent: not sent again.
		h.d.Dispatch(alert(1, "db-01"))
		h.at(6 * time.Minute)
		require.Len(t, ops.notifications(), 1)
		require.Equal(t, 2.0, h.dropped(dropDuplicate))
	})
}

func TestDispatchSetPolicy(t *testing.T) {
	const toPager = `
receivers:
  - {name: ops, webhook: {url: "https://hooks.example/ops"}}
  - {name: pager, pagerduty: {routing_key: key}}
route: {receiver: pager, group_by: [rule]%s}
`
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, fmt.Sprintf(toPager, `, routes: [{receiver: ops}]`), nil).run()
		defer h.stop()
		ops, pager := h.senders["ops"], h.senders["pager"]

		h.d.Dispatch(alert(1, "db-01"))
		h.at(30 * time.Second)
		require.Len(t, ops.notifications(), 1)

		// A pending alert follows the new policy; a sent one is not sent
		// again to the new receiver.
		h.at(time.Minute)
		h.d.Dispatch(alert(2, "db-01"))
		h.at(2 * time.Minute)
		h.d.SetPolicy(mustPolicy(t, fmt.Sprintf(toPager, ``)))
		h.at(2*time.Minute + 30*time.Second)
		got := pager.notifications()
		require.Len(t, got, 1)
		require.Equal(t, []int64{2}, eventIDs(got[0].n))
		require.Equal(t, `{}:{rule="High CPU Alert"}`, got[0].n.GroupKey)

		// A group that stays keeps its timing (next flush at 7m30s) and
		// takes the new settings after it.
		h.d.SetPolicy(mustPolicy(t, fmt.Sprintf(toPager, `, group_interval: 1m`)))
		h.at(3 * time.Minute)
		h.d.Dispatch(alert(3, "db-01"))
		h.at(7*time.Minute + 30*time.Second - time.Millisecond)
		require.Len(t, pager.notifications(), 1)
		h.at(7*time.Minute + 30*time.Second)
		require.Len(t, pager.notifications(), 2)
		h.d.Dispatch(alert(4, "db-01"))
		h.at(8*time.Minute + 30*time.Second)
		got = pager.notifications()
		require.Len(t, got, 3)
		require.Equal(t, []int64{4}, eventIDs(got[2].n))
		require.Len(t, ops.notifications(), 1, "ops no longer gets anything")
		require.Equal(t, 1.0, value(h.m.groups))

		// Without a policy, pending alerts are dropped.
		h.d.Dispatch(alert(5, "db-01"))
		h.d.SetPolicy(nil)
		require.Equal(t, 1.0, h.dropped(dropNoPolicy))
		require.Nil(t, h.d.Policy())
		h.d.Dispatch(alert(6, "db-01"))
		require.Equal(t, 2.0, h.dropped(dropNoPolicy))
		h.at(time.Hour)
		require.Len(t, pager.notifications(), 3)
		require.Equal(t, 0.0, value(h.m.groups))
	})
}

func TestDispatchBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil)
		h.d.Dispatch(alert(1, "db-01"))
		h.at(time.Minute)
		h.run()
		defer h.stop()
		h.at(time.Minute + 30*time.Second - time.Millisecond)
		require.Empty(t, h.senders["ops"].notifications())
		h.at(time.Minute + 30*time.Second)
		require.Len(t, h.senders["ops"].notifications(), 1, "group_wait counts from Run")
	})
}

func TestDispatchStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil).run()
		ops := h.senders["ops"]
		ops.block = true
		h.d.Dispatch(alert(1, "db-01"))
		h.at(30 * time.Second) // the delivery is in flight, blocked
		h.d.Dispatch(alert(2, "db-01"))
		h.stop() // cancels it, tries both once more within StopFlush, returns
		recs := h.records()
		require.Len(t, recs, 2)
		require.Equal(t, StatusFailed, recs[0].Status)
		require.Equal(t, "context canceled", recs[0].Error)
		require.Equal(t, StatusFailed, recs[1].Status)
		require.Equal(t, "context deadline exceeded", recs[1].Error)
		require.Equal(t, []int64{1, 2}, recs[1].EventIDs)
		require.Equal(t, 2.0, h.dropped(dropStopped), "both alerts were never notified")

		h.d.Stop() // idempotent
		h.d.Dispatch(alert(3, "db-01"))
		require.Equal(t, 3.0, h.dropped(dropStopped))
		require.ErrorIs(t, h.d.Run(context.Background()), ErrRan)
	})

	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil)
		h.d.Dispatch(alert(1, "db-01"))
		h.d.Stop() // never ran
		require.Equal(t, 1.0, h.dropped(dropUnscheduled))
		require.ErrorIs(t, h.d.Run(context.Background()), ErrRan)
	})

	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- h.d.Run(ctx) }()
		h.d.Dispatch(alert(1, "db-01"))
		h.at(30 * time.Second)
		require.Len(t, h.senders["ops"].notifications(), 1)
		cancel()
		require.NoError(t, <-done)
		h.d.Stop() // after Run returned
	})
}

// TestDispatchStopSendsWhatWaits: at a stop, alerts waiting for their
// group_wait (or a group_interval) are sent at once instead of dropped.
func TestDispatchStopSendsWhatWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil).run()
		h.d.Dispatch(alert(1, "db-01"))
		h.at(30 * time.Second) // group_wait: sent
		h.d.Dispatch(alert(2, "db-01"))
		h.d.Dispatch(alert(3, "web-01"))
		h.at(31 * time.Second) // 2 waits for the group_interval
		h.stop()
		sent := h.senders["ops"].notifications()
		require.Len(t, sent, 2)
		require.Len(t, sent[1].n.Alerts, 2, "the alerts that waited, in one notification of their group")
		require.Equal(t, h.start.Add(31*time.Second), sent[1].at, "at the stop, not at the interval")
		require.Equal(t, 0.0, h.dropped(dropStopped))
	})
}

func TestNewDispatcher(t *testing.T) {
	_, err := NewDispatcher(DispatcherOptions{})
	require.EqualError(t, err, "notify: dispatcher: Senders is required")

	d, err := NewDispatcher(DispatcherOptions{Senders: func(string) (Sender, error) { return nil, nil }})
	require.NoError(t, err)
	require.Equal(t, DefaultMaxGroups, d.maxGroups)
	require.Equal(t, DefaultMaxAlertsPerGroup, d.maxAlerts)
	require.Equal(t, DefaultAlertTTL, d.ttl)
	require.Equal(t, DefaultMaxAttempts, d.maxAttempts)
	d.Dispatch(Alert{EventID: 1}) // no policy
	require.Equal(t, 1.0, value(d.m.dropped.WithLabelValues(dropNoPolicy)))
	d.Stop()

	// Metrics on one registry twice share the collectors.
	reg := prometheus.NewRegistry()
	m1, err := NewMetrics(reg)
	require.NoError(t, err)
	m2, err := NewMetrics(reg)
	require.NoError(t, err)
	require.Same(t, m1.notifications, m2.notifications)
}

func TestDispatchSenderPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, onePolicy, nil).run()
		defer h.stop()
		h.senders["ops"].fail = func(int, Notification) error { panic("boom") }
		h.d.Dispatch(alert(1, "db-01"))
		h.at(30 * time.Second)
		recs := h.records()
		require.Len(t, recs, 1)
		require.Equal(t, StatusFailed, recs[0].Status)
		require.Equal(t, "sender panicked: boom", recs[0].Error)
	})
}
