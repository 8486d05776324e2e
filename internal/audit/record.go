package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Action is what a record says happened: a short lower-case verb, one of
// the constants below for what the autonomous service does. Append
// accepts any value of 1 to MaxAction characters a-z, 0-9 and '_'
// starting with a letter, so that a new kind of event needs no change
// here; use a constant, and add one here for a new kind.
type Action string

// The actions reflex records.
const (
	// ActionDecision: the decision engine made a decision (subject
	// "decision:<id>"; parameters: decision_type, confidence, the
	// recommended actions).
	ActionDecision Action = "decision"
	// ActionApprovalRequest: a step waits for approval (subject
	// "approval:<id>").
	ActionApprovalRequest Action = "approval_request"
	// ActionApproval: an operator approved a waiting step.
	ActionApproval Action = "approval"
	// ActionRejection: an operator rejected a waiting step.
	ActionRejection Action = "rejection"
	// ActionExecution: an execution started, ended or was cancelled
	// (subject "execution:<id>").
	ActionExecution Action = "execution"
	// ActionExecutionStep: one step of an execution started or ended
	// (subject "execution:<id>/step:<name>").
	ActionExecutionStep Action = "execution_step"
	// ActionRollback: a rollback action ran for a completed step.
	ActionRollback Action = "rollback"
	// ActionRefusal: the safety controller refused to run something (no
	// valid approval token, policy, budget, circuit breaker).
	ActionRefusal Action = "refusal"
	// ActionEscalation: a decision or an execution was handed to a human.
	ActionEscalation Action = "escalation"
	// ActionOverride: a human overrode a decision (with the reason).
	ActionOverride Action = "override"
	// ActionPause: the kill switch stopped new automation.
	ActionPause Action = "pause"
	// ActionResume: automation resumed after a pause.
	ActionResume Action = "resume"
	// ActionPolicyChange: the automation policy changed.
	ActionPolicyChange Action = "policy_change"
	// ActionActionDefinition: an action definition was created, changed
	// or deleted (subject "action:<id>").
	ActionActionDefinition Action = "action_definition"
	// ActionFeedback: feedback on a decision was received.
	ActionFeedback Action = "feedback"
	// ActionDemotion: the learning layer demoted a template to
	// approval-required (with the reason).
	ActionDemotion Action = "demotion"
)

// Actions lists the constants above, in the order they are declared.
var Actions = []Action{
	ActionDecision, ActionApprovalRequest, ActionApproval, ActionRejection,
	ActionExecution, ActionExecutionStep, ActionRollback, ActionRefusal,
	ActionEscalation, ActionOverride, ActionPause, ActionResume,
	ActionPolicyChange, ActionActionDefinition, ActionFeedback, ActionDemotion,
}

// Known reports whether a is one of Actions.
func (a Action) Known() bool {
	for _, k := range Actions {
		if a == k {
			return true
		}
	}
	return false
}

// ActorSystem is the actor of what reflex does by itself.
const ActorSystem = "system"

// Bounds of a record's fields. Actor and subject are cut to their bound
// (at a character boundary); an action outside its syntax and parameters
// larger than MaxParameters are refused.
const (
	MaxActor      = 200
	MaxAction     = 64
	MaxSubject    = 500
	MaxParameters = 64 << 10 // bytes of the canonical JSON
)

// Entry is what a caller records; Append makes a Record of it.
type Entry struct {
	// Actor is who did it: an API key's id or name, or ActorSystem.
	Actor string
	// Action is what happened (one of the Action constants).
	Action Action
	// Subject is what it happened to: "decision:12",
	// "execution:7/step:restart", "policy".
	Subject string
	// Parameters are the details: anything encoding/json encodes as an
	// object (a struct, a map), JSON text of an object as a
	// json.RawMessage or []byte, or nil for none. Members whose name
	// looks like a secret are redacted (see Redact); the record holds
	// CanonicalParameters of it.
	Parameters any
}

// Record is one entry of the log as stored. Hash authenticates every
// other field (see Canonical).
type Record struct {
	// Seq numbers the records 1, 2, 3 ... without gaps, in append order.
	Seq int64 `json:"seq"`
	// Time is when it was appended: UTC, whole microseconds.
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  Action    `json:"action"`
	Subject string    `json:"subject"`
	// Parameters is a JSON object in canonical form, redacted (see
	// CanonicalParameters). It is stored and authenticated as these
	// exact bytes.
	Parameters json.RawMessage `json:"parameters"`
	// KeyID names the key that made Hash (Key.ID), so that verifying
	// with another key says so.
	KeyID string `json:"key_id"`
	// PrevHash is the Hash of the record before (Genesis for record 1).
	PrevHash string `json:"prev_hash"`
	// Hash is HMAC-SHA256(key, Canonical()) in lower-case hex.
	Hash string `json:"hash"`
}

// Genesis is the PrevHash of record 1: 64 zeros, the width of a hash.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// canonicalTag starts the canonical encoding; a change of the encoding
// changes the tag.
const canonicalTag = "reflex-audit-v1"

// TimeFormat is how Canonical writes a record's time: UTC, fixed width,
// microseconds.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Canonical is the message that r.Hash authenticates: nine fields, each
// written as its length in bytes (8 bytes, big-endian) followed by its
// bytes, in this order:
//
//  1. the tag "reflex-audit-v1"
//  2. Seq in decimal
//  3. Time in UTC as TimeFormat (2026-05-01T12:00:00.000000Z)
//  4. KeyID
//  5. Actor
//  6. Action
//  7. Subject
//  8. Parameters, the stored bytes as they are
//  9. PrevHash (lower-case hex)
//
// Every field is length-prefixed, so two different records never have
// the same encoding, whatever bytes their fields hold. Verify hashes the
// stored bytes; nothing is re-encoded, so the result does not depend on
// how a database or a later Go release formats JSON.
func (r Record) Canonical() []byte {
	fields := [...]string{
		canonicalTag,
		strconv.FormatInt(r.Seq, 10),
		r.Time.UTC().Format(TimeFormat),
		r.KeyID,
		r.Actor,
		string(r.Action),
		r.Subject,
		string(r.Parameters),
		r.PrevHash,
	}
	n := 0
	for _, f := range fields {
		n += 8 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// Errors of Append and its helpers.
var (
	// ErrInvalid: the entry cannot be recorded as given (an action
	// outside its syntax, parameters that are not a JSON object or too
	// large). Nothing was appended.
	ErrInvalid = errors.New("audit: invalid entry")
	// ErrKeyMismatch: the newest record was made with another key than
	// this log's. Nothing was appended: a log chained with two keys
	// cannot be verified.
	ErrKeyMismatch = errors.New("audit: the log was written with another key")
)

// validAction reports whether a is 1 to MaxAction characters of a-z, 0-9
// and '_', starting with a letter.
func validAction(a Action) bool {
	if len(a) == 0 || len(a) > MaxAction || a[0] < 'a' || a[0] > 'z' {
		return false
	}
	for i := 1; i < len(a); i++ {
		c := a[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// cleanText makes s storable as it is hashed: valid UTF-8 (invalid bytes
// become U+FFFD), no NUL characters (PostgreSQL refuses both in text), at
// most maxLen characters.
func cleanText(s string, maxLen int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if utf8.RuneCountInString(s) > maxLen {
		n := 0
		for i := range s {
			if n == maxLen {
				return s[:i]
			}
			n++
		}
	}
	return s
}

// Storable range of a record's time, as the stores keep times.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// cleanTime is t in UTC, whole microseconds, within years 1 to 9999.
func cleanTime(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Before(minTime) {
		return minTime
	}
	if t.After(maxTime) {
		return maxTime
	}
	return t
}

// Redacted replaces the value of a member whose name looks like a
// secret.
const Redacted = "[redacted]"

// secretWords are the parts of a member name that make its value a
// secret (compared case-insensitively, anywhere in the name).
var secretWords = []string{"token", "secret", "password", "passwd", "key", "authorization", "cookie", "credential"}

// IsSecretName reports whether the value of a member called name is
// redacted: whether name holds, in any case, one of token, secret,
// password, passwd, key, authorization, cookie or credential
// ("api_key", "X-Auth-Token", "Set-Cookie", "keyboard" all do).
func IsSecretName(name string) bool {
	l := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// Redact replaces, in a value decoded from JSON (map[string]any, []any,
// strings, numbers, booleans, nil), the value of every object member
// whose name IsSecretName with the string Redacted, at any depth, in
// objects within arrays too. It changes v in place and returns it.
// Redacting twice changes nothing more. Values under other names are
// kept as they are: a secret must not travel in a member called, say,
// "argv".
func Redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if IsSecretName(k) {
				x[k] = Redacted
				continue
			}
			x[k] = Redact(e)
		}
	case []any:
		for i, e := range x {
			x[i] = Redact(e)
		}
	}
	return v
}

// CanonicalParameters is the stored form of an entry's parameters:
// v encoded by encoding/json (a json.RawMessage or []byte is taken as
// JSON text), which must give a JSON object (nil and null give {}),
// decoded again with numbers kept as written, redacted (Redact),
// then encoded compactly: no spaces, object members sorted by the bytes
// of their names, strings in valid UTF-8 without HTML escapes, numbers
// as written. CanonicalParameters of its own output returns the same
// bytes. It fails, wrapping ErrInvalid, when v does not encode to an
// object or its canonical form exceeds MaxParameters.
func CanonicalParameters(v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("{}"), nil
	}
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b = x
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("%w: parameters: %w", ErrInvalid, err)
		}
	}
	if len(b) > 4*MaxParameters {
		return nil, fmt.Errorf("%w: parameters: %d bytes, more than %d", ErrInvalid, len(b), MaxParameters)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: parameters must be a JSON object: %w", ErrInvalid, err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: parameters: data after the object", ErrInvalid)
	}
	if m == nil { // the JSON null
		m = map[string]any{}
	}
	Redact(m)
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false)
	if err := e.Encode(m); err != nil {
		return nil, fmt.Errorf("%w: parameters: %w", ErrInvalid, err)
	}
	c := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	if len(c) > MaxParameters {
		return nil, fmt.Errorf("%w: parameters: %d bytes, more than %d", ErrInvalid, len(c), MaxParameters)
	}
	return json.RawMessage(c), nil
}
