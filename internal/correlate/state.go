package correlate

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
)

// Eviction reasons, the values of the reason label of the eviction metrics.
const (
	reasonExpired  = "expired"
	reasonCapacity = "capacity"
)

// table is a bounded map from string keys to V, split into shards that
// each have their own mutex and hold at most perShard keys. Within a shard
// entries are kept in a list, least recently put or touched first; when a
// shard is full the first one is evicted.
//
// Callers lock the shard of a key (lock), use get/put/touch/remove while
// holding it, and unlock it.
type table[V any] struct {
	shards   []shard[V]
	perShard int
	size     atomic.Int64
	// onEvict is called (with the shard locked) for each eviction.
	onEvict func(reason string)
}

type shard[V any] struct {
	mu          sync.Mutex
	m           map[string]*entry[V]
	first, last *entry[V]
}

type entry[V any] struct {
	key        string
	val        V
	prev, next *entry[V]
}

// shardedAbove is the capacity from which a table is split into 64 shards;
// below it one shard holds everything, so that small caps are exact.
const shardedAbove = 1024

func newTable[V any](maxKeys int, onEvict func(reason string)) *table[V] {
	n := 1
	if maxKeys >= shardedAbove {
		n = 64
	}
	t := &table[V]{shards: make([]shard[V], n), perShard: (maxKeys + n - 1) / n, onEvict: onEvict}
	if t.perShard < 1 {
		t.perShard = 1
	}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*entry[V])
	}
	return t
}

// lock locks and returns the shard of key.
func (t *table[V]) lock(key string) *shard[V] {
	s := &t.shards[0]
	if len(t.shards) > 1 {
		h := fnv.New32a()
		h.Write([]byte(key))
		s = &t.shards[h.Sum32()%uint32(len(t.shards))]
	}
	s.mu.Lock()
	return s
}

func (s *shard[V]) unlock() { s.mu.Unlock() }

// get returns the entry of key in s, or nil.
func (t *table[V]) get(s *shard[V], key string) *entry[V] { return s.m[key] }

// put sets the value of key in s and makes it the most recent entry,
// evicting the oldest entry of a full shard first.
func (t *table[V]) put(s *shard[V], key string, v V) *entry[V] {
	if e := s.m[key]; e != nil {
		e.val = v
		t.touch(s, e)
		return e
	}
	for len(s.m) >= t.perShard && s.first != nil {
		t.remove(s, s.first)
		if t.onEvict != nil {
			t.onEvict(reasonCapacity)
		}
	}
	e := &entry[V]{key: key, val: v}
	s.m[key] = e
	t.link(s, e)
	t.size.Add(1)
	return e
}

// touch makes e the most recent entry of s.
func (t *table[V]) touch(s *shard[V], e *entry[V]) {
	if s.last == e {
		return
	}
	t.unlink(s, e)
	t.link(s, e)
}

// remove deletes e from s.
func (t *table[V]) remove(s *shard[V], e *entry[V]) {
	t.unlink(s, e)
	delete(s.m, e.key)
	t.size.Add(-1)
}

// expire removes e as expired and counts the eviction.
func (t *table[V]) expire(s *shard[V], e *entry[V]) {
	t.remove(s, e)
	if t.onEvict != nil {
		t.onEvict(reasonExpired)
	}
}

// sweep removes every entry for which expired returns true and returns how
// many it removed. It locks one shard at a time.
func (t *table[V]) sweep(expired func(*V) bool) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for e := s.first; e != nil; {
			next := e.next
			if expired(&e.val) {
				t.expire(s, e)
				n++
			}
			e = next
		}
		s.mu.Unlock()
	}
	return n
}

// len returns the number of entries.
func (t *table[V]) len() int { return int(t.size.Load()) }

func (t *table[V]) link(s *shard[V], e *entry[V]) {
	e.prev, e.next = s.last, nil
	if s.last != nil {
		s.last.next = e
	} else {
		s.first = e
	}
	s.last = e
}

func (t *table[V]) unlink(s *shard[V], e *entry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.first = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.last = e.prev
	}
	e.prev, e.next = nil, nil
}
