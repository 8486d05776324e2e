package correlate

import (
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

func TestCorrelationIDs(t *testing.T) {
	gen := event.NewIDGen(3, nil)
	var ids []int64
	for i := 0; i < 200; i++ {
		ids = append(ids, gen.Next(1+i%7))
	}
	ids = append(ids, event.IDAt(time.Now().Add(24*time.Hour)), 1, 1<<62)
	seen := map[string]bool{}
	for _, id := range ids {
		for _, s := range []string{GroupID(id), CausalID(id)} {
			u, err := uuid.Parse(s)
			require.NoError(t, err)
			require.Equal(t, uuid.Version(8), u.Version())
			require.Equal(t, uuid.RFC4122, u.Variant())
			require.False(t, seen[s], "id %d: %s is not unique", id, s)
			seen[s] = true
		}
		require.Equal(t, GroupID(id), GroupID(id), "deterministic")
	}
	// Time-based ids sort as their event ids do.
	sorted := append([]int64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for i := 1; i < len(sorted); i++ {
		require.Less(t, GroupID(sorted[i-1]), GroupID(sorted[i]))
	}
}
