package llm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/store"
)

// Errors of the model's answer.
var (
	// ErrEnvelope: the body is not a chat completion with a message.
	ErrEnvelope = errors.New("llm: not a chat completion")
	// ErrSchema: the message's content is not a reply of the schema.
	ErrSchema = errors.New("llm: reply does not fit the schema")
	// ErrTemplate: the reply names a template that is not a candidate,
	// or puts a demoted one first for automation.
	ErrTemplate = errors.New("llm: reply names a template it may not")
)

// MaxReasoning bounds the reply's reasoning, in bytes.
const MaxReasoning = 4000

// Reply is the model's decision: the structure its content must parse
// into.
type Reply struct {
	// DecisionType is investigate, automate, escalate or ignore.
	DecisionType string `json:"decision_type"`
	// Confidence is in [0, 1].
	Confidence float64 `json:"confidence"`
	// Reasoning is a few sentences for a human.
	Reasoning string `json:"reasoning"`
	// TemplateIDs are candidate template ids, best first, without
	// repeats.
	TemplateIDs []int64 `json:"recommended_template_ids"`
}

// Content returns the content of the first choice's message of a chat
// completion body (ErrEnvelope when there is none). The envelope is read
// leniently, as servers add fields of their own; the content is not.
func Content(body []byte) (string, error) {
	var c struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
				Refusal *string `json:"refusal"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return "", fmt.Errorf("%w: %w", ErrEnvelope, err)
	}
	switch {
	case c.Error != nil:
		return "", fmt.Errorf("%w: the server answered an error: %s", ErrEnvelope, clip(c.Error.Message, 200))
	case len(c.Choices) == 0:
		return "", fmt.Errorf("%w: no choices", ErrEnvelope)
	case c.Choices[0].Message.Refusal != nil && *c.Choices[0].Message.Refusal != "":
		return "", fmt.Errorf("%w: the model refused: %s", ErrEnvelope, clip(*c.Choices[0].Message.Refusal, 200))
	case c.Choices[0].Message.Content == nil || strings.TrimSpace(*c.Choices[0].Message.Content) == "":
		return "", fmt.Errorf("%w: the message has no content (finish reason %q)", ErrEnvelope, c.Choices[0].FinishReason)
	}
	return *c.Choices[0].Message.Content, nil
}

// ParseReply parses the content of the model's message strictly: one
// JSON object (optionally inside a ``` fence, which models add without
// response_format), with exactly the four fields of Reply, each of its
// type and in its range; anything else is ErrSchema.
func ParseReply(content string) (Reply, error) {
	content = unfence(content)
	// Keys are matched exactly (encoding/json alone would take
	// "Decision_Type" for decision_type), each once.
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(content))
	if err := dec.Decode(&fields); err != nil {
		return Reply{}, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Reply{}, fmt.Errorf("%w: data after the object", ErrSchema)
	}
	if fields == nil {
		return Reply{}, fmt.Errorf("%w: not an object", ErrSchema)
	}
	var r Reply
	var ids []*int64
	targets := map[string]any{
		"decision_type":            &r.DecisionType,
		"confidence":               &r.Confidence,
		"reasoning":                &r.Reasoning,
		"recommended_template_ids": &ids,
	}
	for k := range fields {
		if targets[k] == nil {
			return Reply{}, fmt.Errorf("%w: unknown field %q", ErrSchema, clip(k, 40))
		}
	}
	for _, k := range []string{"decision_type", "confidence", "reasoning", "recommended_template_ids"} {
		raw, ok := fields[k]
		if !ok || string(raw) == "null" {
			return Reply{}, fmt.Errorf("%w: %s is required", ErrSchema, k)
		}
		if err := json.Unmarshal(raw, targets[k]); err != nil {
			return Reply{}, fmt.Errorf("%w: %s: %w", ErrSchema, k, err)
		}
	}
	r.TemplateIDs = make([]int64, 0, len(ids))
	for _, id := range ids {
		if id == nil {
			return Reply{}, fmt.Errorf("%w: recommended_template_ids holds null", ErrSchema)
		}
		r.TemplateIDs = append(r.TemplateIDs, *id)
	}
	switch r.DecisionType {
	case store.DecisionInvestigate, store.DecisionAutomate, store.DecisionEscalate, store.DecisionIgnore:
	default:
		return Reply{}, fmt.Errorf("%w: decision_type %q is not investigate, automate, escalate or ignore", ErrSchema, clip(r.DecisionType, 40))
	}
	if !(r.Confidence >= 0 && r.Confidence <= 1) || math.IsNaN(r.Confidence) {
		return Reply{}, fmt.Errorf("%w: confidence %v is outside [0, 1]", ErrSchema, r.Confidence)
	}
	if len(r.Reasoning) > MaxReasoning || !utf8.ValidString(r.Reasoning) {
		return Reply{}, fmt.Errorf("%w: reasoning is not valid text of at most %d bytes", ErrSchema, MaxReasoning)
	}
	seen := make(map[int64]bool, len(r.TemplateIDs))
	for _, id := range r.TemplateIDs {
		if seen[id] {
			return Reply{}, fmt.Errorf("%w: template %d is recommended twice", ErrSchema, id)
		}
		seen[id] = true
	}
	return r, nil
}

// unfence strips white space and one surrounding Markdown code fence.
func unfence(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "```") {
		return s
	}
	body, ok := strings.CutSuffix(s, "```")
	if !ok {
		return s
	}
	nl := strings.IndexByte(body, '\n')
	if nl < 0 {
		return s
	}
	if lang := strings.TrimSpace(body[3:nl]); lang != "" && lang != "json" {
		return s
	}
	return strings.TrimSpace(body[nl+1:])
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// oneLine replaces the line breaks of s by spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\r", " ")), " ")
}
