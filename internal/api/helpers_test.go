package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/store"
)

// memStore is an in-memory EventStore and auth.KeyStore for handler tests.
type memStore struct {
	mu     sync.Mutex
	events map[int64]event.Event
	alias  map[int64]int64 // deduplicated raw id -> kept event id
	raws   map[int64]event.Raw
	corrs  map[int64][]event.Correlation
	assets map[string]store.Asset
	keys   map[string]store.APIKey
	keyIDs []string
	// unreadable events are stored but cannot be decoded: Event answers
	// store.ErrUnreadable, Events skips and reports them.
	unreadable map[int64]bool

	lastQuery     store.EventQuery
	lastAnalytics store.AnalyticsQuery
	buckets       []store.Bucket
	err           error // returned by every event and asset call when set
	panicMsg      string
}

func newMemStore() *memStore {
	return &memStore{
		events: make(map[int64]event.Event),
		alias:  make(map[int64]int64),
		raws:   make(map[int64]event.Raw),
		corrs:  make(map[int64][]event.Correlation),
		assets: make(map[string]store.Asset),
		keys:   make(map[string]store.APIKey),

		unreadable: make(map[int64]bool),
	}
}

var _ EventStore = (*memStore)(nil)
var _ auth.KeyStore = (*memStore)(nil)

func (m *memStore) check() error {
	if m.panicMsg != "" {
		panic(m.panicMsg)
	}
	return m.err
}

func (m *memStore) Event(_ context.Context, id int64) (*event.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	if kept, ok := m.alias[id]; ok {
		id = kept
	}
	e, ok := m.events[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	if m.unreadable[id] {
		return nil, fmt.Errorf("mem: event %d: %w", id, store.ErrUnreadable)
	}
	return &e, nil
}

func (m *memStore) RawEvent(_ context.Context, id int64) (*event.Raw, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	r, ok := m.raws[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &r, nil
}

func (m *memStore) Events(_ context.Context, q store.EventQuery) (store.EventPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return store.EventPage{}, err
	}
	m.lastQuery = q
	var all []event.Event
	for _, e := range m.events {
		switch {
		case len(q.Severities) > 0 && !slices.Contains(q.Severities, e.Severity),
			q.Host != "" && e.SourceHost != q.Host,
			!q.Since.IsZero() && e.OccurredAt.Before(q.Since),
			!q.Until.IsZero() && !e.OccurredAt.Before(q.Until):
			continue
		}
		if !q.BeforeTime.IsZero() {
			if e.OccurredAt.After(q.BeforeTime) || e.OccurredAt.Equal(q.BeforeTime) && e.ID >= q.BeforeID {
				continue
			}
		}
		all = append(all, e)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].OccurredAt.Equal(all[j].OccurredAt) {
			return all[i].OccurredAt.After(all[j].OccurredAt)
		}
		return all[i].ID > all[j].ID
	})
	limit := q.Limit
	if limit == 0 {
		limit = 100
	}
	page := store.EventPage{}
	if len(all) > limit {
		all, page.More = all[:limit], true
	}
	if len(all) > 0 {
		page.NextTime, page.NextID = all[len(all)-1].OccurredAt, all[len(all)-1].ID
	}
	for _, e := range all {
		if m.unreadable[e.ID] {
			page.Unreadable = append(page.Unreadable, e.ID)
			continue
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}

func (m *memStore) Correlations(_ context.Context, id int64) ([]event.Correlation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	return m.corrs[id], nil
}

func (m *memStore) Analytics(_ context.Context, q store.AnalyticsQuery) ([]store.Bucket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	m.lastAnalytics = q
	return m.buckets, nil
}

func (m *memStore) PutAsset(_ context.Context, a store.Asset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	m.assets[a.Host] = a
	return nil
}

func (m *memStore) Asset(_ context.Context, host string) (store.Asset, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return store.Asset{}, err
	}
	a, ok := m.assets[host]
	if !ok {
		return store.Asset{}, store.ErrNotFound
	}
	return a, nil
}

func (m *memStore) DeleteAsset(_ context.Context, host string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if _, ok := m.assets[host]; !ok {
		return store.ErrNotFound
	}
	delete(m.assets, host)
	return nil
}

func (m *memStore) Assets(context.Context) ([]store.Asset, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	var out []store.Asset
	for _, a := range m.assets {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, nil
}

func (m *memStore) CreateKey(_ context.Context, k store.APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return store.ErrConflict
	}
	m.keys[k.ID] = k
	m.keyIDs = append(m.keyIDs, k.ID)
	return nil
}

func (m *memStore) Key(_ context.Context, id string) (store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return store.APIKey{}, store.ErrNotFound
	}
	return k, nil
}

func (m *memStore) Keys(context.Context) ([]store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.APIKey, 0, len(m.keyIDs))
	for _, id := range m.keyIDs {
		out = append(out, m.keys[id])
	}
	return out, nil
}

func (m *memStore) RevokeKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return store.ErrNotFound
	}
	k.RevokedAt = &at
	m.keys[id] = k
	return nil
}

func (m *memStore) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

// fakeSubmitter assigns consecutive ids, or fails with err.
type fakeSubmitter struct {
	mu     sync.Mutex
	next   int64
	err    error
	calls  int
	items  []intake.Item
	source event.SourceType
}

func (f *fakeSubmitter) Submit(ctx context.Context, src event.SourceType, items []intake.Item) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.err != nil {
		return nil, f.err
	}
	f.source = src
	f.items = append(f.items, items...)
	ids := make([]int64, len(items))
	for i := range items {
		f.next++
		ids[i] = f.next
	}
	return ids, nil
}

// fakeCache records the asset cache updates.
type fakeCache struct {
	mu     sync.Mutex
	assets map[string]store.Asset
	ops    []string
}

func (c *fakeCache) Set(a store.Asset) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.assets == nil {
		c.assets = make(map[string]store.Asset)
	}
	c.assets[a.Host] = a
	c.ops = append(c.ops, "set "+a.Host)
}

func (c *fakeCache) Delete(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.assets, host)
	c.ops = append(c.ops, "delete "+host)
}

// testNow is the clock of the handler tests.
var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

const adminToken = "test-admin-token"

// env is one Event Processing Service handler with fakes around it.
type env struct {
	t      *testing.T
	store  *memStore
	auth   *auth.Authenticator
	submit *fakeSubmitter
	cache  *fakeCache
	reg    *prometheus.Registry
	h      http.Handler
	logs   *syncBuffer
	// keys by role: admin, reader (events:read), writer (events:write),
	// rules (rules:write only).
	keys map[string]string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, mods ...func(*EventsOptions)) *env {
	t.Helper()
	e := &env{
		t:      t,
		store:  newMemStore(),
		submit: &fakeSubmitter{next: 1000},
		cache:  &fakeCache{},
		reg:    prometheus.NewRegistry(),
		logs:   &syncBuffer{},
		keys:   make(map[string]string),
	}
	var err error
	e.auth, err = auth.New(auth.Options{Store: e.store, AdminToken: adminToken, Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	for role, scopes := range map[string][]string{
		"admin":  {auth.ScopeAdmin},
		"reader": {auth.ScopeEventsRead},
		"writer": {auth.ScopeEventsWrite},
		"rules":  {auth.ScopeRulesWrite},
	} {
		plain, _, err := e.auth.CreateKey(context.Background(), role, scopes)
		require.NoError(t, err)
		e.keys[role] = plain
	}
	opts := EventsOptions{
		Store:      e.store,
		Auth:       e.auth,
		Submit:     e.submit,
		Assets:     e.cache,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: e.reg,
		Now:        func() time.Time { return testNow },
		Ops:        NewOps(OpsOptions{Gatherer: e.reg, Registerer: e.reg, Service: "events"}),
	}
	for _, m := range mods {
		m(&opts)
	}
	e.h, err = NewEvents(opts)
	require.NoError(t, err)
	return e
}

// req is one request of a test.
type req struct {
	method  string
	path    string
	key     string // a role of env.keys, "token:<bearer>" or "" for none
	body    string
	ctype   string
	headers map[string]string
	ctx     context.Context
}

func (e *env) do(rq req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	if rq.ctx != nil {
		r = r.WithContext(rq.ctx)
	}
	switch {
	case strings.HasPrefix(rq.key, "token:"):
		r.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(rq.key, "token:"))
	case rq.key != "":
		k, ok := e.keys[rq.key]
		require.True(e.t, ok, "unknown role %q", rq.key)
		r.Header.Set("Authorization", "Bearer "+k)
	}
	if rq.ctype != "" {
		r.Header.Set("Content-Type", rq.ctype)
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// decodeBody decodes a JSON answer into a map.
func decodeBody(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	require.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"), "body: %s", w.Body.String())
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m), "body: %s", w.Body.String())
	return m
}

// requireError checks a JSON error answer.
func requireError(t *testing.T, w *httptest.ResponseRecorder, status int, field, contains string) map[string]any {
	t.Helper()
	require.Equal(t, status, w.Code, "body: %s", w.Body.String())
	m := decodeBody(t, w)
	msg, _ := m["error"].(string)
	require.NotEmpty(t, msg)
	if contains != "" {
		require.Contains(t, msg, contains)
	}
	got, _ := m["field"].(string)
	require.Equal(t, field, got, "field of %s", w.Body.String())
	return m
}
