package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// maxChatAlerts is how many alerts a chat message lists; the rest are
// counted.
const maxChatAlerts = 10

// slack posts to a Slack incoming webhook (or a compatible one:
// Mattermost, Rocket.Chat, which read "text").
type slack struct{ p *poster }

var _ notify.Sender = (*slack)(nil)

func newSlack(_ string, c *notify.SlackConfig, g *outbound.Guard, opts Options, logger *slog.Logger) (*slack, error) {
	p, err := newPoster("slack", c.URL, g, opts, logger)
	if err != nil {
		return nil, err
	}
	return &slack{p: p}, nil
}

// slackMessage is an incoming webhook's payload.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

// slackEscape escapes what Slack's mrkdwn reads as control sequences, so
// that an event's title cannot mention @channel or forge a link.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func mrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s} }

// slackPayload renders a group: a header, fields (alerts, severities,
// rules, hosts), the alerts most severe first (at most maxChatAlerts), and
// the receiver and group key.
func slackPayload(n notify.Notification) slackMessage {
	s := summarize(n)
	lines := alertLines(s, func(a notify.Alert) string { return "• " + slackEscape.Replace(line(a)) })
	text := slackEscape.Replace(s.headline())
	if lines != "" {
		text += "\n" + lines
	}
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(s.headline(), 150)}},
		{Type: "section", Fields: []slackText{
			mrkdwn("*Alerts*\n" + strconv.Itoa(len(n.Alerts))),
			mrkdwn("*Severity*\n" + slackEscape.Replace(list(s.severities, 5, 16))),
			mrkdwn("*Rules*\n" + slackEscape.Replace(list(s.rules, 5, 80))),
			mrkdwn("*Hosts*\n" + slackEscape.Replace(list(s.hosts, 10, 80))),
		}},
	}
	if lines != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(lines, 3000)}})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{
		mrkdwn(slackEscape.Replace(fmt.Sprintf("reflex · receiver %s · group %s", oneLine(n.Receiver, 80), oneLine(n.GroupKey, 200)))),
	}})
	return slackMessage{Text: text, Blocks: blocks}
}

// alertLines renders the first maxChatAlerts alerts one per line, and how
// many more there are.
func alertLines(s summary, render func(notify.Alert) string) string {
	var b strings.Builder
	for i, a := range s.alerts {
		if i == maxChatAlerts {
			fmt.Fprintf(&b, "… and %d more\n", len(s.alerts)-i)
			break
		}
		b.WriteString(render(a))
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Send posts the group's message.
func (c *slack) Send(ctx context.Context, n notify.Notification) error {
	body, err := json.Marshal(slackPayload(n))
	if err != nil {
		return permanent(fmt.Errorf("slack: encode: %w", err))
	}
	return c.p.post(ctx, body, nil)
}
