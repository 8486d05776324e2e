package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
)

// newSubmitter returns a submitter on f; call it inside a synctest bubble
// and Close it before the bubble ends.
func newSubmitter(t *testing.T, f *fakeBus, o Options, so SubmitterOptions) (*Intake, *Submitter) {
	t.Helper()
	o.Bus = f
	if o.IDs == nil {
		o.IDs = event.NewIDGen(1, nil)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	in, err := New(o)
	require.NoError(t, err)
	s, err := in.NewSubmitter(so)
	require.NoError(t, err)
	return in, s
}

func closeSubmitter(t *testing.T, s *Submitter) {
	t.Helper()
	require.NoError(t, s.Close(context.Background()))
}

// decodeCall decodes the envelope of a publish.
func decodeCall(t *testing.T, c call) Envelope {
	t.Helper()
	var e Envelope
	require.NoError(t, json.Unmarshal(c.data, &e))
	return e
}

func TestSubmitterLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		in, s := newSubmitter(t, f, Options{}, SubmitterOptions{Linger: 5 * time.Millisecond})
		defer closeSubmitter(t, s)

		var got []int64
		done := make(chan struct{})
		require.NoError(t, s.Enqueue(context.Background(), event.SourceSyslog, []Item{item(event.Info, "web-01")}, func(ids []int64, err error) {
			require.NoError(t, err)
			got = ids
			close(done)
		}))
		time.Sleep(5*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		require.Empty(t, f.published(), "an envelope waits for company until the linger has passed")

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		calls := f.published()
		require.Len(t, calls, 1)
		<-done
		require.Len(t, got, 1)
		env := decodeCall(t, calls[0])
		require.Equal(t, got[0], env.BaseID)
		require.Equal(t, fmt.Sprint(env.BaseID), calls[0].msgID, "the message id is the base id")
		require.Equal(t, event.SourceSyslog, env.SourceType)
		require.Equal(t, event.PartitionOf("web-01", event.DefaultPartitions), calls[0].partition)
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("lo", reasonLinger)), 0)
		require.InDelta(t, 1, counter(t, in.met.acceptedTotal.WithLabelValues("syslog", "lo")), 0)
		require.InDelta(t, 1, counter(t, in.met.submitted.WithLabelValues("syslog", "blocking")), 0)
		require.InDelta(t, 0, counter(t, in.met.pending.WithLabelValues("blocking")), 0)
	})
}

func TestSubmitterCoalescesCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		in, s := newSubmitter(t, f, Options{}, SubmitterOptions{})
		defer closeSubmitter(t, s)

		const callers = 50
		ids := make([][]int64, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				var err error
				ids[i], err = s.Submit(context.Background(), event.SourceSyslog, []Item{item(event.Info, "web-01")})
				require.NoError(t, err)
			})
		}
		wg.Wait()
		calls := f.published()
		require.Len(t, calls, 1, "fifty callers, one envelope, one write")
		env := decodeCall(t, calls[0])
		require.Len(t, env.Events, callers)
		seen := map[int64]bool{}
		for _, got := range ids {
			require.Len(t, got, 1)
			require.False(t, seen[got[0]])
			seen[got[0]] = true
			require.GreaterOrEqual(t, got[0], env.BaseID)
			require.Less(t, got[0], env.BaseID+callers)
		}
		require.InDelta(t, callers, counter(t, in.met.acceptedTotal.WithLabelValues("syslog", "lo")), 0)
	})
}

func TestSubmitterCutsFullEnvelopesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		in, s := newSubmitter(t, f, Options{MaxEventsPerMessage: 3, MaxMessageBytes: 1000}, SubmitterOptions{Linger: time.Hour})
		defer closeSubmitter(t, s)
		ctx := context.Background()

		for range 3 {
			require.NoError(t, s.Enqueue(ctx, event.SourceSyslog, []Item{item(event.Info, "web-01")}, nil))
		}
		synctest.Wait()
		require.Len(t, f.published(), 1, "a full envelope does not wait for the linger")
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("lo", reasonEvents)), 0)

		big := Item{SourceSystem: "s", Severity: event.Info, Host: "web-01", Data: json.RawMessage(fmt.Sprintf(`"%0600d"`, 0))}
		require.NoError(t, s.Enqueue(ctx, event.SourceSyslog, []Item{big}, nil))
		require.NoError(t, s.Enqueue(ctx, event.SourceSyslog, []Item{big}, nil))
		synctest.Wait()
		calls := f.published()
		require.Len(t, calls, 3, "the second item would exceed MaxMessageBytes: the first is cut; the second once the publisher is free")
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("lo", reasonBytes)), 0)
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("lo", reasonBusy)), 0)
		require.Len(t, decodeCall(t, calls[1]).Events, 1)
		require.Len(t, decodeCall(t, calls[2]).Events, 1)
	})
}

func TestSubmitterSplitsByLaneAndPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		_, s := newSubmitter(t, f, Options{}, SubmitterOptions{})
		defer closeSubmitter(t, s)
		// web-01 and web-12 share partition 7 of 16; web-02 is in 10.
		items := []Item{item(event.Info, "web-01"), item(event.Info, "web-02"), item(event.Critical, "web-12"), item(event.Info, "web-12")}
		ids, err := s.Submit(context.Background(), event.SourceSyslog, items)
		require.NoError(t, err)
		require.Len(t, ids, 4)
		byMsg := map[string]call{}
		for _, c := range f.published() {
			byMsg[c.msgID] = c
		}
		require.Len(t, byMsg, 3)
		for i, it := range items {
			var found bool
			for _, c := range byMsg {
				env := decodeCall(t, c)
				if ids[i] < env.BaseID || ids[i] >= env.BaseID+int64(len(env.Events)) {
					continue
				}
				found = true
				require.Equal(t, LaneOf(it.Severity), c.lane)
				require.Equal(t, event.PartitionOf(it.Host, event.DefaultPartitions), c.partition)
				require.JSONEq(t, string(it.Data), string(env.Events[ids[i]-env.BaseID].Data))
			}
			require.True(t, found, "item %d", i)
		}
	})
}

// TestSubmitterGroupCommit: events that arrive while a lane's publisher
// is busy wait for it, past their linger, and go out together when it is
// free.
func TestSubmitterGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{block: make(chan struct{}, 1)}
		in, s := newSubmitter(t, f, Options{}, SubmitterOptions{})
		defer closeSubmitter(t, s)
		ctx := context.Background()
		require.NoError(t, s.Enqueue(ctx, event.SourceSyslog, []Item{item(event.Info, "web-01")}, nil))
		time.Sleep(time.Second) // the first envelope is cut and its publish hangs
		synctest.Wait()
		for range 10 {
			require.NoError(t, s.Enqueue(ctx, event.SourceSyslog, []Item{item(event.Info, "web-01")}, nil))
			time.Sleep(100 * time.Millisecond) // each past its linger
		}
		synctest.Wait()
		require.Empty(t, f.published(), "the first write has not finished")
		f.block <- struct{}{} // the first write finishes
		f.block <- struct{}{} // and the second
		synctest.Wait()
		calls := f.published()
		require.Len(t, calls, 2)
		require.Len(t, decodeCall(t, calls[1]).Events, 10, "one envelope for what came during the first write")
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("lo", reasonBusy)), 0)
	})
}

func TestSubmitterKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		_, s := newSubmitter(t, f, Options{MaxEventsPerMessage: 1}, SubmitterOptions{})
		defer closeSubmitter(t, s)
		var last []int64
		for i := range 20 {
			it := item(event.Info, "web-01")
			it.Data = json.RawMessage(fmt.Sprintf(`{"host":"web-01","message":"m","n":%d}`, i))
			require.NoError(t, s.Enqueue(context.Background(), event.SourceSyslog, []Item{it}, func(ids []int64, err error) {
				require.NoError(t, err)
				last = ids
			}))
		}
		synctest.Wait()
		calls := f.published()
		require.Len(t, calls, 20)
		for i, c := range calls {
			var d struct{ N int }
			require.NoError(t, json.Unmarshal(decodeCall(t, c).Events[0].Data, &d))
			require.Equal(t, i, d.N, "a host's events reach the log in the order submitted")
		}
		require.NotNil(t, last)
	})
}

func TestSubmitterBlockingWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{block: make(chan struct{})}
		_, s := newSubmitter(t, f, Options{}, SubmitterOptions{MaxPendingEvents: 2})
		ctx := context.Background()
		require.NoError(t, s.Enqueue(ctx, event.SourceSyslog, []Item{item(event.Info, "a"), item(event.Info, "b")}, nil))

		third := make(chan error, 1)
		go func() {
			_, err := s.Submit(ctx, event.SourceSyslog, []Item{item(event.Info, "c")})
			third <- err
		}()
		// A caller whose context ends while it waits gives up.
		cctx, cancel := context.WithCancel(ctx)
		fourth := make(chan error, 1)
		go func() {
			fourth <- s.Enqueue(cctx, event.SourceSyslog, []Item{item(event.Info, "d")}, nil)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case err := <-third:
			t.Fatalf("the third submission returned while the buffer was full: %v", err)
		default:
		}
		cancel()
		synctest.Wait()
		require.ErrorIs(t, <-fourth, context.Canceled)

		close(f.block) // the log takes the first two; room for the third
		require.NoError(t, <-third)
		closeSubmitter(t, s)
	})
}

func TestSubmitterDroppingDropsWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{block: make(chan struct{})}
		in, s := newSubmitter(t, f, Options{}, SubmitterOptions{Mode: Dropping, MaxPendingEvents: 2})
		ctx := context.Background()
		require.NoError(t, s.Enqueue(ctx, event.SourceSNMP, []Item{item(event.Info, "a")}, nil))
		require.NoError(t, s.Enqueue(ctx, event.SourceSNMP, []Item{item(event.Info, "b")}, nil))
		require.ErrorIs(t, s.Enqueue(ctx, event.SourceSNMP, []Item{item(event.Info, "c")}, nil), ErrDropped)
		_, err := s.Submit(ctx, event.SourceSNMP, []Item{item(event.Info, "d")})
		require.ErrorIs(t, err, ErrDropped)
		require.InDelta(t, 2, counter(t, in.met.dropped.WithLabelValues("snmp")), 0)
		require.InDelta(t, 2, counter(t, in.met.submitted.WithLabelValues("snmp", "dropping")), 0)
		require.InDelta(t, 2, counter(t, in.met.pending.WithLabelValues("dropping")), 0)

		close(f.block)
		time.Sleep(time.Second)
		synctest.Wait()
		require.NoError(t, s.Enqueue(ctx, event.SourceSNMP, []Item{item(event.Info, "e")}, nil), "room again once stored")
		closeSubmitter(t, s)
		require.Len(t, f.published(), 3)
	})
}

func TestSubmitterPublishFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{answer: func(int, call) error { return fmt.Errorf("bus: %w", bus.ErrFull) }}
		in, s := newSubmitter(t, f, Options{}, SubmitterOptions{})
		defer closeSubmitter(t, s)
		errs := make(chan error, 3)
		for range 3 {
			go func() {
				ids, err := s.Submit(context.Background(), event.SourceSyslog, []Item{item(event.Info, "web-01")})
				require.Nil(t, ids)
				errs <- err
			}()
		}
		for range 3 {
			require.ErrorIs(t, <-errs, bus.ErrFull, "every caller of the envelope hears of it")
		}
		require.Len(t, f.published(), 1, "a full log is not retried")
		require.InDelta(t, 0, counter(t, in.met.acceptedTotal.WithLabelValues("syslog", "lo")), 0)
		require.InDelta(t, 0, counter(t, in.met.pending.WithLabelValues("blocking")), 0)
	})
}

func TestSubmitterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		in, s := newSubmitter(t, f, Options{}, SubmitterOptions{Linger: time.Hour})
		stored := make(chan []int64, 1)
		require.NoError(t, s.Enqueue(context.Background(), event.SourceSyslog, []Item{item(event.High, "a")}, func(ids []int64, err error) {
			require.NoError(t, err)
			stored <- ids
		}))
		require.NoError(t, s.Close(context.Background()))
		require.Len(t, <-stored, 1, "Close publishes what the submitter holds")
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("hi", reasonClose)), 0)
		require.ErrorIs(t, s.Enqueue(context.Background(), event.SourceSyslog, []Item{item(event.Info, "b")}, nil), ErrClosed)
		require.NoError(t, s.Close(context.Background()), "idempotent")
	})
}

func TestSubmitterCloseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{block: make(chan struct{})}
		_, s := newSubmitter(t, f, Options{}, SubmitterOptions{})
		errs := make(chan error, 1)
		require.NoError(t, s.Enqueue(context.Background(), event.SourceSyslog, []Item{item(event.Info, "a")}, func(_ []int64, err error) { errs <- err }))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.ErrorIs(t, s.Close(ctx), context.DeadlineExceeded)
		require.ErrorIs(t, <-errs, context.Canceled, "the caller is told its events were not stored")
	})
}

func TestSubmitterRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		_, s := newSubmitter(t, f, Options{}, SubmitterOptions{MaxPendingEvents: 2})
		defer closeSubmitter(t, s)
		ctx := context.Background()
		err := s.Enqueue(ctx, event.SourceSyslog, []Item{{Data: json.RawMessage(`{`)}}, nil)
		require.ErrorIs(t, err, ErrInvalidItem)
		err = s.Enqueue(ctx, event.SourceSyslog, []Item{item(event.Info, "a"), item(event.Info, "b"), item(event.Info, "c")}, nil)
		require.ErrorIs(t, err, ErrTooLarge)
		require.NoError(t, s.Enqueue(ctx, event.SourceSyslog, nil, nil))
		ids, err := s.Submit(ctx, event.SourceSyslog, nil)
		require.NoError(t, err)
		require.Empty(t, ids)
		require.Empty(t, f.published())
	})
	_, err := (&Intake{}).NewSubmitter(SubmitterOptions{Mode: Mode(7)})
	require.Error(t, err)
}

// TestSubmitterOnTheLog submits from many callers to a real intake log
// and reads every event back, in fewer envelopes than events.
func TestSubmitterOnTheLog(t *testing.T) {
	b := openBus(t, bus.Options{})
	reg := prometheus.NewRegistry()
	in, err := New(Options{Bus: b, IDs: event.NewIDGen(2, nil), Registerer: reg})
	require.NoError(t, err)
	s, err := in.NewSubmitter(SubmitterOptions{})
	require.NoError(t, err)
	const callers, each = 16, 25
	var wg sync.WaitGroup
	ids := make(chan int64, callers*each)
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				got, err := s.Submit(context.Background(), event.SourceSyslog, []Item{item(event.Info, fmt.Sprintf("host-%d-%d", c, i%3))})
				require.NoError(t, err)
				ids <- got[0]
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.Close(context.Background()))
	close(ids)

	envelopes := 0
	for _, r := range []string{reasonLinger, reasonEvents, reasonBytes, reasonBusy, reasonClose} {
		envelopes += int(counter(t, in.met.envelopes.WithLabelValues("lo", r)))
	}
	envs, _ := readEnvelopes(t, b, bus.LaneLo, envelopes)
	stored := map[int64]bool{}
	for _, e := range envs {
		for _, r := range e.Raw() {
			stored[r.ID] = true
		}
	}
	for id := range ids {
		require.True(t, stored[id], "id %d acknowledged and in the log", id)
	}
	require.Len(t, stored, callers*each)
	require.Less(t, len(envs), callers*each, "envelopes are shared by callers")
	t.Logf("%d events from %d callers in %d envelopes", callers*each, callers, len(envs))
}

func TestCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBus{}
		in, err := New(Options{Bus: f, IDs: event.NewIDGen(1, nil), Registerer: prometheus.NewRegistry()})
		require.NoError(t, err)
		s, err := in.Coalesce(SubmitterOptions{MaxPendingEvents: 3})
		require.NoError(t, err)
		defer closeSubmitter(t, s)
		ctx := context.Background()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				ids, err := in.Submit(ctx, event.SourceWebhook, []Item{item(event.Info, "web-01")})
				require.NoError(t, err)
				require.Len(t, ids, 1)
			})
		}
		wg.Wait()
		require.Len(t, f.published(), 1, "two requests, one envelope")
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("lo", reasonLinger)), 0)

		big := []Item{item(event.Info, "web-01"), item(event.Info, "web-01"), item(event.Info, "web-01"), item(event.Info, "web-01")}
		ids, err := in.Submit(ctx, event.SourceWebhook, big)
		require.NoError(t, err, "a request larger than the submitter's buffer is published on its own")
		require.Len(t, ids, 4)
		require.InDelta(t, 1, counter(t, in.met.envelopes.WithLabelValues("lo", reasonRequest)), 0)
	})
}
