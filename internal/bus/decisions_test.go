package bus

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// decisionsBus is a bus of one mode with its decisions stream, and what a
// second process needs to dial it.
type decisionsBus struct {
	bus        *Bus
	decisions  *Decisions
	url, token string
}

// openDecisions opens a bus of mode m and the decisions stream on it with
// do's limits. The embedded server also listens, so that DialDecisions can
// reach it; on the external server the stream and its subject are the
// test's own, deleted at cleanup.
func openDecisions(t *testing.T, m mode, do DecisionsOptions) decisionsBus {
	t.Helper()
	o := m.opts(t)
	if o.URL == "" {
		o.ListenAddr, o.Token = "127.0.0.1:0", "decisions-test-token-0123456789"
	} else {
		do.Stream = testutil.RandomName("REFLEX_TD_")
		do.Subject = testutil.RandomName("reflex.td.")
		t.Cleanup(func() { deleteStream(t, o.URL, do.Stream) })
	}
	b := openBus(t, o)
	d, err := b.OpenDecisions(ctxT(t), do)
	require.NoError(t, err)
	require.NoError(t, d.Close(), "the bus owns the connection")
	return decisionsBus{bus: b, decisions: d, url: b.ClientURL(), token: o.Token}
}

// withRequests opens the decisions stream of mode m, its consumer
// "autonomous", and publishes the requests ids.
func withRequests(t *testing.T, m mode, ids ...string) (*Decisions, *DecisionsConsumer) {
	t.Helper()
	d := openDecisions(t, m, DecisionsOptions{}).decisions
	c := decisionsConsumer(t, d, "autonomous")
	_, err := d.Publish(ctxT(t), decisionMsgs(ids...))
	require.NoError(t, err)
	return d, c
}

func decisionsConsumer(t *testing.T, d *Decisions, name string) *DecisionsConsumer {
	t.Helper()
	c, err := d.Consumer(ctxT(t), DecisionsConsumerOptions{Name: name, AckWait: 30 * time.Second})
	require.NoError(t, err)
	return c
}

// fetchDecisions fetches from c until it has n requests, failing after 20
// seconds.
func fetchDecisions(t *testing.T, c *DecisionsConsumer, n int) []Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []Msg
	for len(out) < n {
		msgs, err := c.Fetch(ctx, n-len(out), time.Second)
		require.NoError(t, err, "after %d of %d requests", len(out), n)
		out = append(out, msgs...)
	}
	return out
}

func decisionMsgs(ids ...string) []DecisionMessage {
	out := make([]DecisionMessage, len(ids))
	for i, id := range ids {
		out[i] = DecisionMessage{MsgID: id, Data: []byte(`{"request":"` + id + `"}`)}
	}
	return out
}

// requireStored waits until the stream holds want requests: a consumer's
// acknowledgement reaches the stream shortly after Ack returns.
func requireStored(t *testing.T, d *Decisions, want uint64) {
	t.Helper()
	var got uint64
	var err error
	require.Eventually(t, func() bool {
		var info *jetstream.StreamInfo
		info, err = d.Info(context.Background())
		if err == nil {
			got = info.State.Msgs
		}
		return err == nil && got == want
	}, 10*time.Second, 5*time.Millisecond, "stream holds %d requests (err %v), want %d", got, err, want)
}

func TestDecisionsWaitForTheirConsumer(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			d := openDecisions(t, m, DecisionsOptions{}).decisions
			ctx := ctxT(t)

			// Published while nobody consumes: the requests wait.
			dups, err := d.Publish(ctx, decisionMsgs("r1", "r2", "r3"))
			require.NoError(t, err)
			require.Zero(t, dups)
			// The same firing published again: a duplicate, not stored.
			dups, err = d.Publish(ctx, decisionMsgs("r2", "r4"))
			require.NoError(t, err)
			require.Equal(t, 1, dups)
			requireStored(t, d, 4)

			c := decisionsConsumer(t, d, "autonomous")
			got := fetchDecisions(t, c, 4)
			for i, want := range []string{"r1", "r2", "r3", "r4"} {
				require.Equal(t, want, got[i].MsgID)
				require.JSONEq(t, `{"request":"`+want+`"}`, string(got[i].Data))
				require.EqualValues(t, 1, got[i].NumDelivered)
				require.NoError(t, got[i].Ack())
			}
			// Acknowledged requests leave the work queue.
			requireStored(t, d, 0)
			require.Eventually(t, func() bool {
				n, err := c.Pending(ctx)
				return err == nil && n == 0
			}, 10*time.Second, 5*time.Millisecond)
			// Within the duplicate window a taken request is not taken again.
			dups, err = d.Publish(ctx, decisionMsgs("r1"))
			require.NoError(t, err)
			require.Equal(t, 1, dups)
			msgs, err := c.Fetch(ctx, 10, 200*time.Millisecond)
			require.NoError(t, err)
			require.Empty(t, msgs, "every request is delivered once")

			// The work queue admits no second consumer under another name.
			_, err = d.Consumer(ctx, DecisionsConsumerOptions{Name: "another"})
			require.Error(t, err)
			// The same name binds the same consumer (another instance).
			again := decisionsConsumer(t, d, "autonomous")
			n, err := again.Pending(ctx)
			require.NoError(t, err)
			require.Zero(t, n)
		})
	}
}

func TestDecisionsNakRedelivers(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			d, c := withRequests(t, m, "nak-me")
			first := fetchDecisions(t, c, 1)
			require.Equal(t, "nak-me", first[0].MsgID)
			require.NoError(t, first[0].Nak(0))
			again := fetchDecisions(t, c, 1)
			require.Equal(t, "nak-me", again[0].MsgID)
			require.EqualValues(t, 2, again[0].NumDelivered, "a redelivery")
			requireStored(t, d, 1)
			require.NoError(t, again[0].Ack())
			requireStored(t, d, 0)
		})
	}
}

func TestDialDecisions(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			db := openDecisions(t, m, DecisionsOptions{MaxBytes: 8 << 20, MaxAge: time.Hour})
			ctx := ctxT(t)

			_, err := DialDecisions(ctx, DialDecisionsOptions{URL: db.url, Token: db.token, Stream: testutil.RandomName("REFLEX_TD_ABSENT_")})
			require.ErrorIs(t, err, ErrNoDecisionsStream)
			// A stream of another kind is not taken for it.
			_, err = DialDecisions(ctx, DialDecisionsOptions{URL: db.url, Token: db.token, Stream: db.bus.Stream()})
			require.ErrorContains(t, err, "not a decisions stream")

			// A second process binds the stream by name and learns its
			// subject and limits; it publishes, this one consumes.
			dd, err := DialDecisions(ctx, DialDecisionsOptions{URL: db.url, Token: db.token, Stream: db.decisions.Stream()})
			require.NoError(t, err)
			require.Equal(t, db.decisions.Stream(), dd.Stream())
			require.Equal(t, db.decisions.Subject(), dd.Subject())
			require.Equal(t, int64(8<<20), dd.opts.MaxBytes)
			require.Equal(t, time.Hour, dd.opts.MaxAge)
			dups, err := dd.Publish(ctx, decisionMsgs("remote-1", "remote-2"))
			require.NoError(t, err)
			require.Zero(t, dups)
			got := fetchDecisions(t, decisionsConsumer(t, db.decisions, "autonomous"), 2)
			require.Equal(t, "remote-1", got[0].MsgID)
			require.Equal(t, "remote-2", got[1].MsgID)
			for _, msg := range got {
				require.NoError(t, msg.Ack())
			}
			requireStored(t, dd, 0)

			require.NoError(t, dd.Close())
			_, err = dd.Info(ctx)
			require.ErrorIs(t, err, ErrUnavailable, "Close closed the dialed connection")
			_, err = db.decisions.Info(ctx)
			require.NoError(t, err, "not the bus's")
		})
	}
}

// A full stream drops its oldest requests: publishing never blocks the
// rules engine when nobody consumes.
func TestDecisionsFullDropsOldest(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const maxBytes = 16 << 10
			d := openDecisions(t, m, DecisionsOptions{MaxBytes: maxBytes}).decisions
			ctx := ctxT(t)
			data := make([]byte, 1024)
			const n = 100
			for i := range n {
				dups, err := d.Publish(ctx, []DecisionMessage{{MsgID: strconv.Itoa(i), Data: data}})
				require.NoError(t, err, "request %d", i)
				require.Zero(t, dups)
			}
			info, err := d.Info(ctx)
			require.NoError(t, err)
			require.Less(t, info.State.Msgs, uint64(n/2), "a 16 KiB stream holds fewer than 50 requests of 1 KiB")
			require.Positive(t, info.State.Msgs)
			require.LessOrEqual(t, info.State.Bytes, uint64(maxBytes))
			require.Equal(t, uint64(n), info.State.LastSeq, "every publish was stored")
			require.Greater(t, info.State.FirstSeq, uint64(1), "the oldest were dropped")

			// The consumer gets the newest ones.
			got := fetchDecisions(t, decisionsConsumer(t, d, "autonomous"), int(info.State.Msgs))
			require.Equal(t, strconv.Itoa(int(info.State.FirstSeq)-1), got[0].MsgID)
			require.Equal(t, strconv.Itoa(n-1), got[len(got)-1].MsgID)
		})
	}
}

func TestDecisionsConsumerRecreatedAfterDeletion(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			d, c := withRequests(t, m, "kept")
			// Someone deletes the durable consumer: the request stays in
			// the work queue, and Fetch creates the consumer again.
			require.NoError(t, d.stream.DeleteConsumer(ctxT(t), "autonomous"))
			got := fetchDecisions(t, c, 1)
			require.Equal(t, "kept", got[0].MsgID)
			require.NoError(t, got[0].Ack())
			requireStored(t, d, 0)
		})
	}
}

func TestDecisionsStreamConfig(t *testing.T) {
	d := openDecisions(t, modes[0], DecisionsOptions{}).decisions
	ctx := ctxT(t)
	require.Equal(t, DefaultDecisionsStream, d.Stream())
	require.Equal(t, DefaultDecisionsSubject, d.Subject())
	info, err := d.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{DefaultDecisionsSubject}, info.Config.Subjects)
	require.Equal(t, jetstream.WorkQueuePolicy, info.Config.Retention)
	require.Equal(t, jetstream.FileStorage, info.Config.Storage)
	require.Equal(t, jetstream.DiscardOld, info.Config.Discard)
	require.Equal(t, DefaultDecisionsMaxBytes, info.Config.MaxBytes)
	require.Equal(t, DefaultDecisionsMaxAge, info.Config.MaxAge)
	require.Equal(t, DefaultDuplicates, info.Config.Duplicates)
	require.Equal(t, 1, info.Config.Replicas)
	// Flushed before the publish is acknowledged, and the embedded server
	// fsyncs every write (TestEmbeddedSyncsEveryWrite).
	require.Equal(t, jetstream.DefaultPersistMode, info.Config.PersistMode)
}

func TestDecisionsMaxAge(t *testing.T) {
	db := openDecisions(t, modes[0], DecisionsOptions{MaxAge: time.Minute})
	ctx := ctxT(t)
	_, err := db.decisions.Publish(ctx, decisionMsgs("kept"))
	require.NoError(t, err)

	// Reopened with other limits: the stream is updated and keeps its
	// requests; a MaxAge below 2 minutes shortens the duplicate window.
	d, err := db.bus.OpenDecisions(ctx, DecisionsOptions{MaxBytes: 1 << 20, MaxAge: time.Second})
	require.NoError(t, err)
	info, err := d.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Second, info.Config.MaxAge)
	require.Equal(t, time.Second, info.Config.Duplicates)
	require.Equal(t, int64(1<<20), info.Config.MaxBytes)
	// Requests older than MaxAge are dropped, the one before included.
	requireStored(t, d, 0)
}

func TestDecisionsRefusals(t *testing.T) {
	db := openDecisions(t, modes[0], DecisionsOptions{})
	ctx := ctxT(t)
	dups, err := db.decisions.Publish(ctx, []DecisionMessage{{MsgID: "ok", Data: []byte("{}")}, {Data: []byte("{}")}})
	require.Zero(t, dups)
	var be *BatchError
	require.ErrorAs(t, err, &be)
	require.NoError(t, be.Errs[0])
	require.ErrorContains(t, be.Errs[1], "no MsgID")
	requireStored(t, db.decisions, 1)

	_, err = db.bus.OpenDecisions(ctx, DecisionsOptions{Stream: "REFLEX_D2", Subject: "reflex.decisions.*"})
	require.ErrorContains(t, err, "decisions subject")
	for _, name := range []string{"", "a.b", "a b", "a*"} {
		_, err = db.decisions.Consumer(ctx, DecisionsConsumerOptions{Name: name})
		require.ErrorContains(t, err, "decisions consumer name", "name %q", name)
	}
}
