package receiver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
)

func TestPagerDutyTriggerAndResolve(t *testing.T) {
	p := newPeer(t, 202)
	p.answer = `{"status":"success","message":"Event processed","dedup_key":"x"}`
	s, err := New(notify.Receiver{Name: "pager", PagerDuty: &notify.PagerDutyConfig{RoutingKey: "R0UTING", URL: p.URL + "/v2/enqueue"}}, localGuard(t), opts())
	require.NoError(t, err)
	require.NoError(t, s.Send(context.Background(), sample()))

	got := p.only(t)
	require.Equal(t, "/v2/enqueue", got.path)
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	require.JSONEq(t, `{
	  "routing_key": "R0UTING",
	  "event_action": "trigger",
	  "dedup_key": "{}:{rule=\"High CPU Alert\",source_host=\"db-01\"}",
	  "client": "reflex",
	  "payload": {
	    "summary": "[CRITICAL] 2 alerts firing: High CPU Alert on db-01",
	    "source": "db-01",
	    "severity": "critical",
	    "timestamp": "2024-12-01T10:00:00Z",
	    "class": "High CPU Alert",
	    "custom_details": {
	      "receiver": "ops",
	      "group_key": "{}:{rule=\"High CPU Alert\",source_host=\"db-01\"}",
	      "alert_count": 2,
	      "rules": ["High CPU Alert"],
	      "hosts": ["db-01"],
	      "alerts": [
	        {"rule_id": 1, "rule_name": "High CPU Alert", "event_id": 12346, "source_host": "db-01", "severity": "critical", "title": "CPU 97%", "fired_at": "2024-12-01T10:01:00Z"},
	        {"rule_id": 1, "rule_name": "High CPU Alert", "event_id": 12345, "source_host": "db-01", "severity": "high", "title": "CPU 92%", "fired_at": "2024-12-01T10:00:00Z"}
	      ]
	    }
	  }
	}`, string(got.body))

	r, ok := s.(Resolver)
	require.True(t, ok, "the PagerDuty sender resolves")
	require.NoError(t, r.Resolve(context.Background(), sample().GroupKey))
	all := p.requests()
	require.Len(t, all, 2)
	require.JSONEq(t, `{"routing_key":"R0UTING","event_action":"resolve","dedup_key":"{}:{rule=\"High CPU Alert\",source_host=\"db-01\"}"}`, string(all[1].body))
}

func TestPagerDutyDefaultsAndLimits(t *testing.T) {
	for sev, want := range map[string]string{
		"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info", "bogus": "error", "CRITICAL": "critical",
	} {
		require.Equal(t, want, pdSeverity(sev), sev)
	}

	// Many hosts, many alerts, a long group key.
	n := many(30)
	n.GroupKey = strings.Repeat("k", 300)
	ev := pagerDutyTrigger("R", n)
	require.Equal(t, "critical", ev.Payload.Severity)
	require.Equal(t, "web-00, web-01, web-02 and 27 more", ev.Payload.Source)
	require.Len(t, ev.Payload.CustomDetails.Alerts, maxPDAlerts)
	require.Equal(t, 10, ev.Payload.CustomDetails.AlertsTruncated)
	require.Equal(t, 30, ev.Payload.CustomDetails.AlertCount)
	require.Equal(t, "critical", ev.Payload.CustomDetails.Alerts[0].Severity)
	require.True(t, strings.HasPrefix(ev.DedupKey, "sha256:"))
	require.Len(t, ev.DedupKey, len("sha256:")+64)
	require.Equal(t, ev.DedupKey, DedupKey(n.GroupKey), "trigger and resolve agree")
	require.Equal(t, "g", DedupKey("g"))
	require.Equal(t, n.GroupKey, ev.Payload.CustomDetails.GroupKey)

	// An empty group: still a valid event.
	b, err := json.Marshal(pagerDutyTrigger("R", notify.Notification{Receiver: "pager", Status: "firing", GroupKey: "g"}))
	require.NoError(t, err)
	require.JSONEq(t, `{"routing_key":"R","event_action":"trigger","dedup_key":"g","client":"reflex","payload":{
	  "summary":"0 alerts firing","source":"reflex","severity":"error",
	  "custom_details":{"receiver":"pager","group_key":"g","alert_count":0,"rules":[],"hosts":[],"alerts":[]}}}`, string(b))

	// The default URL is PagerDuty's.
	s, err := New(notify.Receiver{Name: "pager", PagerDuty: &notify.PagerDutyConfig{RoutingKey: "R"}}, localGuard(t), opts())
	require.NoError(t, err)
	require.Equal(t, DefaultPagerDutyURL, s.(*pagerDuty).p.url)
}
