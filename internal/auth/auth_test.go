package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// memKeys is an in-memory KeyStore that counts lookups.
type memKeys struct {
	mu      sync.Mutex
	keys    map[string]store.APIKey
	order   []string
	lookups int
	err     error // returned by every call when set
}

func newMemKeys() *memKeys { return &memKeys{keys: make(map[string]store.APIKey)} }

func (m *memKeys) CreateKey(_ context.Context, k store.APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if _, ok := m.keys[k.ID]; ok {
		return store.ErrConflict
	}
	m.keys[k.ID] = k
	m.order = append(m.order, k.ID)
	return nil
}

func (m *memKeys) Key(_ context.Context, id string) (store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.err != nil {
		return store.APIKey{}, m.err
	}
	k, ok := m.keys[id]
	if !ok {
		return store.APIKey{}, store.ErrNotFound
	}
	return k, nil
}

func (m *memKeys) Keys(context.Context) ([]store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	out := make([]store.APIKey, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.keys[id])
	}
	return out, nil
}

func (m *memKeys) RevokeKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	k, ok := m.keys[id]
	if !ok {
		return store.ErrNotFound
	}
	k.RevokedAt = &at
	m.keys[id] = k
	return nil
}

func (m *memKeys) lookupCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
}

// compareSpy records the calls to the hash comparison.
type compareSpy struct {
	mu    sync.Mutex
	calls [][2][]byte
}

func (s *compareSpy) equal(a, b []byte) int {
	s.mu.Lock()
	s.calls = append(s.calls, [2][]byte{bytes.Clone(a), bytes.Clone(b)})
	s.mu.Unlock()
	return subtle.ConstantTimeCompare(a, b)
}

func (s *compareSpy) reset() []([2][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func newAuth(t *testing.T, opts Options) (*Authenticator, *compareSpy) {
	t.Helper()
	a, err := New(opts)
	require.NoError(t, err)
	spy := &compareSpy{}
	a.equal = spy.equal
	return a, spy
}

var keyRE = regexp.MustCompile(`^rfx_[0-9a-f]{12}_[0-9a-f]{64}$`)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"no store", Options{}, true},
		{"store only", Options{Store: newMemKeys()}, false},
		{"admin token", Options{Store: newMemKeys(), AdminToken: "s3cr3t-chosen-by-the-operator"}, false},
		{"admin token with space", Options{Store: newMemKeys(), AdminToken: "two words"}, true},
		{"admin token with newline", Options{Store: newMemKeys(), AdminToken: "token\n"}, true},
		{"admin token too long", Options{Store: newMemKeys(), AdminToken: strings.Repeat("x", maxHeaderLen)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.opts)
			if tt.wantErr {
				require.Error(t, err)
				if tt.opts.AdminToken != "" {
					require.NotContains(t, err.Error(), tt.opts.AdminToken, "the token is never in an error")
				}
				return
			}
			require.NoError(t, err)
			require.NotNil(t, a)
		})
	}
}

func TestPrincipalHas(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		scope  string
		want   bool
	}{
		{"exact", []string{ScopeEventsRead}, ScopeEventsRead, true},
		{"other", []string{ScopeEventsRead}, ScopeEventsWrite, false},
		{"none", nil, ScopeEventsRead, false},
		{"admin implies events:write", []string{ScopeAdmin}, ScopeEventsWrite, true},
		{"admin implies actions:approve", []string{ScopeAdmin}, ScopeActionsApprove, true},
		{"admin implies admin", []string{ScopeAdmin}, ScopeAdmin, true},
		{"write does not imply admin", []string{ScopeEventsWrite, ScopeRulesWrite}, ScopeAdmin, false},
		{"several", []string{ScopeEventsWrite, ScopeRulesWrite}, ScopeRulesWrite, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Principal{Scopes: tt.scopes}.Has(tt.scope))
		})
	}
}

func TestBearer(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr error
	}{
		{"missing", "", "", ErrNoCredentials},
		{"basic", "Basic dXNlcjpwYXNz", "", ErrMalformedCredentials},
		{"scheme only", "Bearer", "", ErrMalformedCredentials},
		{"scheme and spaces", "Bearer   ", "", ErrMalformedCredentials},
		{"two tokens", "Bearer a b", "", ErrMalformedCredentials},
		{"token only", "rfx_abc", "", ErrMalformedCredentials},
		{"too long", "Bearer " + strings.Repeat("a", maxHeaderLen), "", ErrMalformedCredentials},
		{"ok", "Bearer tok", "tok", nil},
		{"case-insensitive scheme", "bearer tok", "tok", nil},
		{"extra spaces", "  Bearer   tok  ", "tok", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bearer(tt.header)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorIs(t, err, ErrUnauthenticated)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	clock := newClock()
	a, spy := newAuth(t, Options{Store: keys, AdminToken: "operator-chosen-secret", Now: clock.Now})

	reader, readerKey, err := a.CreateKey(ctx, "reader", []string{ScopeEventsRead})
	require.NoError(t, err)
	revoked, revokedKey, err := a.CreateKey(ctx, "old", []string{ScopeEventsWrite})
	require.NoError(t, err)
	require.NoError(t, a.RevokeKey(ctx, revokedKey.ID))

	// The same id as reader with another secret.
	wrongSecret := reader[:len(reader)-4] + "0000"
	if wrongSecret == reader {
		wrongSecret = reader[:len(reader)-4] + "1111"
	}
	unknownID := "rfx_000000000000_" + strings.Repeat("ab", 32)

	tests := []struct {
		name    string
		header  string
		want    Principal
		wantErr error
		// compared is the stored hash the presented key must have been
		// compared against in constant time (nil: any).
		compared []byte
	}{
		{name: "valid key", header: "Bearer " + reader,
			want: Principal{KeyID: readerKey.ID, Name: "reader", Scopes: []string{ScopeEventsRead}}, compared: readerKey.Hash},
		{name: "admin token", header: "Bearer operator-chosen-secret",
			want: Principal{Name: AdminTokenName, Scopes: []string{ScopeAdmin}}},
		{name: "wrong admin token", header: "Bearer operator-chosen-secreT", wantErr: ErrInvalidKey},
		{name: "wrong secret", header: "Bearer " + wrongSecret, wantErr: ErrInvalidKey, compared: readerKey.Hash},
		{name: "unknown id", header: "Bearer " + unknownID, wantErr: ErrInvalidKey, compared: dummyHash},
		{name: "revoked", header: "Bearer " + revoked, wantErr: ErrRevokedKey, compared: revokedKey.Hash},
		{name: "uppercase hex", header: "Bearer " + strings.ToUpper(reader), wantErr: ErrInvalidKey},
		{name: "truncated", header: "Bearer " + reader[:len(reader)-1], wantErr: ErrInvalidKey},
		{name: "no prefix", header: "Bearer xyz_" + reader[4:], wantErr: ErrInvalidKey},
		{name: "missing header", header: "", wantErr: ErrNoCredentials},
		{name: "basic auth", header: "Basic cmVhZGVyOnNlY3JldA==", wantErr: ErrMalformedCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spy.reset()
			r := httptest.NewRequest(http.MethodGet, "/api/v1/events", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			p, err := a.Authenticate(ctx, r)
			calls := spy.reset()
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorIs(t, err, ErrUnauthenticated)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.want, p)
			}
			if errors.Is(tt.wantErr, ErrNoCredentials) || errors.Is(tt.wantErr, ErrMalformedCredentials) {
				require.Empty(t, calls, "no credential, nothing to compare")
				return
			}
			// Every presented credential is compared in constant time,
			// first with the admin token's hash.
			require.NotEmpty(t, calls)
			token := strings.TrimPrefix(tt.header, "Bearer ")
			sum := sha256.Sum256([]byte(token))
			adminSum := sha256.Sum256([]byte("operator-chosen-secret"))
			require.Equal(t, sum[:], calls[0][0])
			require.Equal(t, adminSum[:], calls[0][1])
			if tt.compared != nil {
				require.Len(t, calls, 2)
				require.Equal(t, sum[:], calls[1][0])
				require.Equal(t, tt.compared, calls[1][1])
			}
		})
	}
}

func TestAuthenticateStoreError(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a, _ := newAuth(t, Options{Store: keys})
	key, _, err := a.CreateKey(ctx, "k", []string{ScopeEventsRead})
	require.NoError(t, err)
	a.cache.delete(key[4:16])

	boom := errors.New("database is down")
	keys.mu.Lock()
	keys.err = boom
	keys.mu.Unlock()
	_, err = a.Verify(ctx, key)
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, ErrUnauthenticated)
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	clock := newClock()
	a, _ := newAuth(t, Options{Store: keys, Now: clock.Now, CacheTTL: 30 * time.Second})
	key, k, err := a.CreateKey(ctx, "writer", []string{ScopeEventsWrite})
	require.NoError(t, err)

	verify := func() error {
		_, err := a.Verify(ctx, key)
		return err
	}
	require.NoError(t, verify())
	require.Equal(t, 1, keys.lookupCount())
	require.NoError(t, verify())
	require.Equal(t, 1, keys.lookupCount(), "second verification is served by the cache")

	// A wrong secret for a cached id still fails.
	_, err = a.Verify(ctx, key[:len(key)-1]+flip(key[len(key)-1]))
	require.ErrorIs(t, err, ErrInvalidKey)

	// After the TTL the store is read again.
	clock.Add(31 * time.Second)
	require.NoError(t, verify())
	require.Equal(t, 2, keys.lookupCount())

	// A revocation through the Authenticator takes effect at once.
	require.NoError(t, a.RevokeKey(ctx, k.ID))
	require.ErrorIs(t, verify(), ErrRevokedKey)

	// A revocation made elsewhere (another instance) within the TTL.
	key2, k2, err := a.CreateKey(ctx, "writer2", []string{ScopeEventsWrite})
	require.NoError(t, err)
	_, err = a.Verify(ctx, key2)
	require.NoError(t, err)
	require.NoError(t, keys.RevokeKey(ctx, k2.ID, clock.Now()))
	_, err = a.Verify(ctx, key2)
	require.NoError(t, err, "still cached")
	clock.Add(30 * time.Second)
	_, err = a.Verify(ctx, key2)
	require.ErrorIs(t, err, ErrRevokedKey)
}

// pausingKeys is a KeyStore whose next Key call, once armed, reads the
// record and then waits for release before returning it: a check that read
// a key just before it was revoked.
type pausingKeys struct {
	*memKeys
	mu      sync.Mutex
	armed   bool
	read    chan struct{} // closed once the paused call has read the record
	release chan struct{}
}

func (p *pausingKeys) Key(ctx context.Context, id string) (store.APIKey, error) {
	k, err := p.memKeys.Key(ctx, id)
	p.mu.Lock()
	pause := p.armed
	p.armed = false
	p.mu.Unlock()
	if pause {
		close(p.read)
		<-p.release
	}
	return k, err
}

// TestRevokeDuringCacheFill is the regression test of issue 5 §1.7: a check
// that read a key from the store before a revocation put it in the cache
// after the revocation dropped it, so the revoked key worked for another
// 30 s. The interleaving is forced: check reads, revoke runs, check fills.
func TestRevokeDuringCacheFill(t *testing.T) {
	ctx := context.Background()
	keys := &pausingKeys{memKeys: newMemKeys(), read: make(chan struct{}), release: make(chan struct{})}
	clock := newClock()
	a, _ := newAuth(t, Options{Store: keys, Now: clock.Now, CacheTTL: 30 * time.Second})
	key, k, err := a.CreateKey(ctx, "writer", []string{ScopeEventsWrite})
	require.NoError(t, err)

	keys.mu.Lock()
	keys.armed = true
	keys.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := a.Verify(ctx, key)
		done <- err
	}()
	<-keys.read // the check holds the unrevoked record
	require.NoError(t, a.RevokeKey(ctx, k.ID))
	close(keys.release) // and now fills the cache with it
	require.NoError(t, <-done, "a check that began before the revocation may pass")

	_, err = a.Verify(ctx, key)
	require.ErrorIs(t, err, ErrRevokedKey, "the revoked key is not served from the cache")
}

func TestCacheDisabled(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a, _ := newAuth(t, Options{Store: keys, CacheTTL: -1})
	key, _, err := a.CreateKey(ctx, "k", []string{ScopeEventsRead})
	require.NoError(t, err)
	for range 3 {
		_, err := a.Verify(ctx, key)
		require.NoError(t, err)
	}
	require.Equal(t, 3, keys.lookupCount())
}

func TestCacheBounded(t *testing.T) {
	now := time.Now()
	c := newCache(time.Minute, 3)
	for i := range 10 {
		c.put(store.APIKey{ID: string(rune('a' + i))}, now, c.begin())
		require.LessOrEqual(t, c.len(), 3)
	}
	_, ok := c.get("j", now)
	require.True(t, ok, "the newest entry is kept")

	// Expired entries are dropped on read.
	_, ok = c.get("j", now.Add(time.Minute))
	require.False(t, ok)
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestCreateKey(t *testing.T) {
	tests := []struct {
		name       string
		keyName    string
		scopes     []string
		wantErr    error
		wantScopes []string
	}{
		{name: "one scope", keyName: "grafana", scopes: []string{ScopeEventsWrite}, wantScopes: []string{ScopeEventsWrite}},
		{name: "canonical order and dedup", keyName: "ops", scopes: []string{ScopeAdmin, ScopeEventsRead, ScopeEventsRead},
			wantScopes: []string{ScopeEventsRead, ScopeAdmin}},
		{name: "name trimmed", keyName: "  spaced  ", scopes: []string{ScopeRulesWrite}, wantScopes: []string{ScopeRulesWrite}},
		{name: "unicode name", keyName: "équipe réseau", scopes: []string{ScopeActionsApprove}, wantScopes: []string{ScopeActionsApprove}},
		{name: "empty name", keyName: " ", scopes: []string{ScopeEventsRead}, wantErr: ErrInvalidName},
		{name: "long name", keyName: strings.Repeat("x", MaxNameLen+1), scopes: []string{ScopeEventsRead}, wantErr: ErrInvalidName},
		{name: "control in name", keyName: "a\nb", scopes: []string{ScopeEventsRead}, wantErr: ErrInvalidName},
		{name: "invalid utf-8", keyName: "a\xffb", scopes: []string{ScopeEventsRead}, wantErr: ErrInvalidName},
		{name: "no scopes", keyName: "x", scopes: nil, wantErr: ErrInvalidScope},
		{name: "unknown scope", keyName: "x", scopes: []string{"events:delete"}, wantErr: ErrInvalidScope},
		{name: "case matters", keyName: "x", scopes: []string{"ADMIN"}, wantErr: ErrInvalidScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			keys := newMemKeys()
			clock := newClock()
			a, _ := newAuth(t, Options{Store: keys, Now: clock.Now})
			plain, k, err := a.CreateKey(ctx, tt.keyName, tt.scopes)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Empty(t, plain)
				stored, _ := keys.Keys(ctx)
				require.Empty(t, stored)
				return
			}
			require.NoError(t, err)
			require.Regexp(t, keyRE, plain)
			require.Equal(t, plain[4:16], k.ID)
			sum := sha256.Sum256([]byte(plain))
			require.Equal(t, sum[:], k.Hash)
			require.Equal(t, strings.TrimSpace(tt.keyName), k.Name)
			require.Equal(t, tt.wantScopes, k.Scopes)
			require.Equal(t, clock.Now(), k.CreatedAt)

			stored, err := keys.Key(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, k, stored)
			require.NotContains(t, string(stored.Hash), plain[17:], "the secret is not stored")

			p, err := a.Verify(ctx, plain)
			require.NoError(t, err)
			require.Equal(t, tt.wantScopes, p.Scopes)
		})
	}
}

func TestCreateKeyRetriesIDCollision(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a, _ := newAuth(t, Options{Store: keys})
	// Two draws with the same id, then a different one.
	same := bytes.Repeat([]byte{1}, idBytes+secretBytes)
	other := bytes.Repeat([]byte{2}, idBytes+secretBytes)
	a.random = bytes.NewReader(append(append(bytes.Clone(same), same...), other...))

	_, k1, err := a.CreateKey(ctx, "one", []string{ScopeEventsRead})
	require.NoError(t, err)
	require.Equal(t, "010101010101", k1.ID)
	_, k2, err := a.CreateKey(ctx, "two", []string{ScopeEventsRead})
	require.NoError(t, err)
	require.Equal(t, "020202020202", k2.ID)

	// Nothing left to read: the error is reported, not a panic.
	_, _, err = a.CreateKey(ctx, "three", []string{ScopeEventsRead})
	require.Error(t, err)
}

func TestCreateKeyStoreError(t *testing.T) {
	keys := newMemKeys()
	keys.err = errors.New("disk full")
	a, _ := newAuth(t, Options{Store: keys})
	_, _, err := a.CreateKey(context.Background(), "x", []string{ScopeAdmin})
	require.ErrorIs(t, err, keys.err)
}

func TestRevokeKey(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	clock := newClock()
	a, _ := newAuth(t, Options{Store: keys, Now: clock.Now})
	_, k, err := a.CreateKey(ctx, "x", []string{ScopeEventsRead})
	require.NoError(t, err)

	require.ErrorIs(t, a.RevokeKey(ctx, "ffffffffffff"), store.ErrNotFound)
	require.NoError(t, a.RevokeKey(ctx, k.ID))
	first, err := keys.Key(ctx, k.ID)
	require.NoError(t, err)
	require.NotNil(t, first.RevokedAt)
	require.Equal(t, clock.Now(), *first.RevokedAt)

	clock.Add(time.Hour)
	require.NoError(t, a.RevokeKey(ctx, k.ID), "revoking twice is not an error")
	again, err := keys.Key(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, *first.RevokedAt, *again.RevokedAt, "the first revocation time is kept")
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()

	t.Run("admin token set: nothing created", func(t *testing.T) {
		keys := newMemKeys()
		a, _ := newAuth(t, Options{Store: keys, AdminToken: "tok"})
		plain, created, err := a.Bootstrap(ctx)
		require.NoError(t, err)
		require.False(t, created)
		require.Empty(t, plain)
		all, _ := keys.Keys(ctx)
		require.Empty(t, all)
	})

	t.Run("first start creates an admin key once", func(t *testing.T) {
		keys := newMemKeys()
		a, _ := newAuth(t, Options{Store: keys})
		plain, created, err := a.Bootstrap(ctx)
		require.NoError(t, err)
		require.True(t, created)
		require.Regexp(t, keyRE, plain)
		all, _ := keys.Keys(ctx)
		require.Len(t, all, 1)
		require.Equal(t, BootstrapKeyName, all[0].Name)
		require.Equal(t, []string{ScopeAdmin}, all[0].Scopes)
		p, err := a.Verify(ctx, plain)
		require.NoError(t, err)
		require.True(t, p.Has(ScopeAdmin))

		// The next start (a new Authenticator on the same store) finds it.
		b, _ := newAuth(t, Options{Store: keys})
		plain2, created, err := b.Bootstrap(ctx)
		require.NoError(t, err)
		require.False(t, created)
		require.Empty(t, plain2)

		// Once every admin key is revoked, a new one is made.
		require.NoError(t, b.RevokeKey(ctx, all[0].ID))
		plain3, created, err := b.Bootstrap(ctx)
		require.NoError(t, err)
		require.True(t, created)
		require.NotEqual(t, plain, plain3)
	})

	t.Run("non-admin keys do not count", func(t *testing.T) {
		keys := newMemKeys()
		a, _ := newAuth(t, Options{Store: keys})
		_, _, err := a.CreateKey(ctx, "reader", []string{ScopeEventsRead})
		require.NoError(t, err)
		_, created, err := a.Bootstrap(ctx)
		require.NoError(t, err)
		require.True(t, created)
	})

	t.Run("store error", func(t *testing.T) {
		keys := newMemKeys()
		keys.err = errors.New("no database")
		a, _ := newAuth(t, Options{Store: keys})
		_, created, err := a.Bootstrap(ctx)
		require.ErrorIs(t, err, keys.err)
		require.False(t, created)
	})
}

func TestNormalizeScopes(t *testing.T) {
	got, err := NormalizeScopes([]string{ScopeAdmin, ScopeEventsWrite, ScopeActionsApprove, ScopeRulesWrite, ScopeEventsRead})
	require.NoError(t, err)
	require.Equal(t, Scopes, got)
}

func TestConcurrentVerify(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a, err := New(Options{Store: keys, CacheSize: 2})
	require.NoError(t, err)
	var plains []string
	for i := range 5 {
		p, _, err := a.CreateKey(ctx, "k"+string(rune('0'+i)), []string{ScopeEventsRead})
		require.NoError(t, err)
		plains = append(plains, p)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := a.Verify(ctx, plains[i%len(plains)])
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.LessOrEqual(t, a.cache.len(), 2)
}

func FuzzAuthenticate(f *testing.F) {
	for _, s := range []string{"", "Bearer", "Bearer x", "bearer rfx_0123456789ab_" + strings.Repeat("0", 64), "Basic abc", "Bearer \x00"} {
		f.Add(s)
	}
	keys := newMemKeys()
	a, err := New(Options{Store: keys, AdminToken: "fuzz-admin"})
	require.NoError(f, err)
	valid, _, err := a.CreateKey(context.Background(), "k", []string{ScopeEventsRead})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{header}
		p, err := a.Authenticate(context.Background(), r)
		tok := strings.TrimSpace(header)
		if err != nil {
			require.ErrorIs(t, err, ErrUnauthenticated)
			return
		}
		// Only the two real credentials get in.
		require.True(t, strings.HasSuffix(tok, valid) || strings.HasSuffix(tok, "fuzz-admin"), "accepted %q", header)
		require.NotEmpty(t, p.Scopes)
	})
}
