package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// teams posts an Adaptive Card to a Microsoft Teams webhook: the URL of a
// Workflows flow "When a Teams webhook request is received" (which
// replaces the retired Office 365 connectors and their MessageCard), in
// the message-with-attachments envelope that flow expects.
type teams struct{ p *poster }

var _ notify.Sender = (*teams)(nil)

func newTeams(_ string, c *notify.TeamsConfig, g *outbound.Guard, opts Options, logger *slog.Logger) (*teams, error) {
	p, err := newPoster("teams", c.URL, g, opts, logger)
	if err != nil {
		return nil, err
	}
	return &teams{p: p}, nil
}

// The Adaptive Card version sent: 1.4 renders in Teams on every client.
const adaptiveCardVersion = "1.4"

type teamsMessage struct {
	Type        string            `json:"type"` // message
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"` // null
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string            `json:"$schema"`
	Type    string            `json:"type"` // AdaptiveCard
	Version string            `json:"version"`
	Body    []cardElement     `json:"body"`
	MSTeams map[string]string `json:"msteams,omitempty"`
}

type cardElement struct {
	Type     string     `json:"type"` // TextBlock or FactSet
	Text     string     `json:"text,omitempty"`
	Weight   string     `json:"weight,omitempty"`
	Size     string     `json:"size,omitempty"`
	Color    string     `json:"color,omitempty"`
	Wrap     bool       `json:"wrap,omitempty"`
	Spacing  string     `json:"spacing,omitempty"`
	IsSubtle bool       `json:"isSubtle,omitempty"`
	Facts    []cardFact `json:"facts,omitempty"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// teamsPayload renders a group as one card: the headline, the facts
// (alerts, severity, rules, hosts, group), and the alerts most severe
// first (at most maxChatAlerts).
func teamsPayload(n notify.Notification) teamsMessage {
	s := summarize(n)
	color := "Warning"
	if rank(s.top) >= rank("high") {
		color = "Attention"
	}
	body := []cardElement{
		{Type: "TextBlock", Text: s.headline(), Weight: "Bolder", Size: "Medium", Color: color, Wrap: true},
		{Type: "FactSet", Facts: []cardFact{
			{Title: "Alerts", Value: strconv.Itoa(len(n.Alerts))},
			{Title: "Severity", Value: list(s.severities, 5, 16)},
			{Title: "Rules", Value: list(s.rules, 5, 80)},
			{Title: "Hosts", Value: list(s.hosts, 10, 80)},
			{Title: "Receiver", Value: oneLine(n.Receiver, 80)},
			{Title: "Group", Value: oneLine(n.GroupKey, 200)},
		}},
	}
	// One TextBlock per alert: a markdown list inside one block renders
	// differently across Teams clients.
	for i, a := range s.alerts {
		if i == maxChatAlerts {
			body = append(body, cardElement{Type: "TextBlock", Text: fmt.Sprintf("… and %d more", len(s.alerts)-i), Wrap: true, Spacing: "None", IsSubtle: true})
			break
		}
		body = append(body, cardElement{Type: "TextBlock", Text: line(a), Wrap: true, Spacing: "None"})
	}
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: adaptiveCard{
			Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
			Type:    "AdaptiveCard",
			Version: adaptiveCardVersion,
			Body:    body,
			MSTeams: map[string]string{"width": "Full"},
		},
	}}}
}

// Send posts the group's card.
func (c *teams) Send(ctx context.Context, n notify.Notification) error {
	body, err := json.Marshal(teamsPayload(n))
	if err != nil {
		return permanent(fmt.Errorf("teams: encode: %w", err))
	}
	return c.p.post(ctx, body, nil)
}
