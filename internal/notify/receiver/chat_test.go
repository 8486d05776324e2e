package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
)

func TestSlackPayload(t *testing.T) {
	p := newPeer(t, 200)
	p.answer = "ok"
	s, err := New(notify.Receiver{Name: "ops", Slack: &notify.SlackConfig{URL: p.URL + "/services/T000/B000/XXXX"}}, localGuard(t), opts())
	require.NoError(t, err)
	require.NoError(t, s.Send(context.Background(), sample()))

	got := p.only(t)
	require.Equal(t, "/services/T000/B000/XXXX", got.path)
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	require.JSONEq(t, `{
	  "text": "[CRITICAL] 2 alerts firing: High CPU Alert on db-01\n• critical db-01: CPU 97% (High CPU Alert, event 12346, 2024-12-01T10:01:00Z)\n• high db-01: CPU 92% (High CPU Alert, event 12345, 2024-12-01T10:00:00Z)",
	  "blocks": [
	    {"type": "header", "text": {"type": "plain_text", "text": "[CRITICAL] 2 alerts firing: High CPU Alert on db-01"}},
	    {"type": "section", "fields": [
	      {"type": "mrkdwn", "text": "*Alerts*\n2"},
	      {"type": "mrkdwn", "text": "*Severity*\ncritical, high"},
	      {"type": "mrkdwn", "text": "*Rules*\nHigh CPU Alert"},
	      {"type": "mrkdwn", "text": "*Hosts*\ndb-01"}
	    ]},
	    {"type": "section", "text": {"type": "mrkdwn", "text": "• critical db-01: CPU 97% (High CPU Alert, event 12346, 2024-12-01T10:01:00Z)\n• high db-01: CPU 92% (High CPU Alert, event 12345, 2024-12-01T10:00:00Z)"}},
	    {"type": "context", "elements": [{"type": "mrkdwn", "text": "reflex · receiver ops · group {}:{rule=\"High CPU Alert\",source_host=\"db-01\"}"}]}
	  ]
	}`, string(got.body))
}

// many is a group of n alerts on n hosts, of every severity.
func many(n int) notify.Notification {
	sevs := []string{"info", "low", "medium", "high", "critical"}
	out := notify.Notification{Receiver: "ops", Status: "firing", GroupKey: "g"}
	for i := range n {
		out.Alerts = append(out.Alerts, notify.Alert{RuleID: 2, RuleName: "Disk Full", EventID: int64(100 + i),
			SourceHost: fmt.Sprintf("web-%02d", i), Severity: sevs[i%len(sevs)], Title: fmt.Sprintf("disk %d%%", 90+i%10), FiredAt: fired})
	}
	return out
}

func TestSlackCapsAndEscapes(t *testing.T) {
	n := many(25)
	n.Alerts[0].Title = "<!channel> pwned & <https://evil.example|click>\nsecond line"
	n.Alerts[0].Severity = "critical"
	msg := slackPayload(n)

	require.Len(t, msg.Blocks, 4)
	require.Equal(t, "[CRITICAL] 25 alerts firing: Disk Full on web-00, web-01, web-02 and 22 more", msg.Blocks[0].Text.Text)
	require.Equal(t, "*Hosts*\nweb-00, web-01, web-02, web-03, web-04, web-05, web-06, web-07, web-08, web-09 and 15 more", msg.Blocks[1].Fields[3].Text)
	require.Equal(t, "*Severity*\ncritical, high, medium, low, info", msg.Blocks[1].Fields[1].Text)
	lines := strings.Split(msg.Blocks[2].Text.Text, "\n")
	require.Len(t, lines, maxChatAlerts+1)
	require.Equal(t, "… and 15 more", lines[maxChatAlerts])
	// Most severe first; the hostile title is escaped and on one line.
	require.Equal(t, "• critical web-00: &lt;!channel&gt; pwned &amp; &lt;https://evil.example|click&gt; second line (Disk Full, event 100, 2024-12-01T10:00:00Z)", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "• critical web-04:"), lines[1])
	require.NotContains(t, msg.Text, "<!channel>")
	for _, b := range msg.Blocks {
		if b.Text != nil && b.Text.Type == "mrkdwn" {
			require.NotContains(t, b.Text.Text, "<")
		}
	}
}

func TestTeamsPayload(t *testing.T) {
	p := newPeer(t, 202)
	s, err := New(notify.Receiver{Name: "ops", Teams: &notify.TeamsConfig{URL: p.URL + "/workflows/abc/triggers/manual/paths/invoke?sig=xyz"}}, localGuard(t), opts())
	require.NoError(t, err)
	require.NoError(t, s.Send(context.Background(), sample()))

	got := p.only(t)
	require.Equal(t, "sig=xyz", got.query)
	require.JSONEq(t, `{
	  "type": "message",
	  "attachments": [{
	    "contentType": "application/vnd.microsoft.card.adaptive",
	    "contentUrl": null,
	    "content": {
	      "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
	      "type": "AdaptiveCard",
	      "version": "1.4",
	      "body": [
	        {"type": "TextBlock", "text": "[CRITICAL] 2 alerts firing: High CPU Alert on db-01", "weight": "Bolder", "size": "Medium", "color": "Attention", "wrap": true},
	        {"type": "FactSet", "facts": [
	          {"title": "Alerts", "value": "2"},
	          {"title": "Severity", "value": "critical, high"},
	          {"title": "Rules", "value": "High CPU Alert"},
	          {"title": "Hosts", "value": "db-01"},
	          {"title": "Receiver", "value": "ops"},
	          {"title": "Group", "value": "{}:{rule=\"High CPU Alert\",source_host=\"db-01\"}"}
	        ]},
	        {"type": "TextBlock", "text": "critical db-01: CPU 97% (High CPU Alert, event 12346, 2024-12-01T10:01:00Z)", "wrap": true, "spacing": "None"},
	        {"type": "TextBlock", "text": "high db-01: CPU 92% (High CPU Alert, event 12345, 2024-12-01T10:00:00Z)", "wrap": true, "spacing": "None"}
	      ],
	      "msteams": {"width": "Full"}
	    }
	  }]
	}`, string(got.body))
}

func TestTeamsCaps(t *testing.T) {
	n := many(12)
	for i := range n.Alerts {
		n.Alerts[i].Severity = "low"
	}
	card := teamsPayload(n).Attachments[0].Content
	require.Len(t, card.Body, 2+maxChatAlerts+1)
	require.Equal(t, "Warning", card.Body[0].Color)
	last := card.Body[len(card.Body)-1]
	require.Equal(t, "… and 2 more", last.Text)
	require.True(t, last.IsSubtle)

	b, err := json.Marshal(teamsPayload(notify.Notification{Receiver: "ops", Status: "firing", GroupKey: "g"}))
	require.NoError(t, err)
	require.Contains(t, string(b), `"text":"0 alerts firing"`)
}
