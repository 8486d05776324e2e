package approval

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// memStore is an in-memory Store. Like the real ones, every method is
// atomic: DecideApproval and UseApproval are conditional updates under
// one lock.
type memStore struct {
	mu     sync.Mutex
	rows   map[int64]store.Approval
	next   int64
	fail   error // returned by every method when set
	useCnt atomic.Int64
}

func newMemStore() *memStore { return &memStore{rows: map[int64]store.Approval{}} }

func clone(a store.Approval) store.Approval {
	a.Parameters = maps.Clone(a.Parameters)
	return a
}

func (m *memStore) InsertApproval(_ context.Context, a store.Approval) (store.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return store.Approval{}, m.fail
	}
	m.next++
	a.ID = m.next
	m.rows[a.ID] = clone(a)
	return clone(a), nil
}

func (m *memStore) Approval(_ context.Context, id int64) (store.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return store.Approval{}, m.fail
	}
	a, ok := m.rows[id]
	if !ok {
		return store.Approval{}, store.ErrNotFound
	}
	return clone(a), nil
}

func (m *memStore) Approvals(_ context.Context, q store.ApprovalQuery) ([]store.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultDecisionLimit
	}
	var out []store.Approval
	for id := int64(1); id <= m.next && len(out) < limit; id++ {
		a, ok := m.rows[id]
		if ok && (q.Status == "" || a.Status == q.Status) && (q.DecisionID == 0 || a.DecisionID == q.DecisionID) {
			out = append(out, clone(a))
		}
	}
	return out, nil
}

func (m *memStore) DecideApproval(_ context.Context, a store.Approval) (store.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return store.Approval{}, m.fail
	}
	cur, ok := m.rows[a.ID]
	if !ok {
		return store.Approval{}, store.ErrNotFound
	}
	if cur.Status != store.ApprovalPending {
		return clone(cur), store.ErrConflict
	}
	cur.Status, cur.DecidedBy, cur.DecidedAt, cur.Comment = a.Status, a.DecidedBy, a.DecidedAt, a.Comment
	if a.Status == store.ApprovalApproved {
		cur.TokenHash = a.TokenHash
	}
	m.rows[a.ID] = cur
	return clone(cur), nil
}

func (m *memStore) UseApproval(_ context.Context, tokenHash string, now time.Time) (store.Approval, error) {
	m.useCnt.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return store.Approval{}, m.fail
	}
	for id, a := range m.rows {
		if a.TokenHash != tokenHash || tokenHash == "" {
			continue
		}
		if a.Status != store.ApprovalApproved {
			return clone(a), store.ErrConflict
		}
		a.Status, a.UsedAt = store.ApprovalUsed, &now
		m.rows[id] = a
		return clone(a), nil
	}
	return store.Approval{}, store.ErrNotFound
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	gate  *Gate
	store *memStore
	clock *clock
	reg   *prometheus.Registry
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{store: newMemStore(), clock: &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}, reg: prometheus.NewRegistry()}
	g, err := New(Options{Store: f.store, Now: f.clock.Now, Registerer: f.reg})
	require.NoError(t, err)
	f.gate = g
	return f
}

func (f fixture) count(outcome string) float64 {
	return testutil.ToFloat64(f.gate.outcomes.WithLabelValues(outcome))
}

var params = map[string]string{"host": "web-01", "signal": "TERM"}

func (f fixture) request(t *testing.T, twoPerson bool) store.Approval {
	t.Helper()
	a, err := f.gate.Request(t.Context(), store.Approval{
		DecisionID: 7, ActionID: 3, ActionName: "kill_high_cpu_processes", StepName: "kill",
		Parameters: maps.Clone(params), RiskLevel: "high", Reason: "risk level high never runs unattended",
		TwoPerson: twoPerson, RequestedBy: "key-alice",
	})
	require.NoError(t, err)
	return a
}

func TestNew(t *testing.T) {
	_, err := New(Options{})
	require.Error(t, err)
	g, err := New(Options{Store: newMemStore()})
	require.NoError(t, err)
	require.Equal(t, DefaultTTL, g.ttl)
	require.Equal(t, DefaultTTL, g.tokenTTL)

	// Two gates on one registry share the counter.
	reg := prometheus.NewRegistry()
	g1, err := New(Options{Store: newMemStore(), Registerer: reg})
	require.NoError(t, err)
	g2, err := New(Options{Store: newMemStore(), Registerer: reg})
	require.NoError(t, err)
	require.Same(t, g1.outcomes, g2.outcomes)
}

func TestParamsHash(t *testing.T) {
	// An independent writing of the canonical form: stored hashes must
	// stay valid across versions.
	var buf []byte
	field := func(s string) {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	for _, s := range []string{"reflex-approval-v1", "7", "3", "2", "host", "web-01", "signal", "TERM"} {
		field(s)
	}
	sum := sha256.Sum256(buf)
	require.Equal(t, hex.EncodeToString(sum[:]), ParamsHash(7, 3, params))

	base := ParamsHash(7, 3, params)
	for range 20 { // map order does not matter
		require.Equal(t, base, ParamsHash(7, 3, maps.Clone(params)))
	}
	require.Equal(t, ParamsHash(1, 2, nil), ParamsHash(1, 2, map[string]string{}))
	differ := []string{
		ParamsHash(8, 3, params),
		ParamsHash(7, 4, params),
		ParamsHash(7, 3, map[string]string{"host": "web-02", "signal": "TERM"}),
		ParamsHash(7, 3, map[string]string{"host": "web-01"}),
		ParamsHash(7, 3, map[string]string{"host": "web-01", "signal": "TERM", "x": ""}),
		ParamsHash(73, 0, nil), ParamsHash(7, 30, nil),
	}
	for i, h := range differ {
		require.NotEqual(t, base, h, "variant %d", i)
	}
	// Length prefixes: moving a boundary changes the hash.
	require.NotEqual(t, ParamsHash(1, 1, map[string]string{"a": "bc"}), ParamsHash(1, 1, map[string]string{"ab": "c"}))
	require.NotEqual(t, ParamsHash(1, 1, map[string]string{"a": "b", "c": ""}), ParamsHash(1, 1, map[string]string{"a": "b\x00c"}))
}

func TestRequest(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	in := store.Approval{DecisionID: 7, ActionID: 3, Parameters: params, RequestedBy: "key-alice",
		Status: store.ApprovalApproved, TokenHash: "forged", DecidedBy: "mallory"}
	a, err := f.gate.Request(ctx, in)
	require.NoError(t, err)
	require.Positive(t, a.ID)
	require.Equal(t, store.ApprovalPending, a.Status)
	require.Equal(t, ParamsHash(7, 3, params), a.ParamsHash)
	require.Equal(t, f.clock.Now(), a.CreatedAt)
	require.Equal(t, f.clock.Now().Add(time.Hour), a.ExpiresAt)
	require.Empty(t, a.TokenHash, "a request carries no token")
	require.Empty(t, a.DecidedBy)
	require.Equal(t, 1.0, f.count(OutcomeRequested))

	// Its own expiry (the policy's TTL of the moment) is kept.
	own := f.clock.Now().Add(10 * time.Minute)
	a, err = f.gate.Request(ctx, store.Approval{DecisionID: 7, RequestedBy: "rules", ExpiresAt: own})
	require.NoError(t, err)
	require.Equal(t, own, a.ExpiresAt)
	require.NotNil(t, a.Parameters)

	for name, bad := range map[string]store.Approval{
		"no decision":  {ActionID: 3, RequestedBy: "x"},
		"no requester": {DecisionID: 7, ActionID: 3, RequestedBy: " "},
		"bad action":   {DecisionID: 7, ActionID: -1, RequestedBy: "x"},
		"past expiry":  {DecisionID: 7, RequestedBy: "x", ExpiresAt: f.clock.Now()},
	} {
		_, err := f.gate.Request(ctx, bad)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	f.store.fail = errors.New("db down")
	_, err = f.gate.Request(ctx, in)
	require.ErrorContains(t, err, "db down")
}

func TestApprove(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.request(t, false)
	f.clock.Add(time.Minute)

	got, token, err := f.gate.Approve(ctx, a.ID, "key-bob", "go ahead")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(token, TokenPrefix))
	require.True(t, ValidToken(token))
	require.Equal(t, store.ApprovalApproved, got.Status)
	require.Equal(t, "key-bob", got.DecidedBy)
	require.Equal(t, "go ahead", got.Comment)
	require.Equal(t, f.clock.Now(), *got.DecidedAt)
	require.Equal(t, TokenHash(token), got.TokenHash)
	stored, err := f.store.Approval(ctx, a.ID)
	require.NoError(t, err)
	require.NotContains(t, stored.TokenHash+stored.Comment+stored.ParamsHash, token[len(TokenPrefix):], "the token itself is never stored")
	require.Equal(t, 1.0, f.count(OutcomeApproved))

	// Decided: neither approved again nor rejected.
	_, _, err = f.gate.Approve(ctx, a.ID, "key-carol", "")
	require.ErrorIs(t, err, ErrNotPending)
	_, err = f.gate.Reject(ctx, a.ID, "key-carol", "")
	require.ErrorIs(t, err, ErrNotPending)

	// Two approvals give two different tokens.
	b := f.request(t, false)
	_, token2, err := f.gate.Approve(ctx, b.ID, "key-alice", "self approval is fine without two_person")
	require.NoError(t, err)
	require.NotEqual(t, token, token2)

	_, _, err = f.gate.Approve(ctx, 999, "key-bob", "")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, _, err = f.gate.Approve(ctx, b.ID, "", "")
	require.ErrorIs(t, err, ErrInvalid)
	_, _, err = f.gate.Approve(ctx, b.ID, "key-bob", strings.Repeat("x", maxText+1))
	require.ErrorIs(t, err, ErrInvalid)
	f.store.fail = errors.New("db down")
	_, _, err = f.gate.Approve(ctx, b.ID, "key-bob", "")
	require.ErrorContains(t, err, "db down")
}

func TestTwoPerson(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.request(t, true)
	_, token, err := f.gate.Approve(ctx, a.ID, " key-alice ", "I asked, I approve")
	require.ErrorIs(t, err, ErrSelfApproval)
	require.Empty(t, token)
	require.Equal(t, 1.0, f.count(OutcomeSelfApproval))
	stored, err := f.store.Approval(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, store.ApprovalPending, stored.Status, "still waiting for a second person")

	got, token, err := f.gate.Approve(ctx, a.ID, "key-bob", "")
	require.NoError(t, err)
	require.NotEmpty(t, token)
	require.Equal(t, "key-bob", got.DecidedBy)

	// The requester may reject its own request.
	b := f.request(t, true)
	got, err = f.gate.Reject(ctx, b.ID, "key-alice", "changed my mind")
	require.NoError(t, err)
	require.Equal(t, store.ApprovalRejected, got.Status)
}

func TestReject(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.request(t, false)
	got, err := f.gate.Reject(ctx, a.ID, "key-bob", "not during the sale")
	require.NoError(t, err)
	require.Equal(t, store.ApprovalRejected, got.Status)
	require.Equal(t, "not during the sale", got.Comment)
	require.Empty(t, got.TokenHash)
	require.Equal(t, 1.0, f.count(OutcomeRejected))
	_, _, err = f.gate.Approve(ctx, a.ID, "key-carol", "")
	require.ErrorIs(t, err, ErrNotPending)
	_, err = f.gate.Reject(ctx, 999, "key-bob", "")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.gate.Reject(ctx, a.ID, "  ", "")
	require.ErrorIs(t, err, ErrInvalid)
}

func TestDecideExpired(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.request(t, false)
	f.clock.Add(time.Hour) // exactly at ExpiresAt: expired
	got, token, err := f.gate.Approve(ctx, a.ID, "key-bob", "")
	require.ErrorIs(t, err, ErrExpired)
	require.Empty(t, token)
	require.Equal(t, store.ApprovalExpired, got.Status)
	_, _, err = f.gate.Approve(ctx, a.ID, "key-bob", "")
	require.ErrorIs(t, err, ErrNotPending)

	b := f.request(t, false)
	f.clock.Add(2 * time.Hour)
	_, err = f.gate.Reject(ctx, b.ID, "key-bob", "")
	require.ErrorIs(t, err, ErrExpired)
	require.Equal(t, 2.0, f.count(OutcomeExpired))
}

func TestConcurrentApprove(t *testing.T) {
	f := newFixture(t)
	a := f.request(t, false)
	const n = 16
	var wg sync.WaitGroup
	var won atomic.Int32
	var tokens sync.Map
	for i := range n {
		wg.Go(func() {
			_, token, err := f.gate.Approve(t.Context(), a.ID, "key-bob", "")
			if err == nil {
				won.Add(1)
				tokens.Store(i, token)
				return
			}
			if !errors.Is(err, ErrNotPending) {
				t.Errorf("approve: %v", err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), won.Load(), "one approval, one token")
}

func approved(t *testing.T, f fixture) (store.Approval, string) {
	t.Helper()
	a := f.request(t, false)
	_, token, err := f.gate.Approve(t.Context(), a.ID, "key-bob", "")
	require.NoError(t, err)
	return a, token
}

func TestRedeem(t *testing.T) {
	ctx := t.Context()
	t.Run("once", func(t *testing.T) {
		f := newFixture(t)
		a, token := approved(t, f)
		got, err := f.gate.Redeem(ctx, token, 7, 3, maps.Clone(params))
		require.NoError(t, err)
		require.Equal(t, a.ID, got.ID)
		require.Equal(t, store.ApprovalUsed, got.Status)
		require.Equal(t, f.clock.Now(), *got.UsedAt)
		require.Equal(t, 1.0, f.count(OutcomeRedeemed))

		got, err = f.gate.Redeem(ctx, token, 7, 3, params)
		require.ErrorIs(t, err, ErrTokenUsed, "a replay")
		require.Equal(t, a.ID, got.ID)
		require.Equal(t, 1.0, f.count(OutcomeTokenUsed))
	})
	t.Run("unknown", func(t *testing.T) {
		f := newFixture(t)
		approved(t, f)
		other, err := newToken()
		require.NoError(t, err)
		_, err = f.gate.Redeem(ctx, other, 7, 3, params)
		require.ErrorIs(t, err, ErrTokenUnknown)
		calls := f.store.useCnt.Load()
		for _, bad := range []string{"", "rxa_", "rxa_short", "xyz_" + other[4:], other + "A", other[:len(other)-1] + "!", strings.ToUpper(other)} {
			_, err = f.gate.Redeem(ctx, bad, 7, 3, params)
			require.ErrorIs(t, err, ErrTokenUnknown, "%q", bad)
		}
		require.Equal(t, calls, f.store.useCnt.Load(), "a malformed token does not reach the store")
		require.Equal(t, 8.0, f.count(OutcomeTokenUnknown))
	})
	mismatches := map[string]struct {
		decision, action int64
		params           map[string]string
	}{
		"another decision":   {8, 3, params},
		"another action":     {7, 4, params},
		"changed parameter":  {7, 3, map[string]string{"host": "db-01", "signal": "TERM"}},
		"added parameter":    {7, 3, map[string]string{"host": "web-01", "signal": "TERM", "force": "1"}},
		"removed parameter":  {7, 3, map[string]string{"host": "web-01"}},
		"no parameters":      {7, 3, nil},
		"swapped boundaries": {7, 3, map[string]string{"host": "web-01signal", "": "TERM"}},
	}
	for name, m := range mismatches {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			a, token := approved(t, f)
			got, err := f.gate.Redeem(ctx, token, m.decision, m.action, m.params)
			require.ErrorIs(t, err, ErrTokenMismatch)
			require.Equal(t, a.ID, got.ID)
			// The token is spent: the right request cannot use it now.
			_, err = f.gate.Redeem(ctx, token, 7, 3, params)
			require.ErrorIs(t, err, ErrTokenUsed)
			require.Equal(t, 1.0, f.count(OutcomeTokenMismatch))
		})
	}
	t.Run("expired", func(t *testing.T) {
		f := newFixture(t)
		_, token := approved(t, f)
		f.clock.Add(time.Hour - time.Second)
		_, fresh := approved(t, f)
		f.clock.Add(time.Second) // the first token is an hour old
		_, err := f.gate.Redeem(ctx, token, 7, 3, params)
		require.ErrorIs(t, err, ErrTokenExpired)
		_, err = f.gate.Redeem(ctx, token, 7, 3, params)
		require.ErrorIs(t, err, ErrTokenUsed, "spent")
		_, err = f.gate.Redeem(ctx, fresh, 7, 3, params)
		require.NoError(t, err, "an approval late in its wait still gets TokenTTL")
		require.Equal(t, 1.0, f.count(OutcomeTokenExpired))
	})
	t.Run("token ttl", func(t *testing.T) {
		s := newMemStore()
		c := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
		g, err := New(Options{Store: s, Now: c.Now, TTL: 24 * time.Hour, TokenTTL: 5 * time.Minute})
		require.NoError(t, err)
		a, err := g.Request(ctx, store.Approval{DecisionID: 1, ActionID: 1, RequestedBy: "a"})
		require.NoError(t, err)
		require.Equal(t, c.Now().Add(24*time.Hour), a.ExpiresAt)
		a, token, err := g.Approve(ctx, a.ID, "b", "")
		require.NoError(t, err)
		require.Equal(t, c.Now().Add(5*time.Minute), g.TokenExpiry(a))
		c.Add(5 * time.Minute)
		_, err = g.Redeem(ctx, token, 1, 1, nil)
		require.ErrorIs(t, err, ErrTokenExpired)
	})
	t.Run("store failure", func(t *testing.T) {
		f := newFixture(t)
		_, token := approved(t, f)
		f.store.fail = errors.New("db down")
		_, err := f.gate.Redeem(ctx, token, 7, 3, params)
		require.ErrorContains(t, err, "db down")
		for _, sentinel := range []error{ErrTokenUnknown, ErrTokenUsed, ErrTokenMismatch, ErrTokenExpired} {
			require.NotErrorIs(t, err, sentinel)
		}
	})
}

func TestConcurrentRedeem(t *testing.T) {
	f := newFixture(t)
	_, token := approved(t, f)
	const n = 32
	var wg sync.WaitGroup
	var won, replayed atomic.Int32
	for range n {
		wg.Go(func() {
			_, err := f.gate.Redeem(t.Context(), token, 7, 3, params)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, ErrTokenUsed):
				replayed.Add(1)
			default:
				t.Errorf("redeem: %v", err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), won.Load(), "exactly one redemption wins")
	require.Equal(t, int32(n-1), replayed.Load())
}

func TestExpireDueAndPending(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	early := f.request(t, false) // expires at +1h
	f.clock.Add(30 * time.Minute)
	late := f.request(t, false) // expires at +1h30
	decided, _ := approved(t, f)
	n, err := f.gate.ExpireDue(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	list, err := f.gate.Pending(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{early.ID, late.ID}, ids(list))

	f.clock.Add(30 * time.Minute) // early is due
	list, err = f.gate.Pending(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{late.ID}, ids(list), "a due approval is not listed before ExpireDue marks it")

	n, err = f.gate.ExpireDue(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, err := f.store.Approval(ctx, early.ID)
	require.NoError(t, err)
	require.Equal(t, store.ApprovalExpired, got.Status)
	require.Equal(t, f.clock.Now(), *got.DecidedAt)
	got, err = f.store.Approval(ctx, decided.ID)
	require.NoError(t, err)
	require.Equal(t, store.ApprovalApproved, got.Status, "an approved one is not expired")

	n, err = f.gate.ExpireDue(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, 1.0, f.count(OutcomeExpired))

	f.store.fail = errors.New("db down")
	_, err = f.gate.ExpireDue(ctx)
	require.ErrorContains(t, err, "db down")
	_, err = f.gate.Pending(ctx)
	require.ErrorContains(t, err, "db down")
}

func TestExpireDueMany(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	total := store.MaxDecisionLimit + 50
	for range total {
		f.request(t, false)
	}
	f.clock.Add(2 * time.Hour)
	n, err := f.gate.ExpireDue(ctx)
	require.NoError(t, err)
	require.Equal(t, total, n, "more than one batch")
	list, err := f.store.Approvals(ctx, store.ApprovalQuery{Status: store.ApprovalPending})
	require.NoError(t, err)
	require.Empty(t, list)
}

func ids(list []store.Approval) []int64 {
	out := []int64{}
	for _, a := range list {
		out = append(out, a.ID)
	}
	return out
}

func TestValidToken(t *testing.T) {
	for range 100 {
		tok, err := newToken()
		require.NoError(t, err)
		require.Len(t, tok, tokenLen)
		require.True(t, ValidToken(tok), tok)
	}
	require.False(t, ValidToken("rxa_"+strings.Repeat("A", 42)+"B"), "non-canonical trailing bits")
	require.False(t, ValidToken("rxa_"+strings.Repeat("A", 43)+"="))
	require.False(t, ValidToken("rxa_"+strings.Repeat("+", 43)), "standard, not URL, alphabet")
}
