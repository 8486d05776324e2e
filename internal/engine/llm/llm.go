// Package llm is the optional language-model backend of the decision
// engine: it asks a model served over the OpenAI-compatible
// chat-completions protocol (Ollama, vLLM, llama.cpp's server, hosted
// services) to decide, and falls back on the built-in engine whenever the
// model cannot be trusted to have answered.
//
// Decide runs the fallback (the built-in engine) first, then POSTs
// {URL}/chat/completions with the event, its root cause, rule, incident,
// the built-in engine's factors and context, the candidate templates
// with their success on the pattern, similar past incidents and the
// built-in decision, asking for a JSON object of a schema (in the
// prompt, and as response_format json_schema unless NoResponseFormat).
// The reply is parsed strictly (ParseReply) and must name candidate
// templates only, without a demoted one first for automation: the model
// chooses among what exists, it cannot invent actions or parameters.
//
// An accepted reply gives the decision's type, confidence and the order
// of its recommendations; the built-in factors are kept, a factor "llm"
// is added, and Engine is "llm:<model>". The model cannot grant autonomy
// the evidence has not earned: its confidence is capped at what the
// built-in model gives its first template (that template's success
// lower bound plus the built-in adjustments). Anything else (transport
// error, timeout, an HTTP status other than 2xx, a body over
// MaxResponseBytes, bad JSON, a schema violation, a template it may not
// name) leaves the built-in decision standing; the failure is logged
// (without the API key) and counted in
// reflex_autonomous_llm_failures_total{reason}.
package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/engine"
	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// Defaults of Options.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 1 << 20
)

// Failure reasons, the values of the reason label of
// reflex_autonomous_llm_failures_total.
const (
	ReasonTransport = "transport" // the request could not be sent or its answer read
	ReasonTimeout   = "timeout"   // no answer within Timeout
	ReasonStatus    = "status"    // an HTTP status other than 2xx
	ReasonTooLarge  = "too_large" // a body over MaxResponseBytes
	ReasonEnvelope  = "envelope"  // not a chat completion with a message
	ReasonSchema    = "schema"    // the content is not a reply of the schema
	ReasonTemplate  = "template"  // a template not among the candidates, or demoted first for automation
	ReasonCanceled  = "canceled"  // the caller's context ended first
)

var reasons = []string{ReasonTransport, ReasonTimeout, ReasonStatus, ReasonTooLarge, ReasonEnvelope, ReasonSchema, ReasonTemplate, ReasonCanceled}

// Options configure New. URL, Model and Fallback are required.
type Options struct {
	// URL is the API's base URL, to which /chat/completions is added
	// (http://127.0.0.1:11434/v1 for Ollama).
	URL string
	// Model is the model's name, as the server knows it.
	Model string
	// APIKey is sent as "Authorization: Bearer <key>" when set (read from
	// --ai-key-file). It is never logged.
	APIKey string
	// Client sends the requests (default: a client of its own, without
	// timeout: Timeout bounds each request).
	Client *http.Client
	// Timeout bounds one request, answer included (default 30s).
	Timeout time.Duration
	// Fallback is the engine whose decision stands when the model's does
	// not (the built-in). Required.
	Fallback engine.Engine
	// NoResponseFormat leaves response_format out of the request, for
	// servers that refuse json_schema; the schema is in the prompt
	// either way.
	NoResponseFormat bool
	// MaxResponseBytes bounds the body read (default 1 MiB).
	MaxResponseBytes int64
	// Logger receives the failures (default: discard).
	Logger *slog.Logger
	// Registerer registers the failure counter (nil: not registered).
	Registerer prometheus.Registerer
}

// Engine decides with a language model, falling back on Options.Fallback.
// It is safe for concurrent use.
type Engine struct {
	o        Options
	endpoint string
	name     string
	log      *slog.Logger
	failures *prometheus.CounterVec
}

var _ engine.Engine = (*Engine)(nil)

// New returns an engine, or an error naming the missing or invalid
// option.
func New(o Options) (*Engine, error) {
	switch {
	case o.Fallback == nil:
		return nil, errors.New("llm: new: Options.Fallback is required")
	case strings.TrimSpace(o.Model) == "":
		return nil, errors.New("llm: new: Options.Model is required")
	case o.Timeout < 0:
		return nil, fmt.Errorf("llm: new: negative timeout %s", o.Timeout)
	}
	u, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("llm: new: URL %q is not an http or https URL", redactURL(o.URL))
	}
	if strings.ContainsAny(o.APIKey, "\r\n") {
		return nil, errors.New("llm: new: the API key holds a line break")
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		o:        o,
		endpoint: strings.TrimRight(u.String(), "/") + "/chat/completions",
		name:     "llm:" + o.Model,
		log:      o.Logger.With("component", "engine.llm", "model", o.Model),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_autonomous_llm_failures_total",
			Help: "Decisions of the language model that were not used (the built-in decision stood), by reason.",
		}, []string{"reason"}),
	}
	if err := promutil.Register(o.Registerer, &e.failures); err != nil {
		return nil, fmt.Errorf("llm: new: %w", err)
	}
	for _, r := range reasons {
		e.failures.WithLabelValues(r)
	}
	return e, nil
}

// Name is the Engine of its decisions: "llm:<model>".
func (e *Engine) Name() string { return e.name }

// Decide returns the model's decision on in when it gave a valid one,
// the fallback's otherwise. Its error is the fallback's: a failure of
// the model is not one.
func (e *Engine) Decide(ctx context.Context, in engine.Input) (store.Decision, error) {
	d, err := e.o.Fallback.Decide(ctx, in)
	if err != nil {
		return d, err
	}
	reply, reason, err := e.ask(ctx, in, d)
	if err == nil {
		var out store.Decision
		if out, err = e.merge(in, d, reply); err == nil {
			return out, nil
		}
		reason = ReasonTemplate
	}
	e.failures.WithLabelValues(reason).Inc()
	level := slog.LevelWarn
	if reason == ReasonCanceled {
		level = slog.LevelDebug
	}
	e.log.Log(ctx, level, "model decision not used, the built-in decision stands",
		"reason", reason, "err", e.redact(err.Error()), "event_id", in.Event.ID)
	return d, nil
}

// ask sends the request and parses the reply; on failure it returns the
// failure's reason.
func (e *Engine) ask(ctx context.Context, in engine.Input, d store.Decision) (Reply, string, error) {
	body, err := e.buildRequest(in, d)
	if err != nil {
		return Reply{}, ReasonTransport, err
	}
	rctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return Reply{}, ReasonTransport, fmt.Errorf("llm: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if e.o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.o.APIKey)
	}
	resp, err := e.o.Client.Do(req)
	if err != nil {
		return Reply{}, e.ctxReason(ctx, rctx, ReasonTransport), fmt.Errorf("llm: post %s: %w", redactURL(e.endpoint), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, e.o.MaxResponseBytes+1))
	if err != nil {
		return Reply{}, e.ctxReason(ctx, rctx, ReasonTransport), fmt.Errorf("llm: read the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Reply{}, ReasonStatus, fmt.Errorf("llm: post %s: status %d: %s", redactURL(e.endpoint), resp.StatusCode, oneLine(clip(string(data), 300)))
	}
	if int64(len(data)) > e.o.MaxResponseBytes {
		return Reply{}, ReasonTooLarge, fmt.Errorf("llm: the answer is over %d bytes", e.o.MaxResponseBytes)
	}
	content, err := Content(data)
	if err != nil {
		return Reply{}, ReasonEnvelope, err
	}
	reply, err := ParseReply(content)
	if err != nil {
		return Reply{}, ReasonSchema, err
	}
	return reply, "", nil
}

// ctxReason is the reason of a failure while the request's context rctx
// (a child of the caller's ctx) may have ended.
func (e *Engine) ctxReason(ctx, rctx context.Context, otherwise string) string {
	switch {
	case ctx.Err() != nil:
		return ReasonCanceled
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return ReasonTimeout
	}
	return otherwise
}

// merge returns the decision of an accepted reply: its type, confidence
// (capped) and order on the built-in decision d, whose factors it keeps.
func (e *Engine) merge(in engine.Input, d store.Decision, r Reply) (store.Decision, error) {
	cands := make(map[int64]engine.Candidate, len(in.Candidates))
	for _, c := range in.Candidates {
		cands[c.Template.ID] = c
	}
	recs := make(map[int64]store.Recommendation, len(d.RecommendedActions))
	for _, rec := range d.RecommendedActions {
		recs[rec.TemplateID] = rec
	}
	out := d
	out.RecommendedActions = make([]store.Recommendation, 0, len(r.TemplateIDs))
	for _, id := range r.TemplateIDs {
		rec, ok := recs[id]
		if _, cand := cands[id]; !ok || !cand {
			return d, fmt.Errorf("%w: template %d is not a candidate", ErrTemplate, id)
		}
		out.RecommendedActions = append(out.RecommendedActions, rec)
	}
	if r.DecisionType == store.DecisionAutomate {
		if len(r.TemplateIDs) == 0 {
			return d, fmt.Errorf("%w: automate without a template", ErrTemplate)
		}
		if cands[r.TemplateIDs[0]].Success.Demoted {
			return d, fmt.Errorf("%w: template %d is demoted on this pattern and cannot come first for automation", ErrTemplate, r.TemplateIDs[0])
		}
	}

	conf := round2(r.Confidence)
	capNote := ""
	if len(r.TemplateIDs) > 0 {
		adjust := 0.0
		for _, f := range d.Factors {
			if f.Name != engine.FactorTemplateSuccess && f.Name != engine.FactorBase {
				adjust += f.Contribution
			}
		}
		limit := round2(min(max(adjust+round2(cands[r.TemplateIDs[0]].Success.Lower), 0), 1))
		if conf > limit {
			capNote = fmt.Sprintf(", capped at %.2f (what the built-in model gives template %d: its success lower bound and the adjustments)", limit, r.TemplateIDs[0])
			conf = limit
		}
	}
	out.DecisionType = r.DecisionType
	out.Confidence = conf
	out.Engine = e.name

	builtinEnd := d.Reasoning
	if i := strings.LastIndex(builtinEnd, "\n=> "); i >= 0 {
		builtinEnd = builtinEnd[i+len("\n=> "):]
	}
	builtinEnd, _, _ = strings.Cut(builtinEnd, ". The policy decides")
	llm := store.Factor{
		Name:         "llm",
		Value:        e.o.Model,
		Contribution: round2(conf - d.Confidence),
		Detail: fmt.Sprintf("the model answered %s at %.2f%s; the built-in engine concluded %s; the model's reasoning: %s",
			r.DecisionType, r.Confidence, capNote, builtinEnd, oneLine(r.Reasoning)),
	}
	out.Factors = append(append(make([]store.Factor, 0, len(d.Factors)+1), d.Factors...), llm)

	var sb strings.Builder
	fmt.Fprintf(&sb, "=> %s, confidence %.2f (%s): ", r.DecisionType, conf, e.name)
	if len(out.RecommendedActions) > 0 {
		first := out.RecommendedActions[0]
		fmt.Fprintf(&sb, "recommend %q (template %d; success lower bound %.2f on %s outcomes and feedback) on %s",
			first.TemplateName, first.TemplateID, first.Success, strconv.FormatFloat(first.Evidence, 'f', -1, 64), host(d))
	} else {
		fmt.Fprintf(&sb, "no template recommended, on %s", host(d))
	}
	sb.WriteString(". The policy decides what runs unattended.")
	out.Reasoning = engine.Reasoning(out.Factors, sb.String())
	return out, nil
}

func host(d store.Decision) string {
	if d.SourceHost == "" {
		return "the target"
	}
	return d.SourceHost
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// redact removes the API key from s.
func (e *Engine) redact(s string) string {
	if e.o.APIKey == "" {
		return s
	}
	return strings.ReplaceAll(s, e.o.APIKey, "[redacted]")
}

// redactURL is raw without its password, or a placeholder when it does
// not parse.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
