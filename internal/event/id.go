package event

import (
	"sync"
	"time"
)

// IDs are 53-bit integers laid out as
//
//	41 bits: milliseconds since IDEpoch (about 69 years)
//	 4 bits: node (an instance number, 0 to 15)
//	 8 bits: counter within the millisecond (256 ids per millisecond and node)
//
// so they sort by the time intake received the event, and the receipt time
// of an event can be read back from its id (TimeOfID). This lets storage find
// the partition of an id without an index on it. 53 bits is the most that a
// JSON number keeps exactly in JavaScript and jq (IEEE 754 doubles): an id a
// script reads from the API is the id it sends back. A generator that needs
// more than 256 ids in one millisecond borrows the next millisecond; the
// ids run ahead of the clock for as long as the burst lasts.

// IDEpoch is the zero time of ids: 2024-01-01T00:00:00Z.
var IDEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	counterBits = 8
	nodeBits    = 4
	timeShift   = counterBits + nodeBits
	// MaxBlock is the largest block of ids one Next call hands out.
	MaxBlock = 1 << counterBits
	// MaxNode is the largest node number.
	MaxNode = 1<<nodeBits - 1
)

// IDGen allocates blocks of consecutive event ids. It is safe for
// concurrent use.
type IDGen struct {
	node int64
	now  func() time.Time

	mu      sync.Mutex
	ms      int64
	counter int64
}

// NewIDGen returns a generator for node (0 to MaxNode); now may be nil for
// time.Now.
func NewIDGen(node int, now func() time.Time) *IDGen {
	if now == nil {
		now = time.Now
	}
	return &IDGen{node: int64(node) & MaxNode, now: now}
}

// Next reserves n consecutive ids (1 <= n <= MaxBlock) and returns the first.
// Ids are strictly increasing across calls even if the clock steps back.
func (g *IDGen) Next(n int) int64 {
	if n < 1 || n > MaxBlock {
		panic("event: IDGen.Next block size out of range")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().Sub(IDEpoch).Milliseconds()
	if ms > g.ms {
		g.ms, g.counter = ms, 0
	}
	if g.counter+int64(n) > MaxBlock {
		g.ms++
		g.counter = 0
	}
	id := g.ms<<timeShift | g.node<<counterBits | g.counter
	g.counter += int64(n)
	return id
}

// TimeOfID is the receipt time encoded in id, to the millisecond.
func TimeOfID(id int64) time.Time {
	return IDEpoch.Add(time.Duration(id>>timeShift) * time.Millisecond)
}

// IDAt is the smallest id of the millisecond that holds t: a lower bound,
// in range queries, for the ids received at t or later.
func IDAt(t time.Time) int64 {
	ms := t.Sub(IDEpoch).Milliseconds()
	if ms < 0 {
		ms = 0
	}
	return ms << timeShift
}
