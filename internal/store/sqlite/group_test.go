package sqlite

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store/sqlstore"
)

func req(name string, urgent bool, n int) *writeReq {
	r := &writeReq{rows: &sqlstore.Encoded{Raw: make([][]any, n-1)}, urgent: urgent, done: make(chan error, 1)}
	r.rows.Processed = [][]any{{name}}
	return r
}

func names(g []*writeReq) []string {
	var out []string
	for _, r := range g {
		out = append(out, r.rows.Processed[0][0].(string))
	}
	return out
}

func TestNextGroupPutsUrgentFirstAndApart(t *testing.T) {
	quit := make(chan struct{})
	urgent, queue := make(chan *writeReq, 8), make(chan *writeReq, 8)
	queue <- req("lo1", false, 5000)
	queue <- req("lo2", false, 5000)
	urgent <- req("hi1", true, 1)
	urgent <- req("hi2", true, 1)

	g, ok := nextGroup(quit, urgent, queue)
	require.True(t, ok)
	require.Equal(t, []string{"hi1", "hi2"}, names(g), "urgent first, not merged with the low lane")

	urgent <- req("hi3", true, 1)
	g, ok = nextGroup(quit, urgent, queue)
	require.True(t, ok)
	require.Equal(t, []string{"hi3"}, names(g))

	g, ok = nextGroup(quit, urgent, queue)
	require.True(t, ok)
	require.Equal(t, []string{"lo1", "lo2"}, names(g), "normal batches that queued up commit together")
}

func TestNextGroupBoundsAndCancellation(t *testing.T) {
	quit := make(chan struct{})
	urgent, queue := make(chan *writeReq, 8), make(chan *writeReq, 8)
	for _, n := range []string{"a", "b", "c"} {
		queue <- req(n, false, maxGroupRows/2)
	}
	g, ok := nextGroup(quit, urgent, queue)
	require.True(t, ok)
	require.Equal(t, []string{"a", "b"}, names(g), "a group stops at maxGroupRows")

	cancelled := req("gone", false, 1)
	cancelled.state.Store(reqCancelled)
	queue <- cancelled
	g, ok = nextGroup(quit, urgent, queue)
	require.True(t, ok)
	require.Equal(t, []string{"c"}, names(g), "a cancelled request is skipped")

	close(quit)
	_, ok = nextGroup(quit, urgent, queue)
	require.False(t, ok)
}
