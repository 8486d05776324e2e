// Package keyed is the bounded, sharded, per-key state of the pipeline's
// stateful stages (deduplication, rate limits, correlation): a map from
// string keys to values, split into shards with their own mutex, each
// holding at most a fixed number of keys, evicting the least recently used.
package keyed

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"
)

// Eviction reasons, the values of the reason label of the eviction metrics.
const (
	ReasonExpired  = "expired"
	ReasonCapacity = "capacity"
)

// Table is a bounded map from string keys to V, split into shards that
// each have their own mutex and hold at most perShard keys. Within a shard
// entries are kept in a list, least recently put or touched first; when a
// shard is full the first one is evicted.
//
// Callers lock the shard of a key (Lock), use Get, Put, Touch, Remove and
// Expire while holding it, and Unlock it. Sweep and Len lock by themselves.
type Table[V any] struct {
	shards   []Shard[V]
	perShard int
	size     atomic.Int64
	// onEvict is called (with the shard locked) for each eviction.
	onEvict func(reason string)
}

// Shard is one part of a Table, with its own lock.
type Shard[V any] struct {
	mu          sync.Mutex
	m           map[string]*Entry[V]
	first, last *Entry[V]
}

// Entry is a key and its value in a Table.
type Entry[V any] struct {
	Key        string
	Val        V
	prev, next *Entry[V]
}

// shardedAbove is the capacity from which a table is split into 64 shards;
// below it one shard holds everything, so that small caps are exact.
const shardedAbove = 1024

// New returns a table of at most maxKeys keys (rounded up to a multiple of
// the shard count); onEvict, if not nil, is called with ReasonCapacity or
// ReasonExpired for each eviction.
func New[V any](maxKeys int, onEvict func(reason string)) *Table[V] {
	n := 1
	if maxKeys >= shardedAbove {
		n = 64
	}
	t := &Table[V]{shards: make([]Shard[V], n), perShard: (maxKeys + n - 1) / n, onEvict: onEvict}
	if t.perShard < 1 {
		t.perShard = 1
	}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*Entry[V])
	}
	return t
}

// Lock locks and returns the shard of key.
func (t *Table[V]) Lock(key string) *Shard[V] {
	s := &t.shards[0]
	if len(t.shards) > 1 {
		h := fnv.New32a()
		h.Write([]byte(key))
		s = &t.shards[h.Sum32()%uint32(len(t.shards))]
	}
	s.mu.Lock()
	return s
}

// Unlock unlocks the shard.
func (s *Shard[V]) Unlock() { s.mu.Unlock() }

// Get returns the entry of key in s, or nil.
func (t *Table[V]) Get(s *Shard[V], key string) *Entry[V] { return s.m[key] }

// Put sets the value of key in s and makes it the most recent entry,
// evicting the oldest entry of a full shard first.
func (t *Table[V]) Put(s *Shard[V], key string, v V) *Entry[V] {
	if e := s.m[key]; e != nil {
		e.Val = v
		t.Touch(s, e)
		return e
	}
	for len(s.m) >= t.perShard && s.first != nil {
		t.Remove(s, s.first)
		if t.onEvict != nil {
			t.onEvict(ReasonCapacity)
		}
	}
	e := &Entry[V]{Key: key, Val: v}
	s.m[key] = e
	t.link(s, e)
	t.size.Add(1)
	return e
}

// Touch makes e the most recent entry of s.
func (t *Table[V]) Touch(s *Shard[V], e *Entry[V]) {
	if s.last == e {
		return
	}
	t.unlink(s, e)
	t.link(s, e)
}

// Remove deletes e from s.
func (t *Table[V]) Remove(s *Shard[V], e *Entry[V]) {
	t.unlink(s, e)
	delete(s.m, e.Key)
	t.size.Add(-1)
}

// Expire removes e as expired and counts the eviction.
func (t *Table[V]) Expire(s *Shard[V], e *Entry[V]) {
	t.Remove(s, e)
	if t.onEvict != nil {
		t.onEvict(ReasonExpired)
	}
}

// Sweep removes every entry for which expired returns true and returns how
// many it removed. It locks one shard at a time.
func (t *Table[V]) Sweep(expired func(*V) bool) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for e := s.first; e != nil; {
			next := e.next
			if expired(&e.Val) {
				t.Expire(s, e)
				n++
			}
			e = next
		}
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of entries.
func (t *Table[V]) Len() int { return int(t.size.Load()) }

func (t *Table[V]) link(s *Shard[V], e *Entry[V]) {
	e.prev, e.next = s.last, nil
	if s.last != nil {
		s.last.next = e
	} else {
		s.first = e
	}
	s.last = e
}

func (t *Table[V]) unlink(s *Shard[V], e *Entry[V]) {
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

// SweepClock decides when a stage sweeps its table: at most once per Every
// of batch time (the clock the stages run on), claimed by one caller even
// when several partitions ask at once. The zero value with Every set is
// ready to use.
type SweepClock struct {
	Every time.Duration
	last  atomic.Int64 // UnixNano of the batch time of the last sweep
}

// Due reports whether a sweep is due at now and, if so, claims it. The
// first call starts the clock.
func (c *SweepClock) Due(now time.Time) bool {
	last := c.last.Load()
	n := now.UnixNano()
	if last == 0 {
		c.last.CompareAndSwap(0, n)
		return false
	}
	if time.Duration(n-last) < c.Every {
		return false
	}
	return c.last.CompareAndSwap(last, n)
}
