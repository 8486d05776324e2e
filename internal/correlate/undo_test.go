package correlate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

// A batch that is not stored is undone (pipeline.Batch.Abort): processing
// it again, or processing other events instead, gives what processing
// them once gives.
func TestAbortUndoesBatch(t *testing.T) {
	batch1 := func() []*event.Event {
		return []*event.Event{ev(1, "db-01", event.Critical, 0), ev(2, "web-01", event.Low, 0)}
	}
	batch2 := func() []*event.Event {
		return []*event.Event{
			ev(3, "web-01", event.High, time.Second, "db-01"),
			ev(4, "app-01", event.Medium, time.Second, "db-01"),
			ev(5, "cache-01", event.Critical, time.Second),
			ev(6, "db-01", event.Critical, time.Second),
		}
	}
	batch3 := func() []*event.Event {
		return []*event.Event{ev(7, "web-01", event.Low, 2*time.Second, "db-01"), ev(8, "cache-01", event.Info, 2*time.Second)}
	}

	once, err := New(Options{})
	require.NoError(t, err)
	run(t, once, 0, batch1()...)
	want2 := run(t, once, time.Second, batch2()...)
	want3 := run(t, once, 2*time.Second, batch3()...)

	c, err := New(Options{})
	require.NoError(t, err)
	run(t, c, 0, batch1()...)
	run(t, c, time.Second, batch2()...).Abort()
	groups, crits := c.Len()
	require.Equal(t, 2, groups, "the groups batch2 opened are gone")
	require.Equal(t, 1, crits, "so are the critical events it opened")
	run(t, c, time.Second, batch3()...).Abort()
	got2 := run(t, c, time.Second, batch2()...)
	got3 := run(t, c, 2*time.Second, batch3()...)
	require.Equal(t, want2.Correlations, got2.Correlations)
	require.Equal(t, want3.Correlations, got3.Correlations)
	for i, e := range got3.Events {
		require.Equal(t, want3.Events[i].CorrelationID, e.CorrelationID)
		require.Equal(t, want3.Events[i].ParentEventID, e.ParentEventID)
	}
}
