// Package notifyexec is the executor of the Autonomous Response Service's
// notification steps (action definitions with {"executor": {"type":
// "notification", "channels": ["oncall-slack"], "title":
// "{{.event.title}}", "text": "..."}}): a notification, its title and
// text rendered from the step's data with executor.Render, sent to each
// channel, a receiver of the rules issue's notification policy (generic
// webhook, Slack, Teams, email, PagerDuty), through the outbound guard.
// (The directory is internal/executor/notify; the package is named
// notifyexec so as not to shadow internal/notify.)
//
// The notification holds one alert built from the data's event (its id,
// source_host and severity; the rendered title, and the rendered text
// after a newline: notify.Alert has no field of its own for a message
// body), under the group key "autonomous/<execution id>/<step>", so
// that receivers which deduplicate by group key (PagerDuty) see one
// incident per step.
//
// What it guarantees:
//
//   - Every channel is resolved before anything is sent: a channel that
//     is not a receiver of the policy, or whose configuration cannot
//     work, refuses the run (executor.ErrRefused): nothing was sent.
//   - A channel's transient failure (a 5xx, 408 or 429, a timeout, a
//     connection error) is retryable (executor.Retryable) when every
//     failed channel failed so; a permanent one (another 4xx, a guard
//     refusal) is not. A retry of the same execution's step does not
//     send again to the channels that already got it (remembered in
//     memory, for the DefaultRemember latest steps).
//   - Errors and the Result never carry a receiver's secret: the
//     receivers scrub their own errors (see internal/notify/receiver).
//
// Result: ExitCode 0 when every channel got the notification, 1
// otherwise (-1 when it was refused); Output one line per channel
// ("oncall-slack: sent", "ops-webhook: failed: ..."); Outputs "output"
// (the same), "sent" and "failed" (the channels' names, comma-separated).
package notifyexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/notify/receiver"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// Receivers finds a receiver of the notification policy in use by its
// name. *notify.Policy implements it; a service whose policy changes
// gives a ReceiversFunc reading the current one. Implementations are
// safe for concurrent use.
type Receivers interface {
	Receiver(name string) (notify.Receiver, bool)
}

var _ Receivers = (*notify.Policy)(nil)

// ReceiversFunc adapts a function to Receivers.
type ReceiversFunc func(name string) (notify.Receiver, bool)

// Receiver calls f.
func (f ReceiversFunc) Receiver(name string) (notify.Receiver, bool) { return f(name) }

// DefaultRemember is how many steps' sent channels an Executor
// remembers, so that a retry does not notify them again.
const DefaultRemember = 4096

// Options are the dependencies of an Executor.
type Options struct {
	// Receivers resolves the channels. Required.
	Receivers Receivers
	// Guard is the outbound guard every delivery goes through. Required.
	Guard *outbound.Guard
	// Now is the clock of the alert's fired_at, of the webhook's
	// signature and of Result.Started and Finished. Default time.Now.
	Now func() time.Time
	// Logger receives a debug record of each delivery (channel, outcome;
	// never a secret). Default: discard.
	Logger *slog.Logger
}

// Executor sends the notification of one action definition. It is built
// once per definition by New and is safe for concurrent use.
type Executor struct {
	cfg       Config
	receivers Receivers
	guard     *outbound.Guard
	now       func() time.Time
	logger    *slog.Logger

	mu     sync.Mutex
	sent   map[sentKey]bool // channels that got a step's notification
	order  []sentKey        // insertion order, for the bound
	bound  int
	source string // RuleName of the alerts
}

type sentKey struct {
	execution int64
	step      string
	channel   string
}

var _ executor.Executor = (*Executor)(nil)

// New returns the Executor of cfg, which must pass Validate. Errors wrap
// executor.ErrInvalid.
func New(cfg Config, opts Options) (*Executor, error) {
	switch {
	case opts.Receivers == nil:
		return nil, fmt.Errorf("notifyexec: %w: the notification policy's receivers are required", executor.ErrInvalid)
	case opts.Guard == nil:
		return nil, fmt.Errorf("notifyexec: %w: an outbound guard is required", executor.ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{
		cfg:       cfg,
		receivers: opts.Receivers,
		guard:     opts.Guard,
		now:       opts.Now,
		logger:    opts.Logger.With("component", "executor", "executor", Type),
		sent:      map[sentKey]bool{},
		bound:     DefaultRemember * MaxChannels,
		source:    "reflex autonomous",
	}, nil
}

// channel is one resolved channel.
type channel struct {
	name   string
	sender notify.Sender
	done   bool // sent by an earlier attempt of the same step
}

// Execute renders the notification from req.Data and sends it to every
// channel, in the order the definition lists them.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	res := executor.Result{ExitCode: -1}
	title, err := render("title", e.cfg.Title, req.Data, maxTitle)
	if err != nil {
		return res, err
	}
	text, err := render("text", e.cfg.Text, req.Data, maxText)
	if err != nil {
		return res, err
	}
	chans, err := e.resolve(req)
	if err != nil {
		return res, err
	}
	timeout := e.cfg.Timeout
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	n := e.notification(req, title, text)
	res.Started = e.now()
	var (
		lines        []string
		sent, failed []string
		errs         []error
		retryable    = true
		refused      = true
	)
	for _, ch := range chans {
		if ch.done {
			lines = append(lines, ch.name+": sent (by an earlier attempt)")
			sent = append(sent, ch.name)
			continue
		}
		n.Receiver = ch.name
		err := e.send(sctx, ch, n)
		if err == nil {
			lines = append(lines, ch.name+": sent")
			sent = append(sent, ch.name)
			e.remember(req, ch.name)
			e.logger.DebugContext(ctx, "notification sent", "channel", ch.name, "execution_id", req.ExecutionID, "step", req.Step)
			continue
		}
		msg := oneLine(err.Error())
		lines = append(lines, ch.name+": failed: "+msg)
		failed = append(failed, ch.name)
		errs = append(errs, fmt.Errorf("%s: %s", ch.name, msg))
		retryable = retryable && notify.Retryable(err)
		refused = refused && errors.Is(err, notify.ErrRefused)
		e.logger.WarnContext(ctx, "notification not sent", "channel", ch.name, "execution_id", req.ExecutionID, "step", req.Step, "err", msg)
	}
	res.Finished = e.now()
	out := strings.Join(lines, "\n") + "\n"
	res.Output = []byte(out)
	res.Outputs = map[string]string{"output": out, "sent": strings.Join(sent, ","), "failed": strings.Join(failed, ",")}
	if len(failed) == 0 {
		res.ExitCode = 0
		return res, nil
	}
	res.ExitCode = 1
	err = fmt.Errorf("notifyexec: %d of %d channels failed: %w", len(failed), len(chans), errors.Join(errs...))
	switch {
	case ctx.Err() != nil:
		// The caller's end: not a failure of the channels.
		return res, fmt.Errorf("notifyexec: %w", ctx.Err())
	case sctx.Err() != nil:
		// Sending again is harmless: the channels already sent are not
		// sent to again.
		return res, executor.MarkRetryable(fmt.Errorf("%w after %s: %w", executor.ErrTimeout, timeout, err))
	case refused && len(sent) == 0:
		res.ExitCode = -1
		return res, fmt.Errorf("%w: %w", executor.ErrRefused, err)
	case retryable:
		return res, executor.MarkRetryable(err)
	}
	return res, err
}

// resolve finds the sender of every channel, or refuses the run.
func (e *Executor) resolve(req executor.Request) ([]channel, error) {
	out := make([]channel, 0, len(e.cfg.Channels))
	for _, name := range e.cfg.Channels {
		r, ok := e.receivers.Receiver(name)
		if !ok {
			return nil, fmt.Errorf("notifyexec: %w: channel %s is not a receiver of the notification policy", executor.ErrRefused, executor.Quote(name))
		}
		s, err := receiver.New(r, e.guard, receiver.Options{Now: e.now, Logger: e.logger})
		if err != nil {
			return nil, fmt.Errorf("notifyexec: %w: channel %s cannot be used: %w", executor.ErrRefused, executor.Quote(name), err)
		}
		out = append(out, channel{name: name, sender: s, done: e.wasSent(req, name)})
	}
	return out, nil
}

// send makes one attempt; a panic of the sender is a permanent failure.
func (e *Executor) send(ctx context.Context, ch channel, n notify.Notification) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &notify.PermanentError{Err: fmt.Errorf("sender panicked: %v", p)}
		}
	}()
	return ch.sender.Send(ctx, n)
}

// notification is the one-alert notification of req.
func (e *Executor) notification(req executor.Request, title, text string) notify.Notification {
	ev := dataEvent(req.Data)
	full := title
	if text != "" {
		full = title + "\n" + text
	}
	a := notify.Alert{
		RuleName:   e.source,
		EventID:    ev.ID,
		SourceHost: ev.SourceHost,
		Severity:   string(ev.Severity),
		Title:      full,
		FiredAt:    e.now().UTC(),
		Labels: map[string]string{
			"rule":         e.source,
			"source_host":  ev.SourceHost,
			"severity":     string(ev.Severity),
			"event_type":   ev.EventType,
			"source":       ev.SourceSystem,
			"service":      ev.SourceService,
			"execution_id": strconv.FormatInt(req.ExecutionID, 10),
			"step":         req.Step,
		},
	}
	return notify.Notification{
		Status:   "firing",
		GroupKey: "autonomous/" + strconv.FormatInt(req.ExecutionID, 10) + "/" + req.Step,
		Alerts:   []notify.Alert{a},
	}
}

// dataEvent reads data["event"] (the event as the API shows it, or an
// event.Event); the zero event when there is none or it cannot be read:
// the notification is sent without its fields.
func dataEvent(data map[string]any) event.Event {
	switch e := data["event"].(type) {
	case nil:
		return event.Event{}
	case event.Event:
		return e
	case *event.Event:
		if e != nil {
			return *e
		}
		return event.Event{}
	}
	var e event.Event
	if b, err := json.Marshal(data["event"]); err == nil {
		_ = json.Unmarshal(b, &e) // best effort: what is readable is used
	}
	return e
}

// render renders one template, refusing a result longer than limit.
func render(field, tmpl string, data map[string]any, limit int) (string, error) {
	s, err := executor.Render(tmpl, data)
	if err != nil {
		return "", fmt.Errorf("notifyexec: %w: %s: %w", executor.ErrRefused, field, cause(err))
	}
	if len(s) > limit {
		return "", fmt.Errorf("notifyexec: %w: %s: %d bytes once rendered, at most %d", executor.ErrRefused, field, len(s), limit)
	}
	return s, nil
}

func (e *Executor) wasSent(req executor.Request, name string) bool {
	if req.ExecutionID == 0 {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent[sentKey{req.ExecutionID, req.Step, name}]
}

func (e *Executor) remember(req executor.Request, name string) {
	if req.ExecutionID == 0 {
		return
	}
	k := sentKey{req.ExecutionID, req.Step, name}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sent[k] {
		return
	}
	if len(e.order) >= e.bound {
		delete(e.sent, e.order[0])
		e.order = e.order[1:]
	}
	e.sent[k] = true
	e.order = append(e.order, k)
}

// oneLine folds an error's text to one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
