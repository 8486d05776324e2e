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
type cache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]cacheEntry
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

func (c *cache) put(k store.APIKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
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

func (c *cache) delete(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
