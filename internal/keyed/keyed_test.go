package keyed

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPutGetTouchEvict(t *testing.T) {
	var evicted []string
	tb := New[int](3, func(reason string) { evicted = append(evicted, reason) })
	put := func(k string, v int) {
		s := tb.Lock(k)
		tb.Put(s, k, v)
		s.Unlock()
	}
	get := func(k string) (int, bool) {
		s := tb.Lock(k)
		defer s.Unlock()
		if e := tb.Get(s, k); e != nil {
			return e.Val, true
		}
		return 0, false
	}
	put("a", 1)
	put("b", 2)
	put("c", 3)
	put("a", 10) // an update makes "a" the most recent
	require.Equal(t, 3, tb.Len())

	s := tb.Lock("b")
	tb.Touch(s, tb.Get(s, "b")) // now "c" is the oldest
	s.Unlock()

	put("d", 4)
	require.Equal(t, []string{ReasonCapacity}, evicted)
	_, ok := get("c")
	require.False(t, ok, "the least recently used key was evicted")
	v, ok := get("a")
	require.True(t, ok)
	require.Equal(t, 10, v)
	require.Equal(t, 3, tb.Len())

	s = tb.Lock("a")
	tb.Expire(s, tb.Get(s, "a"))
	s.Unlock()
	require.Equal(t, []string{ReasonCapacity, ReasonExpired}, evicted)
	s = tb.Lock("b")
	tb.Remove(s, tb.Get(s, "b"))
	s.Unlock()
	require.Equal(t, 1, tb.Len())
	require.Len(t, evicted, 2, "Remove is not an eviction")
}

func TestSweepAndShards(t *testing.T) {
	var n int
	var mu sync.Mutex
	tb := New[int](4096, func(string) { mu.Lock(); n++; mu.Unlock() })
	require.Len(t, tb.shards, 64)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				k := fmt.Sprintf("host-%d-%d", w, i)
				s := tb.Lock(k)
				tb.Put(s, k, i)
				s.Unlock()
			}
		}(w)
	}
	wg.Wait()
	require.Equal(t, 2000, tb.Len())
	removed := tb.Sweep(func(v *int) bool { return *v%2 == 0 })
	require.Equal(t, 1000, removed)
	require.Equal(t, 1000, tb.Len())
	require.Equal(t, 1000, n, "a sweep counts expirations")
}

func TestSweepClock(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	c := SweepClock{Every: time.Minute}
	require.False(t, c.Due(t0), "the first batch starts the clock")
	require.False(t, c.Due(t0.Add(59*time.Second)))
	require.True(t, c.Due(t0.Add(time.Minute)))
	require.False(t, c.Due(t0.Add(time.Minute)), "claimed once")
	require.True(t, c.Due(t0.Add(2*time.Minute)))
}
