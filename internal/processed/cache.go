package processed

import (
	"container/list"
	"sync"
)

// cache holds the encoded form of recently published events, bounded in
// bytes, least recently used first out: a repeat of an event that is
// repeated often finds it here instead of in the store.
type cache struct {
	mu    sync.Mutex
	max   int
	bytes int
	ll    *list.List // front: most recently used
	at    map[int64]*list.Element
}

type cacheEntry struct {
	id   int64
	host string
	ev   []byte
}

func newCache(maxBytes int) *cache {
	return &cache{max: maxBytes, ll: list.New(), at: make(map[int64]*list.Element)}
}

func (c *cache) size(e *cacheEntry) int { return len(e.ev) + len(e.host) + 64 }

func (c *cache) put(id int64, host string, ev []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.at[id]; ok {
		e := el.Value.(*cacheEntry)
		c.bytes -= c.size(e)
		e.host, e.ev = host, ev
		c.bytes += c.size(e)
		c.ll.MoveToFront(el)
	} else {
		e := &cacheEntry{id: id, host: host, ev: ev}
		if c.size(e) > c.max {
			return
		}
		c.at[id] = c.ll.PushFront(e)
		c.bytes += c.size(e)
	}
	for c.bytes > c.max {
		el := c.ll.Back()
		e := el.Value.(*cacheEntry)
		c.ll.Remove(el)
		delete(c.at, e.id)
		c.bytes -= c.size(e)
	}
}

func (c *cache) get(id int64) (ev []byte, host string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.at[id]
	if !ok {
		return nil, "", false
	}
	c.ll.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	return e.ev, e.host, true
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
