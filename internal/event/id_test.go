package event

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestIDGenMonotonic(t *testing.T) {
	clk := &fakeClock{t: t0}
	g := NewIDGen(3, clk.now)
	prev := int64(-1)
	for i := 0; i < 1000; i++ {
		if i%100 == 0 {
			clk.set(clk.now().Add(time.Millisecond))
		}
		id := g.Next(1)
		require.Greater(t, id, prev)
		require.Positive(t, id)
		prev = id
	}
}

func TestIDGenBlocksContiguous(t *testing.T) {
	clk := &fakeClock{t: t0}
	g := NewIDGen(5, clk.now)
	sizes := []int{1, 100, 7, MaxBlock, 3, MaxBlock - 1, 2}
	var prevEnd int64 = -1
	for _, n := range sizes {
		first := g.Next(n)
		last := first + int64(n) - 1
		require.Greater(t, first, prevEnd, "blocks do not overlap")
		// A block never straddles a millisecond or another node's ids:
		// every id in it has the same time and node.
		require.Equal(t, TimeOfID(first), TimeOfID(last))
		require.Equal(t, first>>counterBits&MaxNode, last>>counterBits&MaxNode)
		require.Equal(t, int64(5), first>>counterBits&MaxNode)
		prevEnd = last
	}
}

func TestIDGenBlockOverflowMovesToNextMillisecond(t *testing.T) {
	clk := &fakeClock{t: t0}
	g := NewIDGen(0, clk.now)
	a := g.Next(MaxBlock - 1)
	b := g.Next(2) // does not fit in t0's last counter value
	require.Equal(t, t0, TimeOfID(a))
	require.Equal(t, t0.Add(time.Millisecond), TimeOfID(b))
	// When the clock reaches that millisecond, ids continue after b.
	clk.set(t0.Add(time.Millisecond))
	c := g.Next(1)
	require.Equal(t, b+2, c)
}

func TestTimeOfIDRoundTrip(t *testing.T) {
	for _, at := range []time.Time{
		IDEpoch,
		IDEpoch.Add(time.Millisecond),
		t0,
		t0.Add(123 * time.Millisecond),
		time.Date(2090, 6, 1, 0, 0, 0, 0, time.UTC),
	} {
		t.Run(at.String(), func(t *testing.T) {
			for node := 0; node <= MaxNode; node += 21 {
				g := NewIDGen(node, func() time.Time { return at })
				id := g.Next(10)
				require.True(t, at.Equal(TimeOfID(id)), "first of block")
				require.True(t, at.Equal(TimeOfID(id+9)), "last of block")
				require.Equal(t, IDAt(at), id&^(1<<timeShift-1), "IDAt is the millisecond's first id")
				require.LessOrEqual(t, IDAt(at), id)
				require.Less(t, id, IDAt(at.Add(time.Millisecond)))
			}
		})
	}
	// Sub-millisecond precision is dropped.
	g := NewIDGen(0, func() time.Time { return t0.Add(999 * time.Microsecond) })
	require.Equal(t, t0, TimeOfID(g.Next(1)))
	require.Equal(t, int64(0), IDAt(IDEpoch.Add(-time.Hour)), "before the epoch clamps to 0")
}

func TestIDGenClockBackwards(t *testing.T) {
	clk := &fakeClock{t: t0}
	g := NewIDGen(1, clk.now)
	a := g.Next(10)
	clk.set(t0.Add(-time.Hour))
	b := g.Next(10)
	require.Equal(t, a+10, b, "a step back continues the current millisecond")
	require.Equal(t, t0, TimeOfID(b))
	clk.set(t0.Add(-time.Minute))
	c := g.Next(1)
	require.Greater(t, c, b)
	clk.set(t0.Add(time.Second))
	d := g.Next(1)
	require.Greater(t, d, c)
	require.Equal(t, t0.Add(time.Second), TimeOfID(d), "time resumes once the clock catches up")
}

func TestIDGenNodeIsolation(t *testing.T) {
	at := func() time.Time { return t0 }
	a, b := NewIDGen(1, at), NewIDGen(2, at)
	ids := map[int64]bool{}
	for i := 0; i < 100; i++ {
		for _, g := range []*IDGen{a, b} {
			id := g.Next(3)
			for j := int64(0); j < 3; j++ {
				require.False(t, ids[id+j], "nodes never share ids")
				ids[id+j] = true
			}
		}
	}
	// Node numbers beyond MaxNode are masked into range.
	require.Equal(t, int64(MaxNode), NewIDGen(MaxNode, at).Next(1)>>counterBits&MaxNode)
	require.Equal(t, int64(0), NewIDGen(MaxNode+1, at).Next(1)>>counterBits&MaxNode)
}

func TestIDGenNextPanicsOnBadSize(t *testing.T) {
	g := NewIDGen(0, nil)
	require.Panics(t, func() { g.Next(0) })
	require.Panics(t, func() { g.Next(MaxBlock + 1) })
	require.NotPanics(t, func() { g.Next(MaxBlock) })
}

func TestIDGenConcurrent(t *testing.T) {
	clk := &fakeClock{t: t0}
	g := NewIDGen(7, clk.now)
	const workers, calls = 8, 500
	results := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				if i%50 == 0 {
					clk.set(clk.now().Add(time.Millisecond))
				}
				results[w] = append(results[w], g.Next(1+i%5))
			}
		}()
	}
	wg.Wait()
	seen := make(map[int64]bool)
	for w, ids := range results {
		for i, id := range ids {
			if i > 0 {
				require.Greater(t, id, ids[i-1], "each caller sees increasing ids")
			}
			n := 1 + i%5
			for j := int64(0); j < int64(n); j++ {
				require.False(t, seen[id+j], "worker %d call %d: id %d handed out twice", w, i, id+j)
				seen[id+j] = true
			}
		}
	}
}

func TestIDsFitInAJSONNumber(t *testing.T) {
	// Ids must stay exact as IEEE 754 doubles (JavaScript, jq) until 2090.
	late := time.Date(2090, 12, 31, 23, 59, 59, 0, time.UTC)
	g := NewIDGen(MaxNode, func() time.Time { return late })
	id := g.Next(MaxBlock)
	last := id + MaxBlock - 1
	require.Less(t, last, int64(1)<<53)
	require.Equal(t, last, int64(float64(last)), "exact as a float64")
	require.Equal(t, late.Truncate(time.Millisecond), TimeOfID(last))
}
