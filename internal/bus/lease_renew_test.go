package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// fakeKV is the lease key of a KV bucket, in memory; the methods the lease
// does not use are left to the embedded nil interface.
type fakeKV struct {
	jetstream.KeyValue
	mu      sync.Mutex
	rev     uint64
	value   []byte
	updates []time.Time
	down    bool // NATS unreachable
}

var errDown = errors.New("nats: timeout")

func (f *fakeKV) Update(_ context.Context, _ string, value []byte, rev uint64) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errDown
	}
	if rev != f.rev {
		return 0, jetstream.ErrKeyRevisionMismatch
	}
	f.rev++
	f.value = value
	f.updates = append(f.updates, time.Now())
	return f.rev, nil
}

func (f *fakeKV) Create(_ context.Context, _ string, value []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errDown
	}
	if f.value != nil {
		return 0, jetstream.ErrKeyExists
	}
	f.rev++
	f.value = value
	return f.rev, nil
}

func (f *fakeKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound // the holder is then "another instance"
}

// takeOver is another instance writing the key.
func (f *fakeKV) takeOver() {
	f.mu.Lock()
	f.rev++
	f.value = []byte(`{"holder":"other"}`)
	f.mu.Unlock()
}

func (f *fakeKV) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeKV) renewals() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.updates...)
}

func newTestLease(t *testing.T, kv *fakeKV, ttl time.Duration, reg prometheus.Registerer) *Lease {
	t.Helper()
	met, err := newLeaseMetrics(reg)
	require.NoError(t, err)
	kv.rev, kv.value = 1, []byte(`{"holder":"me"}`)
	l := &Lease{kv: kv, log: slog.New(slog.DiscardHandler), ttl: ttl, value: kv.value, met: met, rev: 1, done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	go l.renew()
	return l
}

func TestLeaseRenewsEveryThirdOfItsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{}
		reg := prometheus.NewRegistry()
		start := time.Now()
		l := newTestLease(t, kv, 15*time.Second, reg)

		time.Sleep(16 * time.Second)
		synctest.Wait()
		require.Equal(t, []time.Time{start.Add(5 * time.Second), start.Add(10 * time.Second), start.Add(15 * time.Second)}, kv.renewals())

		// NATS away: renewals fail and are counted; the lease is kept.
		kv.setDown(true)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, 2.0, gathered(t, reg, "reflex_processing_lease_renew_failures_total")[""])
		require.NoError(t, l.Err())

		// Back, and another instance took the key meanwhile: lost.
		kv.setDown(false)
		kv.takeOver()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.ErrorIs(t, l.Err(), ErrLeaseLost)
		require.Equal(t, 1.0, gathered(t, reg, "reflex_processing_lease_lost_total")[""])
		require.Equal(t, 0.0, gathered(t, reg, "reflex_processing_lease_held")[""])
		require.NoError(t, l.Release(context.Background()))
	})
}

func TestLeaseRetakesAnExpiredKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &fakeKV{}
		l := newTestLease(t, kv, 3*time.Second, nil)
		// The key expired (renewals failed for the TTL) and nobody took it:
		// the next renewal creates it again.
		kv.mu.Lock()
		kv.rev, kv.value = 7, nil
		kv.mu.Unlock()
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		require.NoError(t, l.Err())
		kv.mu.Lock()
		require.Equal(t, uint64(8), kv.rev)
		kv.mu.Unlock()
		l.cancel(errors.New("test over"))
		<-l.done
	})
}
