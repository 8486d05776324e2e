package processed

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// published returns n messages of the publisher, each of one event.
func published(t *testing.T, n int) []struct {
	id   string
	data []byte
} {
	t.Helper()
	sink := newSink(1)
	p, err := NewPublisher(PublisherOptions{Sink: sink, Store: &fakeReader{}})
	require.NoError(t, err)
	for i := range n {
		id := int64(i + 1)
		require.NoError(t, p.Stored(context.Background(), &store.Batch{Raw: []event.Raw{raw(id, id)}, New: []event.Event{ev(id, fmt.Sprintf("h%d", i))}}))
	}
	out := make([]struct {
		id   string
		data []byte
	}, len(sink.msgs))
	for i, m := range sink.msgs {
		out[i].id, out[i].data = m.MsgID, m.Data
	}
	return out
}

func TestSharedDecoder(t *testing.T) {
	msgs := published(t, 3)
	d, err := NewSharedDecoder(1<<20, nil)
	require.NoError(t, err)

	first, err := d.Decode(msgs[0].id, msgs[0].data)
	require.NoError(t, err)
	_, want, err := Decode(msgs[0].data)
	require.NoError(t, err)
	require.Equal(t, want, first)
	again, err := d.Decode(msgs[0].id, msgs[0].data)
	require.NoError(t, err)
	require.Same(t, first[0].Event, again[0].Event, "the second consumer gets the records the first decoded")
	require.Equal(t, 1.0, testutil.ToFloat64(d.hits))
	require.Equal(t, 1.0, testutil.ToFloat64(d.misses))

	// Other bytes under the same id are decoded, not taken for the first.
	other, err := d.Decode(msgs[0].id, msgs[1].data)
	require.NoError(t, err)
	require.Equal(t, int64(2), other[0].RawEventID)

	// A corrupt message is an error, and not kept.
	_, err = d.Decode("bad", []byte(`{"v":1,"records":[{"kind":"x"}]}`))
	require.ErrorIs(t, err, ErrCorrupt)
	require.NotContains(t, d.at, "bad")
}

func TestSharedDecoderBound(t *testing.T) {
	msgs := published(t, 50)
	d, err := NewSharedDecoder(3*len(msgs[0].data), nil)
	require.NoError(t, err)
	for _, m := range msgs {
		_, err := d.Decode(m.id, m.data)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, d.bytes, d.max)
	require.LessOrEqual(t, d.ll.Len(), 3)
	require.Len(t, d.at, d.ll.Len())
	_, err = d.Decode(msgs[len(msgs)-1].id, msgs[len(msgs)-1].data)
	require.NoError(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(d.hits), "the latest is kept")
	_, err = d.Decode(msgs[0].id, msgs[0].data)
	require.NoError(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(d.hits), "the oldest is not: decoded again")
}
