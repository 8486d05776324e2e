// Package approval is the autonomous service's approval gate: a step that
// needs a human's approval is requested here, waits until someone approves
// or rejects it (or it expires), and an approval yields a token that the
// execution redeems once. A token is single-use, bound to the decision,
// the action and the exact parameters it was approved for, and expires;
// only its SHA-256 is stored.
package approval

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// Errors of the gate, with the HTTP status the API answers for each. An
// unknown approval id is store.ErrNotFound (404).
var (
	// ErrInvalid: the request is malformed (no approver, no decision) (400).
	ErrInvalid = errors.New("approval: invalid request")
	// ErrNotPending: the approval was already approved, rejected, used or
	// expired (409).
	ErrNotPending = errors.New("approval: not pending")
	// ErrExpired: the approval expired before it was decided; it is now
	// marked expired (409).
	ErrExpired = errors.New("approval: expired")
	// ErrSelfApproval: the approval needs two people and the approver is
	// the requester (403).
	ErrSelfApproval = errors.New("approval: two-person approval: the requester cannot approve")
	// ErrTokenUnknown: the token is malformed or was never issued (403).
	ErrTokenUnknown = errors.New("approval: unknown approval token")
	// ErrTokenUsed: the token was already redeemed (a replay) (409).
	ErrTokenUsed = errors.New("approval: approval token already used")
	// ErrTokenMismatch: the token was issued for another decision, another
	// action or other parameters (403). The token is spent.
	ErrTokenMismatch = errors.New("approval: approval token does not match the decision, action or parameters")
	// ErrTokenExpired: the token's validity ended (403). The token is
	// spent.
	ErrTokenExpired = errors.New("approval: approval token expired")
)

// Store is the part of store.AutonomousStore the gate uses. It must be
// safe for concurrent use, and UseApproval atomic: of two calls with the
// same hash, even from two processes, one succeeds.
type Store interface {
	InsertApproval(ctx context.Context, a store.Approval) (store.Approval, error)
	Approval(ctx context.Context, id int64) (store.Approval, error)
	Approvals(ctx context.Context, q store.ApprovalQuery) ([]store.Approval, error)
	DecideApproval(ctx context.Context, a store.Approval) (store.Approval, error)
	UseApproval(ctx context.Context, tokenHash string, now time.Time) (store.Approval, error)
}

var _ Store = store.AutonomousStore(nil)

// DefaultTTL is how long an approval waits for a decision by default.
const DefaultTTL = time.Hour

// TokenPrefix starts every approval token, so that one is recognised in
// a log or a secret scanner.
const TokenPrefix = "rxa_"

// tokenBytes is the entropy of a token; tokenLen its length as text.
const (
	tokenBytes = 32
	tokenLen   = len(TokenPrefix) + 43 // base64url of 32 bytes, unpadded
	maxText    = 4 << 10               // bounds of by and comment
	// expireRounds bounds the batches of one ExpireDue.
	expireRounds = 100
)

// Outcomes counted in reflex_autonomous_approvals_total.
const (
	OutcomeRequested     = "requested"
	OutcomeApproved      = "approved"
	OutcomeRejected      = "rejected"
	OutcomeExpired       = "expired"
	OutcomeSelfApproval  = "self_approval_refused"
	OutcomeRedeemed      = "redeemed"
	OutcomeTokenUnknown  = "token_unknown"
	OutcomeTokenUsed     = "token_used"
	OutcomeTokenMismatch = "token_mismatch"
	OutcomeTokenExpired  = "token_expired"
)

var outcomes = []string{
	OutcomeRequested, OutcomeApproved, OutcomeRejected, OutcomeExpired, OutcomeSelfApproval,
	OutcomeRedeemed, OutcomeTokenUnknown, OutcomeTokenUsed, OutcomeTokenMismatch, OutcomeTokenExpired,
}

// Options configure New. Only Store is required.
type Options struct {
	// Store holds the approvals. Required.
	Store Store
	// TTL is how long a request waits for a decision when it does not
	// set its own ExpiresAt (default 1h).
	TTL time.Duration
	// TokenTTL is how long a token is valid after the approval (default:
	// TTL).
	TokenTTL time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Registerer receives reflex_autonomous_approvals_total; nil: none.
	Registerer prometheus.Registerer
}

// Gate is the approval gate. It is safe for concurrent use; its state is
// the store's.
type Gate struct {
	store    Store
	ttl      time.Duration
	tokenTTL time.Duration
	now      func() time.Time
	outcomes *prometheus.CounterVec
}

// New returns a gate, or an error when Store is missing or the metrics
// cannot be registered.
func New(o Options) (*Gate, error) {
	if o.Store == nil {
		return nil, errors.New("approval: new: Options.Store is required")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = o.TTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_autonomous_approvals_total",
		Help: "Approval requests, decisions and token redemptions, by outcome.",
	}, []string{"outcome"})
	if err := promutil.Register(o.Registerer, &c); err != nil {
		return nil, fmt.Errorf("approval: new: %w", err)
	}
	for _, out := range outcomes {
		c.WithLabelValues(out)
	}
	return &Gate{store: o.Store, ttl: o.TTL, tokenTTL: o.TokenTTL, now: o.Now, outcomes: c}, nil
}

func (g *Gate) count(outcome string) { g.outcomes.WithLabelValues(outcome).Inc() }

// ParamsHash is the canonical hash an approval's token is bound to: the
// SHA-256 (hex) of a version tag, the decision and action ids and the
// parameters sorted by key, every string prefixed by its length, so that
// no two different inputs share an encoding.
func ParamsHash(decisionID, actionID int64, params map[string]string) string {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("reflex-approval-v1")
	field(strconv.FormatInt(decisionID, 10))
	field(strconv.FormatInt(actionID, 10))
	field(strconv.Itoa(len(params)))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		field(k)
		field(params[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Request stores a pending approval for a: the step of a.DecisionID
// that runs a.ActionID with a.Parameters, requested by a.RequestedBy,
// with a.RiskLevel, a.Reason and a.TwoPerson as the policy said. It sets
// ParamsHash, Status pending, CreatedAt and, when a.ExpiresAt is zero,
// ExpiresAt to now + TTL. Decision fields given in a are ignored.
func (g *Gate) Request(ctx context.Context, a store.Approval) (store.Approval, error) {
	switch {
	case a.DecisionID <= 0:
		return store.Approval{}, fmt.Errorf("approval: request: decision_id is required: %w", ErrInvalid)
	case a.ActionID < 0:
		return store.Approval{}, fmt.Errorf("approval: request: action_id %d: %w", a.ActionID, ErrInvalid)
	case strings.TrimSpace(a.RequestedBy) == "":
		return store.Approval{}, fmt.Errorf("approval: request: requested_by is required: %w", ErrInvalid)
	}
	now := g.now().UTC()
	a.ID = 0
	a.Parameters = maps.Clone(a.Parameters)
	if a.Parameters == nil {
		a.Parameters = map[string]string{}
	}
	a.ParamsHash = ParamsHash(a.DecisionID, a.ActionID, a.Parameters)
	a.Status = store.ApprovalPending
	a.CreatedAt = now
	if a.ExpiresAt.IsZero() {
		a.ExpiresAt = now.Add(g.ttl)
	}
	if !a.ExpiresAt.After(now) {
		return store.Approval{}, fmt.Errorf("approval: request: expires_at %s is not in the future: %w", a.ExpiresAt.Format(time.RFC3339), ErrInvalid)
	}
	a.DecidedBy, a.DecidedAt, a.Comment, a.TokenHash, a.UsedAt = "", nil, "", "", nil
	out, err := g.store.InsertApproval(ctx, a)
	if err != nil {
		return store.Approval{}, fmt.Errorf("approval: request: %w", err)
	}
	g.count(OutcomeRequested)
	return out, nil
}

// pending loads approval id for a decision by by: it must exist, be
// pending and not have expired (an expired one is marked so, ErrExpired).
func (g *Gate) pending(ctx context.Context, op string, id int64, by, comment string) (store.Approval, time.Time, error) {
	by = strings.TrimSpace(by)
	if by == "" {
		return store.Approval{}, time.Time{}, fmt.Errorf("approval: %s %d: who decides is required: %w", op, id, ErrInvalid)
	}
	if len(by) > maxText || len(comment) > maxText {
		return store.Approval{}, time.Time{}, fmt.Errorf("approval: %s %d: by and comment must be at most %d bytes: %w", op, id, maxText, ErrInvalid)
	}
	a, err := g.store.Approval(ctx, id)
	if err != nil {
		return store.Approval{}, time.Time{}, fmt.Errorf("approval: %s %d: %w", op, id, err)
	}
	if a.Status != store.ApprovalPending {
		return a, time.Time{}, fmt.Errorf("approval: %s %d: it is %s: %w", op, id, a.Status, ErrNotPending)
	}
	now := g.now().UTC()
	if !now.Before(a.ExpiresAt) {
		expired, err := g.expire(ctx, a, now)
		if err != nil {
			return a, now, fmt.Errorf("approval: %s %d: %w", op, id, err)
		}
		return expired, now, fmt.Errorf("approval: %s %d: it expired at %s: %w", op, id, a.ExpiresAt.UTC().Format(time.RFC3339), ErrExpired)
	}
	return a, now, nil
}

// decide records a decision on the pending approval a; a lost race with
// another decision is ErrNotPending.
func (g *Gate) decide(ctx context.Context, op string, a store.Approval) (store.Approval, error) {
	out, err := g.store.DecideApproval(ctx, a)
	switch {
	case errors.Is(err, store.ErrConflict):
		return out, fmt.Errorf("approval: %s %d: it was decided meanwhile (%s): %w", op, a.ID, out.Status, ErrNotPending)
	case err != nil:
		return store.Approval{}, fmt.Errorf("approval: %s %d: %w", op, a.ID, err)
	}
	return out, nil
}

func (g *Gate) expire(ctx context.Context, a store.Approval, now time.Time) (store.Approval, error) {
	a.Status, a.DecidedBy, a.DecidedAt, a.Comment, a.TokenHash = store.ApprovalExpired, "", &now, "expired without a decision", ""
	out, err := g.store.DecideApproval(ctx, a)
	switch {
	case errors.Is(err, store.ErrConflict):
		return out, nil
	case err != nil:
		return store.Approval{}, err
	}
	g.count(OutcomeExpired)
	return out, nil
}

// Approve approves the pending approval id on behalf of by and returns it
// with its token, which is shown once: only its hash is stored. A
// two-person approval cannot be approved by its requester.
func (g *Gate) Approve(ctx context.Context, id int64, by, comment string) (store.Approval, string, error) {
	a, now, err := g.pending(ctx, "approve", id, by, comment)
	if err != nil {
		return a, "", err
	}
	by = strings.TrimSpace(by)
	if a.TwoPerson && by == strings.TrimSpace(a.RequestedBy) {
		g.count(OutcomeSelfApproval)
		return a, "", fmt.Errorf("approval: approve %d: %s requested it: %w", id, by, ErrSelfApproval)
	}
	token, err := newToken()
	if err != nil {
		return store.Approval{}, "", fmt.Errorf("approval: approve %d: %w", id, err)
	}
	a.Status, a.DecidedBy, a.DecidedAt, a.Comment, a.TokenHash = store.ApprovalApproved, by, &now, comment, TokenHash(token)
	out, err := g.decide(ctx, "approve", a)
	if err != nil {
		return out, "", err
	}
	g.count(OutcomeApproved)
	return out, token, nil
}

// Reject rejects the pending approval id on behalf of by, with comment.
// The requester may reject its own request.
func (g *Gate) Reject(ctx context.Context, id int64, by, comment string) (store.Approval, error) {
	a, now, err := g.pending(ctx, "reject", id, by, comment)
	if err != nil {
		return a, err
	}
	a.Status, a.DecidedBy, a.DecidedAt, a.Comment, a.TokenHash = store.ApprovalRejected, strings.TrimSpace(by), &now, comment, ""
	out, err := g.decide(ctx, "reject", a)
	if err != nil {
		return out, err
	}
	g.count(OutcomeRejected)
	return out, nil
}

// Redeem spends token for running actionID of decisionID with params. It
// marks the token used first (single use, atomic in the store), then
// checks that it was approved for exactly this decision, action and
// parameters and that it has not expired: a token presented with another
// request is spent all the same. The approval is returned with every
// error that found one (for the audit log).
func (g *Gate) Redeem(ctx context.Context, token string, decisionID, actionID int64, params map[string]string) (store.Approval, error) {
	if !ValidToken(token) {
		g.count(OutcomeTokenUnknown)
		return store.Approval{}, fmt.Errorf("approval: redeem: malformed token: %w", ErrTokenUnknown)
	}
	now := g.now().UTC()
	a, err := g.store.UseApproval(ctx, TokenHash(token), now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.count(OutcomeTokenUnknown)
		return store.Approval{}, fmt.Errorf("approval: redeem: %w", ErrTokenUnknown)
	case errors.Is(err, store.ErrConflict):
		g.count(OutcomeTokenUsed)
		return a, fmt.Errorf("approval: redeem: approval %d is %s: %w", a.ID, a.Status, ErrTokenUsed)
	case err != nil:
		return store.Approval{}, fmt.Errorf("approval: redeem: %w", err)
	}
	want := ParamsHash(decisionID, actionID, params)
	same := subtle.ConstantTimeCompare([]byte(want), []byte(a.ParamsHash)) == 1
	if !same || a.DecisionID != decisionID || a.ActionID != actionID {
		g.count(OutcomeTokenMismatch)
		return a, fmt.Errorf("approval: redeem: approval %d is for decision %d, action %d and other parameters: %w", a.ID, a.DecisionID, a.ActionID, ErrTokenMismatch)
	}
	if exp := g.TokenExpiry(a); !now.Before(exp) {
		g.count(OutcomeTokenExpired)
		return a, fmt.Errorf("approval: redeem: approval %d: the token expired at %s: %w", a.ID, exp.UTC().Format(time.RFC3339), ErrTokenExpired)
	}
	g.count(OutcomeRedeemed)
	return a, nil
}

// TokenExpiry is when the token of the approved approval a stops being
// valid: TokenTTL after the approval.
func (g *Gate) TokenExpiry(a store.Approval) time.Time {
	if a.DecidedAt == nil {
		return a.ExpiresAt
	}
	return a.DecidedAt.Add(g.tokenTTL)
}

// ExpireDue marks the pending approvals past their ExpiresAt expired and
// returns how many it marked. It reads at most store.MaxDecisionLimit
// pending approvals a round and stops after 100 rounds (the next call
// goes on).
func (g *Gate) ExpireDue(ctx context.Context) (int, error) {
	n := 0
	for range expireRounds {
		list, err := g.store.Approvals(ctx, store.ApprovalQuery{Status: store.ApprovalPending, Limit: store.MaxDecisionLimit})
		if err != nil {
			return n, fmt.Errorf("approval: expire: %w", err)
		}
		now := g.now().UTC()
		marked := 0
		for _, a := range list {
			if now.Before(a.ExpiresAt) {
				continue
			}
			out, err := g.expire(ctx, a, now)
			if err != nil {
				return n, fmt.Errorf("approval: expire %d: %w", a.ID, err)
			}
			if out.Status == store.ApprovalExpired {
				n++
				marked++
			}
		}
		if len(list) < store.MaxDecisionLimit || marked == 0 {
			break
		}
	}
	return n, nil
}

// Pending lists the approvals waiting for a decision, oldest first (at
// most store.MaxDecisionLimit), without those past their ExpiresAt that
// ExpireDue has not marked yet.
func (g *Gate) Pending(ctx context.Context) ([]store.Approval, error) {
	list, err := g.store.Approvals(ctx, store.ApprovalQuery{Status: store.ApprovalPending, Limit: store.MaxDecisionLimit})
	if err != nil {
		return nil, fmt.Errorf("approval: pending: %w", err)
	}
	now := g.now()
	out := list[:0]
	for _, a := range list {
		if a.Status == store.ApprovalPending && now.Before(a.ExpiresAt) {
			out = append(out, a)
		}
	}
	return out, nil
}

// newToken returns a new token: TokenPrefix and 32 random bytes in
// base64url.
func newToken() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

var tokenEncoding = base64.RawURLEncoding.Strict()

// ValidToken reports whether s has the shape of a token: TokenPrefix and
// the canonical base64url (unpadded) of 32 bytes.
func ValidToken(s string) bool {
	if len(s) != tokenLen || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	b, err := tokenEncoding.DecodeString(s[len(TokenPrefix):])
	return err == nil && len(b) == tokenBytes
}

// TokenHash is what the store keeps of a token: its SHA-256, hex.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
