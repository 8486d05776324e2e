package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
)

// Reasons of reflex_notification_alerts_dropped_total: a bounded set.
const (
	dropMaxGroups   = "max_groups"           // the pending alerts of a group evicted for MaxGroups
	dropMaxAlerts   = "max_alerts_per_group" // an alert pushed out of a full group
	dropDuplicate   = "duplicate"            // an alert the group already holds (same rule and event)
	dropNoPolicy    = "no_policy"            // dispatched while there was no policy
	dropStopped     = "stopped"              // dispatched after the dispatcher stopped
	dropUnscheduled = "not_running"          // held by a dispatcher that stopped before it ran
	dropExpired     = "expired"              // still pending (unsent after failures) at AlertTTL
)

// Metrics are the notification router's metrics. Build them once with
// NewMetrics on the server's registry and give them to the Dispatcher;
// NewMetrics on a registry that already holds them shares the collectors.
type Metrics struct {
	alerts        prometheus.Counter
	notifications *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	groups        prometheus.Gauge
	evicted       prometheus.Counter
	sendSeconds   *prometheus.HistogramVec
}

// NewMetrics returns the router's metrics, registered with reg (none with
// a nil reg):
//
//   - reflex_notification_alerts_total: alerts dispatched.
//   - reflex_notifications_total{receiver,status}: recorded attempts, by
//     status sent, failed, refused or silenced.
//   - reflex_notification_alerts_dropped_total{reason}: alerts not
//     notified for a bound or because there was nowhere to send them
//     (max_groups, max_alerts_per_group, duplicate, no_policy, stopped,
//     not_running, expired).
//   - reflex_notification_groups: groups held.
//   - reflex_notification_groups_evicted_total: groups dropped for
//     MaxGroups.
//   - reflex_notification_send_duration_seconds{receiver}: time of one
//     attempt.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		alerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_notification_alerts_total",
			Help: "Alerts (rule firings) given to the notification router.",
		}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_notifications_total",
			Help: "Notification attempts recorded, by receiver and status (sent, failed, refused, silenced).",
		}, []string{"receiver", "status"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_notification_alerts_dropped_total",
			Help: "Alerts the notification router did not notify, by reason (max_groups, max_alerts_per_group, duplicate, no_policy, stopped, not_running, expired).",
		}, []string{"reason"}),
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_notification_groups",
			Help: "Alert groups the notification router holds.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_notification_groups_evicted_total",
			Help: "Alert groups dropped because the router held MaxGroups groups.",
		}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reflex_notification_send_duration_seconds",
			Help:    "Time of one notification attempt, by receiver.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5ms .. ~41s
		}, []string{"receiver"}),
	}
	var err error
	if err = promutil.Register(reg, &m.alerts); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.notifications); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.dropped); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.groups); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.evicted); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.sendSeconds); err != nil {
		return nil, err
	}
	return m, nil
}
