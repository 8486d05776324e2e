package processed

import "sync"

// Recent is a bounded set of recently handled record keys, oldest out
// first: a consumer checks it to skip the common duplicates (a redelivery
// of a batch it has just handled, a republish after a crash) without
// touching its tables. It is an optimization, not the idempotency
// guarantee: it is lost at restart and forgets old keys, so durable
// effects must still be keyed (consumer, Record.Key()) in the consumer's
// own tables. Mark keys only after their effects are durable. It is safe
// for concurrent use; the zero value is not usable, use NewRecent.
type Recent struct {
	mu   sync.Mutex
	set  map[int64]struct{}
	ring []int64
	next int
	full bool
}

// NewRecent returns a set that remembers the last n keys (at least 1).
func NewRecent(n int) *Recent {
	n = max(1, n)
	return &Recent{set: make(map[int64]struct{}, n), ring: make([]int64, n)}
}

// Seen reports whether key is in the set.
func (r *Recent) Seen(key int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[key]
	return ok
}

// Mark adds keys, forgetting the oldest beyond the bound.
func (r *Recent) Mark(keys ...int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if _, ok := r.set[k]; ok {
			continue
		}
		if r.full {
			delete(r.set, r.ring[r.next])
		}
		r.ring[r.next] = k
		r.set[k] = struct{}{}
		r.next++
		if r.next == len(r.ring) {
			r.next, r.full = 0, true
		}
	}
}

// Len is the number of keys in the set.
func (r *Recent) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.set)
}

// Unseen returns the records of recs whose keys are not in the set, in
// order, and each key once (a record repeated within recs is kept once).
// It does not mark them.
func (r *Recent) Unseen(recs []Record) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(recs))
	dup := make(map[int64]struct{}, len(recs))
	for _, rec := range recs {
		k := rec.Key()
		if _, ok := r.set[k]; ok {
			continue
		}
		if _, ok := dup[k]; ok {
			continue
		}
		dup[k] = struct{}{}
		out = append(out, rec)
	}
	return out
}
