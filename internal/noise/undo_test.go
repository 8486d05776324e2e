package noise

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

func process(t *testing.T, s pipeline.Stage, now time.Duration, events ...*event.Event) *pipeline.Batch {
	t.Helper()
	b := &pipeline.Batch{Now: t0.Add(now), Events: events}
	require.NoError(t, s.Process(context.Background(), b))
	return b
}

func TestDedupAbortUndoes(t *testing.T) {
	d, err := NewDedup(Options{})
	require.NoError(t, err)
	process(t, d, 0, ev(1, "h", "disk full", 0))

	// A repeat and a new event, not stored: undone.
	b := process(t, d, time.Second, ev(2, "h", "disk full", time.Second), ev(3, "h", "cpu high", time.Second))
	require.Equal(t, 2, b.Repeats[0].OccurrenceCount)
	b.Abort()
	require.Equal(t, 1, d.Len(), "the kept event the batch added is forgotten")

	// The same events again count once; a later repeat goes on from there.
	b = process(t, d, 2*time.Second, ev(2, "h", "disk full", time.Second), ev(3, "h", "cpu high", time.Second))
	require.Equal(t, 2, b.Repeats[0].OccurrenceCount)
	require.Equal(t, t0.Add(time.Second), b.Repeats[0].LastSeenAt)
	require.Equal(t, []int64{3}, ids(b.Events))
	b = process(t, d, 3*time.Second, ev(4, "h", "disk full", 3*time.Second), ev(5, "h", "cpu high", 3*time.Second))
	require.Equal(t, 3, b.Repeats[0].OccurrenceCount)
	require.Equal(t, []pipeline.Outcome{{ProcessedEventID: 1}, {ProcessedEventID: 3}}, []pipeline.Outcome{b.Outcomes[4], b.Outcomes[5]})
}

func TestDedupAbortRestoresLastSeen(t *testing.T) {
	d, err := NewDedup(Options{})
	require.NoError(t, err)
	process(t, d, 0, ev(1, "h", "disk full", 0))
	process(t, d, time.Second, ev(2, "h", "disk full", time.Second))
	process(t, d, 3*time.Second, ev(3, "h", "disk full", 3*time.Second)).Abort()
	b := process(t, d, 4*time.Second, ev(4, "h", "disk full", 2*time.Second))
	require.Equal(t, 3, b.Repeats[0].OccurrenceCount)
	require.Equal(t, t0.Add(2*time.Second), b.Repeats[0].LastSeenAt, "the aborted repeat's last_seen_at is gone")
}

func TestRateLimiterAbortGivesTokensBack(t *testing.T) {
	rl, err := NewRateLimiter(Options{Rate: 0.001, Burst: 2}, nil)
	require.NoError(t, err)
	evs := func(from int64) []*event.Event {
		return []*event.Event{ev(from, "h", "a"+strconv.FormatInt(from, 10), 0), ev(from+1, "h", "b"+strconv.FormatInt(from, 10), 0)}
	}
	process(t, rl, 0, evs(1)...).Abort()
	b := process(t, rl, 0, evs(1)...)
	require.Len(t, b.Events, 2, "the tokens came back")
	b = process(t, rl, 0, evs(3)...)
	require.Empty(t, b.Events, "the bucket is empty")
	b.Abort() // nothing was taken: nothing is given back
	require.Empty(t, process(t, rl, 0, evs(5)...).Events)
}

// BenchmarkDedupProcess measures deduplication of batches of 256 events
// of 1,000 fingerprints (three in four are repeats), the undo log included.
func BenchmarkDedupProcess(b *testing.B) {
	d, err := NewDedup(Options{})
	require.NoError(b, err)
	evs := make([]*event.Event, 256)
	var id int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := range evs {
			id++
			evs[i] = ev(id, "h"+strconv.Itoa(int(id%250)), "t"+strconv.Itoa(int(id%4)), 0)
		}
		batch := &pipeline.Batch{Now: t0, Events: evs}
		b.StartTimer()
		if err := d.Process(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
