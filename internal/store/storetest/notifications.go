package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/store"
)

// Notifications is the part of a store that RunNotifications checks.
type Notifications interface {
	store.Lifecycle
	store.NotificationStore
}

// RunNotifications runs the conformance suite of store.NotificationStore,
// as RunAssets.
func RunNotifications(t *testing.T, open func(t *testing.T) Notifications) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *notifyEnv)
	}{
		{"Policy", testPolicy},
		{"Silences", testSilences},
		{"Records", testNotificationRecords},
		{"Prune", testPruneNotifications},
	} {
		t.Run("Notifications/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			tt.fn(t, &notifyEnv{s: s, ctx: ctx, base: base.Truncate(time.Microsecond)})
		})
	}
}

type notifyEnv struct {
	s    Notifications
	ctx  context.Context
	base time.Time
}

func testPolicy(t *testing.T, e *notifyEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	_, err := s.Policy(ctx)
	require.ErrorIs(t, err, store.ErrNotFound)

	first := store.StoredPolicy{Document: []byte("receivers: [{name: ops, webhook: {url: 'https://h.example/x', secret: s3cret}}]\n"), MediaType: notify.MediaYAML, UpdatedAt: base}
	require.NoError(t, s.PutPolicy(ctx, first))
	got, err := s.Policy(ctx)
	require.NoError(t, err)
	require.Equal(t, first.Document, got.Document, "stored as given, secrets included")
	require.Equal(t, notify.MediaYAML, got.MediaType)
	require.True(t, base.Equal(got.UpdatedAt), "%v != %v", base, got.UpdatedAt)

	second := store.StoredPolicy{Document: []byte(`{"receivers": []}`), MediaType: notify.MediaJSON, UpdatedAt: base.Add(time.Minute)}
	require.NoError(t, s.PutPolicy(ctx, second))
	got, err = s.Policy(ctx)
	require.NoError(t, err)
	require.Equal(t, second.Document, got.Document, "replaced")
	require.Equal(t, notify.MediaJSON, got.MediaType)
	require.True(t, second.UpdatedAt.Equal(got.UpdatedAt))

	require.Error(t, s.PutPolicy(ctx, store.StoredPolicy{MediaType: notify.MediaJSON}), "an empty document")
}

func testSilences(t *testing.T, e *notifyEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	_, err := s.Silence(ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := s.Silences(ctx, store.SilenceQuery{})
	require.NoError(t, err)
	require.Empty(t, list)

	a, err := s.CreateSilence(ctx, notify.Silence{
		ID:       99, // ignored
		Matchers: map[string]any{"source_host": "db-01", "severity": []any{"critical", "high"}},
		StartsAt: base.Add(-time.Hour), EndsAt: base.Add(time.Hour),
		CreatedBy: "alice", Comment: "maintenance \u00e9",
	})
	require.NoError(t, err)
	require.Positive(t, a.ID)
	require.NotEqual(t, int64(99), a.ID)
	b, err := s.CreateSilence(ctx, notify.Silence{
		Matchers: map[string]any{"rule": "High CPU Alert"},
		StartsAt: base.Add(-2 * time.Hour), EndsAt: base.Add(-time.Hour),
	})
	require.NoError(t, err)
	require.Greater(t, b.ID, a.ID)

	got, err := s.Silence(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.Equal(t, map[string]any{"source_host": "db-01", "severity": []any{"critical", "high"}}, got.Matchers)
	require.True(t, got.StartsAt.Equal(base.Add(-time.Hour)))
	require.Equal(t, "maintenance \u00e9", got.Comment)
	require.True(t, got.Matches(notify.Alert{SourceHost: "db-01", Severity: "high"}))

	all, err := s.Silences(ctx, store.SilenceQuery{})
	require.NoError(t, err)
	require.Equal(t, []int64{b.ID, a.ID}, silenceIDs(all), "newest first")
	live, err := s.Silences(ctx, store.SilenceQuery{EndsAfter: base})
	require.NoError(t, err)
	require.Equal(t, []int64{a.ID}, silenceIDs(live))
	ended, err := s.Silences(ctx, store.SilenceQuery{EndedBy: base})
	require.NoError(t, err)
	require.Equal(t, []int64{b.ID}, silenceIDs(ended))
	one, err := s.Silences(ctx, store.SilenceQuery{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []int64{b.ID}, silenceIDs(one))

	// Expiring ends it now; expiring an ended one keeps its end.
	require.NoError(t, s.ExpireSilence(ctx, a.ID, base))
	got, err = s.Silence(ctx, a.ID)
	require.NoError(t, err)
	require.True(t, got.EndsAt.Equal(base), "%v", got.EndsAt)
	require.False(t, got.Active(base))
	require.NoError(t, s.ExpireSilence(ctx, b.ID, base))
	got, err = s.Silence(ctx, b.ID)
	require.NoError(t, err)
	require.True(t, got.EndsAt.Equal(base.Add(-time.Hour)))

	// A silence still to come ends before it starts: its start moves too.
	c, err := s.CreateSilence(ctx, notify.Silence{Matchers: map[string]any{"source_host": "x"}, StartsAt: base.Add(time.Hour), EndsAt: base.Add(2 * time.Hour)})
	require.NoError(t, err)
	require.NoError(t, s.ExpireSilence(ctx, c.ID, base))
	got, err = s.Silence(ctx, c.ID)
	require.NoError(t, err)
	require.True(t, got.StartsAt.Equal(base) && got.EndsAt.Equal(base), "%v %v", got.StartsAt, got.EndsAt)

	err = s.ExpireSilence(ctx, c.ID+100, base)
	require.ErrorIs(t, err, store.ErrNotFound)
	live, err = s.Silences(ctx, store.SilenceQuery{EndsAfter: base})
	require.NoError(t, err)
	require.Empty(t, live)
}

func silenceIDs(ss []notify.Silence) []int64 {
	out := make([]int64, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func testNotificationRecords(t *testing.T, e *notifyEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	list, err := s.Notifications(ctx, store.NotificationQuery{})
	require.NoError(t, err)
	require.Empty(t, list)

	in := []notify.Attempt{
		{Receiver: "ops", GroupKey: `{rule="High CPU"}`, Status: notify.StatusFailed, Attempt: 1, Error: "webhook: 503", Alerts: 2, At: base.Add(-3 * time.Minute), EventIDs: []int64{11, 12}, RuleIDs: []int64{1}},
		{Receiver: "ops", GroupKey: `{rule="High CPU"}`, Status: notify.StatusSent, Attempt: 2, Alerts: 2, At: base.Add(-2 * time.Minute), EventIDs: []int64{11, 12}, RuleIDs: []int64{1}},
		{Receiver: "pager", GroupKey: `{}`, Status: notify.StatusRefused, Attempt: 1, Error: "outbound: refused", Alerts: 1, At: base.Add(-time.Minute), EventIDs: []int64{13}, RuleIDs: []int64{2}},
		{Receiver: "ops", GroupKey: `{}`, Status: notify.StatusSilenced, Alerts: 1, At: base, EventIDs: nil, RuleIDs: nil},
	}
	ids := make([]int64, len(in))
	for i, a := range in {
		ids[i], err = s.InsertNotification(ctx, a)
		require.NoError(t, err)
		if i > 0 {
			require.Greater(t, ids[i], ids[i-1])
		}
	}
	all, err := s.Notifications(ctx, store.NotificationQuery{})
	require.NoError(t, err)
	require.Len(t, all, 4)
	require.Equal(t, []int64{ids[3], ids[2], ids[1], ids[0]}, recordIDs(all), "newest first")
	first := all[3]
	require.Equal(t, in[0].Receiver, first.Receiver)
	require.Equal(t, in[0].GroupKey, first.GroupKey)
	require.Equal(t, in[0].Status, first.Status)
	require.Equal(t, 1, first.Attempt.Attempt)
	require.Equal(t, "webhook: 503", first.Error)
	require.Equal(t, 2, first.Alerts)
	require.True(t, in[0].At.Equal(first.At))
	require.Equal(t, []int64{11, 12}, first.EventIDs)
	require.Equal(t, []int64{1}, first.RuleIDs)
	require.Equal(t, []int64{}, all[0].EventIDs, "none is an empty list")

	for name, c := range map[string]struct {
		q    store.NotificationQuery
		want []int64
	}{
		"receiver":        {store.NotificationQuery{Receiver: "ops"}, []int64{ids[3], ids[1], ids[0]}},
		"status":          {store.NotificationQuery{Status: notify.StatusRefused}, []int64{ids[2]}},
		"since inclusive": {store.NotificationQuery{Since: base.Add(-2 * time.Minute)}, []int64{ids[3], ids[2], ids[1]}},
		"all filters":     {store.NotificationQuery{Receiver: "ops", Status: notify.StatusSent, Since: base.Add(-time.Hour)}, []int64{ids[1]}},
		"limit":           {store.NotificationQuery{Limit: 2}, []int64{ids[3], ids[2]}},
		"none":            {store.NotificationQuery{Receiver: "nobody"}, []int64{}},
	} {
		got, err := s.Notifications(ctx, c.q)
		require.NoError(t, err, name)
		require.Equal(t, c.want, recordIDs(got), name)
	}
}

func recordIDs(rs []store.NotificationRecord) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func testPruneNotifications(t *testing.T, e *notifyEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	for _, at := range []time.Time{base.Add(-2 * time.Hour), base.Add(-time.Minute), base} {
		_, err := s.InsertNotification(ctx, notify.Attempt{Receiver: "ops", GroupKey: "{}", Status: notify.StatusSent, Attempt: 1, Alerts: 1, At: at})
		require.NoError(t, err)
	}
	old, err := s.CreateSilence(ctx, notify.Silence{Matchers: map[string]any{"source_host": "a"}, StartsAt: base.Add(-3 * time.Hour), EndsAt: base.Add(-2 * time.Hour)})
	require.NoError(t, err)
	live, err := s.CreateSilence(ctx, notify.Silence{Matchers: map[string]any{"source_host": "b"}, StartsAt: base.Add(-3 * time.Hour), EndsAt: base.Add(time.Hour)})
	require.NoError(t, err)

	n, err := s.PruneNotifications(ctx, base.Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "one record and one silence")
	recs, err := s.Notifications(ctx, store.NotificationQuery{})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	_, err = s.Silence(ctx, old.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Silence(ctx, live.ID)
	require.NoError(t, err)
}
