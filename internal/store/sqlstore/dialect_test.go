package sqlstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

func TestRebind(t *testing.T) {
	q := "SELECT a FROM t WHERE a = ? AND b IN (?, ?)"
	require.Equal(t, q, SQLite.Rebind(q))
	require.Equal(t, "SELECT a FROM t WHERE a = $1 AND b IN ($2, $3)", Postgres.Rebind(q))
	require.Equal(t, "SELECT 1", Postgres.Rebind("SELECT 1"))
}

func TestValues(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	require.Equal(t, at.Truncate(time.Microsecond).UnixMicro(), SQLite.Time(at))
	require.Equal(t, at.UTC(), Postgres.Time(at))
	require.Nil(t, SQLite.NullTime(time.Time{}))
	require.Nil(t, Postgres.NullTime(time.Time{}))

	require.Equal(t, "[\"a\",\"b\ufffd\"]", SQLite.Strings([]string{"a", "b\xff"}, 0))
	require.Equal(t, []string{"ab"}, Postgres.Strings([]string{"abc"}, 2))
	require.Equal(t, `[]`, SQLite.Strings(nil, 0), "never NULL")
	require.Nil(t, SQLite.NullStrings(nil, 0))
	require.Equal(t, "[1,-2,3]", SQLite.Ints([]int64{1, -2, 3}))
	require.Equal(t, "[]", SQLite.Ints([]int64{}))
	require.Nil(t, Postgres.Ints(nil))
	require.Equal(t, json.RawMessage(`{}`), Postgres.JSON([]byte(`{}`)))
	require.Equal(t, `{}`, SQLite.JSON([]byte(`{}`)))
}

func TestScanDestinations(t *testing.T) {
	var at time.Time
	require.NoError(t, Time(&at).(timeDest).Scan(int64(1_700_000_000_000_001)))
	require.Equal(t, time.UnixMicro(1_700_000_000_000_001).UTC(), at)
	require.NoError(t, Time(&at).(timeDest).Scan(nil))
	require.True(t, at.IsZero())
	require.Error(t, Time(&at).(timeDest).Scan("soon"))

	var (
		ss  []string
		bad error
	)
	d := SQLite.StringsDest(&ss, &bad).(jsonDest[[]string])
	require.NoError(t, d.Scan(`["a"]`))
	require.Equal(t, []string{"a"}, ss)
	require.NoError(t, bad)
	require.NoError(t, d.Scan(`not json`), "a bad value does not fail the scan")
	require.Error(t, bad, "it is reported apart")
	require.Nil(t, ss)
	require.Same(t, &ss, Postgres.StringsDest(&ss, &bad), "pgx scans arrays natively")
}

func TestGreatestIgnoresNull(t *testing.T) {
	require.Equal(t, "GREATEST(a, $2)", Postgres.Greatest("a", Postgres.Arg(2)))
	require.Equal(t, "CASE WHEN ?2 IS NULL OR (a IS NOT NULL AND a >= ?2) THEN a ELSE ?2 END", SQLite.Greatest("a", SQLite.Arg(2)))
}

func TestPage(t *testing.T) {
	at := time.Unix(100, 0).UTC()
	l := eventList{rows: []position{{at, 3}, {at, 2}, {at, 1}}, unreadable: []int64{2, 1}}
	l.events = append(l.events, event.Event{ID: 3, OccurredAt: at})
	p := page(l, 2)
	require.True(t, p.More)
	require.Len(t, p.Events, 1)
	require.Equal(t, []int64{2}, p.Unreadable, "the extra row is left out, unreadable or not")
	require.Equal(t, int64(2), p.NextID, "the cursor is the last row kept")

	p = page(l, 3)
	require.False(t, p.More)
	require.Equal(t, []int64{2, 1}, p.Unreadable)
}
