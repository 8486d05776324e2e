package auth

import (
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// cache holds keys read from the store for a short time, so that each
// request does not read the store. It caches store records (with their
// hashes), not verification results: a wrong secret for a cached id still
// fails. It is bounded: when full, expired entries go first, then
// arbitrary ones.
//
// A fill races with a revocation: a check that read a key from the store
// before it was revoked must not put it back after the revocation dropped
// it. So a fill is in two steps: begin returns the cache's generation
// before the store is read, and put stores the record only if no delete
// happened since (a delete advances the generation).
type cache struct {
	ttl time.Duration
	max int

	mu  sync.Mutex
	m   map[string]cacheEntry
	gen uint64 // advanced by every delete
}

type cacheEntry struct {
	key     store.APIKey
	expires time.Time
}

func newCache(ttl time.Duration, maxSize int) *cache {
	return &cache{ttl: ttl, max: maxSize, m: make(map[string]cacheEntry)}
}

func (c *cache) get(id string, now time.Time) (store.APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return store.APIKey{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, id)
		return store.APIKey{}, false
	}
	return e.key, true
}

// begin returns the generation to pass to put for a record about to be
// read from the store.
func (c *cache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches k, read from the store after begin returned gen, unless a
// delete happened since: the record may predate it.
func (c *cache) put(k store.APIKey, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.m[k.ID]; !ok && len(c.m) >= c.max {
		for id, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, id)
			}
		}
		for id := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, id)
		}
	}
	c.m[k.ID] = cacheEntry{key: k, expires: now.Add(c.ttl)}
}

// delete drops the record of id and makes every fill begun before it a
// no-op. Call it after the change to the store is committed.
func (c *cache) delete(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
	c.gen++
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
