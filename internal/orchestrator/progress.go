package orchestrator

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// sub is one subscription: a channel of one state, coalescing.
type sub struct {
	mu     sync.Mutex
	ch     chan store.Execution
	closed bool
}

// offer replaces what the channel holds with x; it never blocks.
func (s *sub) offer(x store.Execution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case <-s.ch: // a slow reader gets the latest state only
	default:
	}
	select {
	case s.ch <- x:
	default: // cannot happen: this is the only sender, and the channel was emptied
	}
}

func (s *sub) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// subscribeTimeout bounds Subscribe's look-up of an execution that no
// goroutine runs.
const subscribeTimeout = 5 * time.Second

// Subscribe streams the states of execution id as they change, for
// Server-Sent Events: the channel holds one state (the current one
// first), and a reader slower than the changes gets the latest state,
// never all of them; the orchestrator never waits for a reader. The
// channel is closed after the state that ends the execution, when stop
// is called, or at once when the execution does not exist or
// MaxSubscribers are open. An execution pending on an approval keeps its
// subscriptions open until it ends. stop may be called more than once.
func (o *Orchestrator) Subscribe(id int64) (<-chan store.Execution, func()) {
	s := &sub{ch: make(chan store.Execution, 1)}
	stop := func() { o.unsubscribe(id, s) }

	o.mu.Lock()
	r := o.runs[id]
	if r != nil {
		o.mu.Unlock()
		r.mu.Lock()
		defer r.mu.Unlock()
		if !o.addSub(id, s) {
			s.close()
			return s.ch, stop
		}
		s.offer(clone(r.x))
		if r.ended {
			o.unsubscribe(id, s)
		}
		return s.ch, stop
	}
	defer o.mu.Unlock() // Resume, Reject and Cancel wait: no change is missed
	ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
	defer cancel()
	x, err := o.store.Execution(ctx, id)
	if err != nil {
		s.close()
		return s.ch, stop
	}
	if ended(x.Status) {
		s.offer(x)
		s.close()
		return s.ch, stop
	}
	if !o.addSub(id, s) {
		s.close()
		return s.ch, stop
	}
	s.offer(x)
	return s.ch, stop
}

func (o *Orchestrator) addSub(id int64, s *sub) bool {
	o.subsMu.Lock()
	defer o.subsMu.Unlock()
	if o.nsubs >= o.maxSubs {
		return false
	}
	if o.subs[id] == nil {
		o.subs[id] = map[*sub]struct{}{}
	}
	o.subs[id][s] = struct{}{}
	o.nsubs++
	return true
}

func (o *Orchestrator) unsubscribe(id int64, s *sub) {
	o.subsMu.Lock()
	if set := o.subs[id]; set != nil {
		if _, ok := set[s]; ok {
			delete(set, s)
			o.nsubs--
			if len(set) == 0 {
				delete(o.subs, id)
			}
		}
	}
	o.subsMu.Unlock()
	s.close()
}

// publish offers x to its subscribers; final closes them after.
func (o *Orchestrator) publish(x store.Execution, final bool) {
	o.subsMu.Lock()
	set := slices.Collect(maps.Keys(o.subs[x.ID]))
	if final {
		delete(o.subs, x.ID)
		o.nsubs -= len(set)
	}
	o.subsMu.Unlock()
	for _, s := range set {
		s.offer(x)
		if final {
			s.close()
		}
	}
}

// clone is a copy of x that shares nothing that the orchestrator
// changes.
func clone(x store.Execution) store.Execution {
	x.Data = slices.Clone(x.Data)
	x.Steps = cloneSteps(x.Steps)
	x.Rollback = cloneSteps(x.Rollback)
	return x
}

func cloneSteps(in []store.StepState) []store.StepState {
	if in == nil {
		return nil
	}
	out := slices.Clone(in)
	for i := range out {
		out[i].Parameters = maps.Clone(out[i].Parameters)
		out[i].Outputs = maps.Clone(out[i].Outputs)
		out[i].Channels = slices.Clone(out[i].Channels)
	}
	return out
}
