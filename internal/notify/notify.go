// Package notify delivers rule firings to humans: a notification policy in
// Alertmanager's shape (receivers, a routing tree, grouping, silences) and
// the receivers that send a group's notification (generic webhook, Slack,
// Microsoft Teams, email, PagerDuty) through one guarded dialer.
//
// This file holds the types the router and the receivers share.
package notify

import (
	"context"
	"errors"
	"time"
)

// Alert is one rule firing, as the router groups and the receivers send it.
type Alert struct {
	RuleID     int64     `json:"rule_id"`
	RuleName   string    `json:"rule_name"`
	EventID    int64     `json:"event_id"`
	SourceHost string    `json:"source_host"`
	Severity   string    `json:"severity"`
	Title      string    `json:"title"`
	FiredAt    time.Time `json:"fired_at"`
	// Labels are what routes' matchers, group_by and silences read: at
	// least rule (the rule's name), rule_id, source_host, severity,
	// event_type, source and service. Not sent as such.
	Labels map[string]string `json:"-"`
}

// Notification is what one receiver sends for one group: the alerts of the
// group that are new since the group's last notification (all of them on a
// repeat).
type Notification struct {
	Receiver string  `json:"receiver"`
	Status   string  `json:"status"` // "firing"
	GroupKey string  `json:"group_key"`
	Alerts   []Alert `json:"alerts"`
}

// Sender delivers a notification to one receiver. Send makes one attempt;
// the router retries (see Retryable).
type Sender interface {
	Send(ctx context.Context, n Notification) error
}

// ErrRefused marks a delivery the outbound guard refused (an address or a
// scheme it does not allow). It is recorded as "refused" and not retried.
var ErrRefused = errors.New("notify: outbound connection refused")

// PermanentError marks a failure that a retry cannot fix: the receiver
// answered 4xx, or its configuration is unusable. Anything else a Sender
// returns (5xx, timeouts, connection errors) is retried with backoff.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Retryable reports whether a Send error is worth another attempt.
func Retryable(err error) bool {
	var p *PermanentError
	return err != nil && !errors.Is(err, ErrRefused) && !errors.As(err, &p) &&
		!errors.Is(err, context.Canceled)
}

// Receiver configurations, as the policy's receivers list spells them.
// Exactly one of a Receiver's fields is set. Secrets (Secret, Password,
// RoutingKey) are write-only: never in API answers, logs or errors.
type Receiver struct {
	Name      string           `json:"name" yaml:"name"`
	Webhook   *WebhookConfig   `json:"webhook,omitempty" yaml:"webhook,omitempty"`
	Slack     *SlackConfig     `json:"slack,omitempty" yaml:"slack,omitempty"`
	Teams     *TeamsConfig     `json:"teams,omitempty" yaml:"teams,omitempty"`
	Email     *EmailConfig     `json:"email,omitempty" yaml:"email,omitempty"`
	PagerDuty *PagerDutyConfig `json:"pagerduty,omitempty" yaml:"pagerduty,omitempty"`
}

// WebhookConfig is the generic webhook: the Notification as JSON, signed
// with X-Reflex-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" under Secret>.
type WebhookConfig struct {
	URL    string `json:"url" yaml:"url"`
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
}

// SlackConfig is a Slack-compatible incoming webhook.
type SlackConfig struct {
	URL string `json:"url" yaml:"url"`
}

// TeamsConfig is a Microsoft Teams incoming webhook.
type TeamsConfig struct {
	URL string `json:"url" yaml:"url"`
}

// EmailConfig sends over SMTP with STARTTLS and authentication.
type EmailConfig struct {
	To           []string `json:"to" yaml:"to"`
	From         string   `json:"from" yaml:"from"`
	Smarthost    string   `json:"smarthost" yaml:"smarthost"` // host:port
	Username     string   `json:"username,omitempty" yaml:"username,omitempty"`
	Password     string   `json:"password,omitempty" yaml:"password,omitempty"`
	PasswordFile string   `json:"password_file,omitempty" yaml:"password_file,omitempty"`
	// RequireTLS refuses to send (and authenticate) without STARTTLS;
	// default true.
	RequireTLS *bool `json:"require_tls,omitempty" yaml:"require_tls,omitempty"`
}

// PagerDutyConfig is the PagerDuty Events API v2 (trigger and resolve, with
// the group key as dedup key).
type PagerDutyConfig struct {
	RoutingKey string `json:"routing_key" yaml:"routing_key"`
	URL        string `json:"url,omitempty" yaml:"url,omitempty"` // default https://events.pagerduty.com/v2/enqueue
}
