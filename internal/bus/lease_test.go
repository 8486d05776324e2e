package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// leaseBus opens a bus on the external server with its own stream; the
// lease bucket is deleted at cleanup.
func leaseBus(t *testing.T, stream string) *Bus {
	t.Helper()
	o := modes[1].opts(t)
	if stream != "" {
		o.Stream = stream
	}
	b := openBus(t, o)
	t.Cleanup(func() { deleteStream(t, o.URL, "KV_"+LeaseBucket(o.Stream)) })
	return b
}

func acquire(t *testing.T, b *Bus, holder string, reg prometheus.Registerer) (*Lease, error) {
	t.Helper()
	l, err := b.AcquireLease(ctxT(t), LeaseOptions{Holder: holder, TTL: time.Second, Registerer: reg})
	if l != nil {
		t.Cleanup(func() { _ = l.Release(context.Background()) })
	}
	return l, err
}

// abandon stops renewing without releasing, as a killed process does.
func (l *Lease) abandon() {
	l.cancel(errors.New("abandoned"))
	<-l.done
}

func TestLeaseOneHolderAtATime(t *testing.T) {
	a := leaseBus(t, "")
	b := leaseBus(t, a.Stream()) // a second instance on the same stream

	reg := prometheus.NewRegistry()
	la, err := acquire(t, a, "host-a:/data", reg)
	require.NoError(t, err)
	require.NoError(t, la.Err())
	require.Equal(t, 1.0, gathered(t, reg, "reflex_processing_lease_held")[""])

	_, err = acquire(t, b, "host-b:/data", nil)
	require.ErrorIs(t, err, ErrLeaseHeld)
	require.ErrorContains(t, err, "host-a:/data")
	require.ErrorContains(t, err, fmt.Sprintf("pid %d", os.Getpid()))

	// Released, it is free at once.
	require.NoError(t, la.Release(ctxT(t)))
	require.NoError(t, la.Release(ctxT(t)), "Release is idempotent")
	require.Error(t, la.Context().Err())
	lb, err := acquire(t, b, "host-b:/data", nil)
	require.NoError(t, err)
	require.NoError(t, lb.Err())
}

func TestLeaseTakenOverByTheSameHolder(t *testing.T) {
	a := leaseBus(t, "")
	la, err := acquire(t, a, "host-a:/data", nil)
	require.NoError(t, err)
	la.abandon() // killed: the key stays until its TTL

	// The same instance restarted (the data dir lock guarantees the old
	// process is gone) takes it over at once.
	b := leaseBus(t, a.Stream())
	lb, err := acquire(t, b, "host-a:/data", nil)
	require.NoError(t, err)
	require.NoError(t, lb.Err())
}

func TestLeaseOfADeadHolderExpires(t *testing.T) {
	a := leaseBus(t, "")
	la, err := acquire(t, a, "host-a:/data", nil)
	require.NoError(t, err)
	la.abandon()

	b := leaseBus(t, a.Stream())
	_, err = acquire(t, b, "host-b:/data", nil)
	require.ErrorIs(t, err, ErrLeaseHeld, "not before the TTL")
	// The server expires the key after its TTL (1s): real time on the
	// external server, so wait for it, with a bound.
	deadline := time.Now().Add(15 * time.Second)
	for {
		lb, err := b.AcquireLease(ctxT(t), LeaseOptions{Holder: "host-b:/data", TTL: time.Second})
		if err == nil {
			require.NoError(t, lb.Release(ctxT(t)))
			return
		}
		require.ErrorIs(t, err, ErrLeaseHeld)
		require.True(t, time.Now().Before(deadline), "the lease did not expire: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
}

func TestLeaseLostToAnotherInstanceStopsIt(t *testing.T) {
	a := leaseBus(t, "")
	reg := prometheus.NewRegistry()
	la, err := acquire(t, a, "host-a:/data", reg)
	require.NoError(t, err)

	// Another instance took the key (as after an expiry while this one
	// could not reach NATS): the next renewal finds it and gives up.
	_, err = la.kv.Put(ctxT(t), leaseKey, []byte(`{"holder":"host-b:/data","pid":42}`))
	require.NoError(t, err)
	select {
	case <-la.Context().Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the lost lease was not noticed")
	}
	require.ErrorIs(t, la.Err(), ErrLeaseLost)
	require.ErrorContains(t, la.Err(), "host-b:/data")
	require.Equal(t, 0.0, gathered(t, reg, "reflex_processing_lease_held")[""])
	require.Equal(t, 1.0, gathered(t, reg, "reflex_processing_lease_lost_total")[""])

	// Releasing a lost lease leaves the other's key alone.
	require.NoError(t, la.Release(ctxT(t)))
	e, err := la.kv.Get(ctxT(t), leaseKey)
	require.NoError(t, err)
	require.Contains(t, string(e.Value()), "host-b")
}

func TestLeaseBucketName(t *testing.T) {
	require.Equal(t, "REFLEX_LEASE_REFLEX_INTAKE", LeaseBucket("REFLEX_INTAKE"))
	require.Equal(t, "REFLEX_LEASE_a_b-c", LeaseBucket("a.b-c"))
}

func TestConnectErrorNamesTheURL(t *testing.T) {
	_, err := Open(ctxT(t), Options{URL: "nats://user:pa55word@127.0.0.1:1", ConnectTimeout: time.Second})
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "nats://<redacted>@127.0.0.1:1")
	require.NotContains(t, err.Error(), "pa55word")
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":          "nats://127.0.0.1:4222",
		"nats://token@host:4222":         "nats://<redacted>@host:4222",
		"nats://u:p@a:1, nats://u:p@b:2": "nats://<redacted>@a:1,nats://<redacted>@b:2",
		"tls://user:p@ss@host":           "tls://<redacted>@host",
		"u:p@host:4222":                  "<redacted>@host:4222",
	} {
		require.Equal(t, want, RedactURL(in), in)
	}
}
