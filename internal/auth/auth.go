// Package auth authenticates the callers of reflex's HTTP APIs with API keys
// that carry scopes, and with the operator's admin token.
//
// A key reads "rfx_<id>_<secret>": id is 12 lowercase hex digits that name
// the key in storage and in logs, secret is 64 lowercase hex digits (32
// random bytes). Only the SHA-256 of the whole key string is stored;
// verification looks the key up by id and compares the hashes in constant
// time. The admin token (--admin-token) is any string the operator chose;
// only its SHA-256 is kept in memory and it is compared the same way.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/store"
)

// Scopes of API keys.
const (
	// ScopeEventsWrite allows submitting events.
	ScopeEventsWrite = "events:write"
	// ScopeEventsRead allows reading events, correlations, analytics and
	// assets.
	ScopeEventsRead = "events:read"
	// ScopeRulesWrite allows managing trigger rules and response templates.
	ScopeRulesWrite = "rules:write"
	// ScopeActionsApprove allows approving autonomous actions.
	ScopeActionsApprove = "actions:approve"
	// ScopeAdmin allows everything, including managing keys and assets.
	ScopeAdmin = "admin"
)

// Scopes lists every scope in canonical order.
var Scopes = []string{ScopeEventsWrite, ScopeEventsRead, ScopeRulesWrite, ScopeActionsApprove, ScopeAdmin}

// BootstrapKeyName is the name of the admin key Bootstrap creates.
const BootstrapKeyName = "bootstrap-admin"

// AdminTokenName is the Principal name of a caller that presented the
// admin token.
const AdminTokenName = "admin-token"

// MaxNameLen is the longest key name CreateKey accepts, in characters.
const MaxNameLen = 100

// Errors of Authenticate. Every one wraps ErrUnauthenticated, which the
// HTTP layer answers with 401; any other error of Authenticate is a failure
// of the key store.
var (
	// ErrUnauthenticated is wrapped by every credential error.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrNoCredentials: the request has no Authorization header.
	ErrNoCredentials = fmt.Errorf("%w: missing Authorization header, want \"Bearer <key>\"", ErrUnauthenticated)
	// ErrMalformedCredentials: the Authorization header is not "Bearer <key>".
	ErrMalformedCredentials = fmt.Errorf("%w: malformed Authorization header, want \"Bearer <key>\"", ErrUnauthenticated)
	// ErrInvalidKey: the key is unknown, or its secret is wrong.
	ErrInvalidKey = fmt.Errorf("%w: invalid API key", ErrUnauthenticated)
	// ErrRevokedKey: the key was revoked.
	ErrRevokedKey = fmt.Errorf("%w: API key revoked", ErrUnauthenticated)
)

// Errors of CreateKey.
var (
	// ErrInvalidName: the key name is empty, too long or not printable.
	ErrInvalidName = errors.New("auth: invalid key name")
	// ErrInvalidScope: no scope, or a scope that does not exist.
	ErrInvalidScope = errors.New("auth: invalid scope")
)

const (
	keyPrefix    = "rfx_"
	idBytes      = 6  // 12 hex digits
	secretBytes  = 32 // 64 hex digits
	idLen        = 2 * idBytes
	secretLen    = 2 * secretBytes
	keyLen       = len(keyPrefix) + idLen + 1 + secretLen
	maxHeaderLen = 4096
	createTries  = 5

	// DefaultCacheTTL is how long a verified key stays in the cache.
	DefaultCacheTTL = 30 * time.Second
	// DefaultCacheSize bounds the number of cached keys.
	DefaultCacheSize = 1024
)

// KeyStore is the part of store.Store the Authenticator uses. It must be
// safe for concurrent use.
type KeyStore interface {
	CreateKey(ctx context.Context, k store.APIKey) error
	Key(ctx context.Context, id string) (store.APIKey, error)
	Keys(ctx context.Context) ([]store.APIKey, error)
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

var _ KeyStore = store.Store(nil)

// Options configure an Authenticator.
type Options struct {
	// Store holds the API keys. Required.
	Store KeyStore
	// AdminToken, when not empty, is accepted as a bearer credential with
	// the admin scope. Only its SHA-256 is kept. It must not contain
	// whitespace or control characters (New fails).
	AdminToken string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CacheTTL is how long a key read from the store is trusted before it
	// is read again (so that a revocation made by another instance takes
	// effect). Zero means DefaultCacheTTL; negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the cache; zero means DefaultCacheSize.
	CacheSize int
}

// Principal is an authenticated caller.
type Principal struct {
	// KeyID is the id of the API key; empty for the admin token.
	KeyID string
	// Name is the key's name, or AdminTokenName.
	Name string
	// Scopes are the key's scopes.
	Scopes []string
}

// Has reports whether p may act with scope. The admin scope implies every
// other scope.
func (p Principal) Has(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope || s == ScopeAdmin {
			return true
		}
	}
	return false
}

// Authenticator verifies bearer credentials and manages API keys. It is
// safe for concurrent use.
type Authenticator struct {
	store     KeyStore
	now       func() time.Time
	adminHash []byte // nil when no admin token is configured
	cache     *cache

	// equal compares two hashes; subtle.ConstantTimeCompare, swapped in
	// tests to check that it is used.
	equal func(a, b []byte) int
	// random is the source of key ids and secrets.
	random io.Reader
}

// dummyHash is compared against when there is no stored hash, so that an
// unknown key id costs the same compare as a wrong secret.
var dummyHash = make([]byte, sha256.Size)

// New returns an Authenticator. It fails when opts.Store is nil.
func New(opts Options) (*Authenticator, error) {
	if opts.Store == nil {
		return nil, errors.New("auth: new: Options.Store is required")
	}
	a := &Authenticator{
		store:  opts.Store,
		now:    opts.Now,
		equal:  subtle.ConstantTimeCompare,
		random: rand.Reader,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if opts.AdminToken != "" {
		if err := validateAdminToken(opts.AdminToken); err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(opts.AdminToken))
		a.adminHash = sum[:]
	}
	ttl, size := opts.CacheTTL, opts.CacheSize
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if size <= 0 {
		size = DefaultCacheSize
	}
	if ttl > 0 {
		a.cache = newCache(ttl, size)
	}
	return a, nil
}

// Bootstrap makes sure an administrator can log in. With an admin token it
// does nothing. Without one, if no unrevoked key has the admin scope (the
// first start, or every admin key was revoked), it creates an admin key
// named BootstrapKeyName and returns its plaintext with created true. The
// caller shows the plaintext to the operator once, on the terminal and
// never through the logger; it cannot be recovered later.
func (a *Authenticator) Bootstrap(ctx context.Context) (plaintext string, created bool, err error) {
	if a.adminHash != nil {
		return "", false, nil
	}
	keys, err := a.store.Keys(ctx)
	if err != nil {
		return "", false, fmt.Errorf("auth: bootstrap: list keys: %w", err)
	}
	for _, k := range keys {
		if k.RevokedAt == nil && slices.Contains(k.Scopes, ScopeAdmin) {
			return "", false, nil
		}
	}
	plaintext, _, err = a.CreateKey(ctx, BootstrapKeyName, []string{ScopeAdmin})
	if err != nil {
		return "", false, fmt.Errorf("auth: bootstrap: %w", err)
	}
	return plaintext, true, nil
}

// Authenticate verifies the request's "Authorization: Bearer <key>" header.
// Credential errors wrap ErrUnauthenticated; other errors are failures of
// the key store.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	token, err := bearer(r.Header.Get("Authorization"))
	if err != nil {
		return Principal{}, err
	}
	return a.Verify(ctx, token)
}

// bearer extracts the credential of an Authorization header value. The
// scheme is case-insensitive (RFC 9110).
func bearer(h string) (string, error) {
	if h == "" {
		return "", ErrNoCredentials
	}
	if len(h) > maxHeaderLen {
		return "", ErrMalformedCredentials
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMalformedCredentials
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", ErrMalformedCredentials
	}
	return token, nil
}

// Verify checks a bearer credential: the admin token or an API key.
// Credential errors wrap ErrUnauthenticated.
func (a *Authenticator) Verify(ctx context.Context, token string) (Principal, error) {
	sum := sha256.Sum256([]byte(token))
	if a.adminHash != nil && a.equal(sum[:], a.adminHash) == 1 {
		return Principal{Name: AdminTokenName, Scopes: []string{ScopeAdmin}}, nil
	}
	id, ok := parseKey(token)
	if !ok {
		a.equal(sum[:], dummyHash)
		return Principal{}, ErrInvalidKey
	}
	k, err := a.lookup(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		a.equal(sum[:], dummyHash)
		return Principal{}, ErrInvalidKey
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: verify key %s: %w", id, err)
	}
	if a.equal(sum[:], k.Hash) != 1 {
		return Principal{}, ErrInvalidKey
	}
	if k.RevokedAt != nil {
		return Principal{}, ErrRevokedKey
	}
	return Principal{KeyID: k.ID, Name: k.Name, Scopes: slices.Clone(k.Scopes)}, nil
}

// lookup returns the key with this id from the cache or the store.
func (a *Authenticator) lookup(ctx context.Context, id string) (store.APIKey, error) {
	now := a.now()
	if a.cache != nil {
		if k, ok := a.cache.get(id, now); ok {
			return k, nil
		}
	}
	var gen uint64
	if a.cache != nil {
		gen = a.cache.begin()
	}
	k, err := a.store.Key(ctx, id)
	if err != nil {
		return store.APIKey{}, err
	}
	if a.cache != nil {
		a.cache.put(k, now, gen)
	}
	return k, nil
}

// parseKey returns the id of a well-formed key "rfx_<id>_<secret>".
func parseKey(token string) (string, bool) {
	if len(token) != keyLen || !strings.HasPrefix(token, keyPrefix) {
		return "", false
	}
	id := token[len(keyPrefix) : len(keyPrefix)+idLen]
	if token[len(keyPrefix)+idLen] != '_' {
		return "", false
	}
	secret := token[len(keyPrefix)+idLen+1:]
	if !isLowerHex(id) || !isLowerHex(secret) {
		return "", false
	}
	return id, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CreateKey makes a new API key with a name and scopes, stores its hash and
// returns the plaintext key (to be shown once) and the stored record.
// Scopes are deduplicated and put in canonical order. Invalid input wraps
// ErrInvalidName or ErrInvalidScope.
func (a *Authenticator) CreateKey(ctx context.Context, name string, scopes []string) (string, store.APIKey, error) {
	name = strings.TrimSpace(name)
	if err := validateName(name); err != nil {
		return "", store.APIKey{}, err
	}
	scopes, err := NormalizeScopes(scopes)
	if err != nil {
		return "", store.APIKey{}, err
	}
	for range createTries {
		plaintext, id, err := a.generate()
		if err != nil {
			return "", store.APIKey{}, err
		}
		sum := sha256.Sum256([]byte(plaintext))
		k := store.APIKey{
			ID:        id,
			Name:      name,
			Hash:      sum[:],
			Scopes:    scopes,
			CreatedAt: a.now().UTC(),
		}
		err = a.store.CreateKey(ctx, k)
		if errors.Is(err, store.ErrConflict) {
			continue // an id collision: 48 random bits, so try again
		}
		if err != nil {
			return "", store.APIKey{}, fmt.Errorf("auth: create key: %w", err)
		}
		return plaintext, k, nil
	}
	return "", store.APIKey{}, fmt.Errorf("auth: create key: %d id collisions in a row: %w", createTries, store.ErrConflict)
}

// generate returns a new plaintext key and its id.
func (a *Authenticator) generate() (plaintext, id string, err error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := io.ReadFull(a.random, b); err != nil {
		return "", "", fmt.Errorf("auth: generate key: %w", err)
	}
	id = hex.EncodeToString(b[:idBytes])
	return keyPrefix + id + "_" + hex.EncodeToString(b[idBytes:]), id, nil
}

// validateAdminToken checks that the admin token can be sent as a bearer
// credential: no whitespace or control characters, and not too long.
func validateAdminToken(tok string) error {
	if len(tok) > maxHeaderLen-len("Bearer ") {
		return fmt.Errorf("auth: admin token: longer than %d bytes", maxHeaderLen-len("Bearer "))
	}
	for _, r := range tok {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return errors.New("auth: admin token: must not contain whitespace or control characters")
		}
	}
	return nil
}

func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is required", ErrInvalidName)
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen {
		return fmt.Errorf("%w: at most %d characters of valid UTF-8", ErrInvalidName, MaxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: control or non-printable character %U", ErrInvalidName, r)
		}
	}
	return nil
}

// NormalizeScopes validates scopes and returns them deduplicated in
// canonical order. An empty list or an unknown scope wraps ErrInvalidScope.
func NormalizeScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: at least one scope is required (one of %s)", ErrInvalidScope, strings.Join(Scopes, ", "))
	}
	for _, s := range scopes {
		if !slices.Contains(Scopes, s) {
			if len(s) > 40 {
				s = s[:40] + "..."
			}
			return nil, fmt.Errorf("%w %q: want one of %s", ErrInvalidScope, s, strings.Join(Scopes, ", "))
		}
	}
	out := make([]string, 0, len(scopes))
	for _, s := range Scopes {
		if slices.Contains(scopes, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Keys lists every stored key, revoked ones included, oldest first. The
// records carry hashes; callers must not expose them (store.APIKey's JSON
// form omits them).
func (a *Authenticator) Keys(ctx context.Context) ([]store.APIKey, error) {
	keys, err := a.store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	return keys, nil
}

// RevokeKey revokes the key with this id; it is idempotent for a key
// already revoked. The key stops working at once on this instance; other
// instances notice within the cache TTL. An unknown id wraps
// store.ErrNotFound.
func (a *Authenticator) RevokeKey(ctx context.Context, id string) error {
	if a.cache != nil {
		defer a.cache.delete(id)
	}
	k, err := a.store.Key(ctx, id)
	if err != nil {
		return fmt.Errorf("auth: revoke key %s: %w", id, err)
	}
	if k.RevokedAt != nil {
		return nil
	}
	if err := a.store.RevokeKey(ctx, id, a.now().UTC()); err != nil {
		return fmt.Errorf("auth: revoke key %s: %w", id, err)
	}
	return nil
}
