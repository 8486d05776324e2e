package storetest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/store"
)

// Actions is the part of a store that RunActions checks.
type Actions interface {
	store.Lifecycle
	store.ActionStore
}

// RunActions runs the conformance suite of store.ActionStore, as
// RunAssets.
func RunActions(t *testing.T, open func(t *testing.T) Actions) {
	t.Run("Actions/CRUD", func(t *testing.T) {
		s := open(t)
		ctx, _ := setUp(t, s)
		_, err := s.Action(ctx, 1)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.ActionByName(ctx, "restart")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, s.DeleteAction(ctx, 1), store.ErrNotFound)
		_, err = s.UpdateAction(ctx, actions.Definition{ID: 1, Name: "x", Type: actions.TypeDiagnostic, RiskLevel: actions.RiskLow})
		require.ErrorIs(t, err, store.ErrNotFound)

		code := 0
		in := actions.Definition{
			Name: "restart_nginx", Description: "restarts nginx", Type: actions.TypeRemediation, Category: "application",
			RiskLevel: actions.RiskHigh, ApprovalRequired: true, Rollback: "start_nginx", EstimatedDurationMinutes: 2,
			SuccessCriteria: &actions.Criteria{ExitCode: &code, OutputMatches: "ok", NoNewEventMinutes: 10,
				HTTPProbe: &actions.Probe{URL: "http://{{.event.source_host}}/health", ExpectedStatus: []int{200}}},
			Executor: json.RawMessage(`{"type":"command","argv":["/opt/fix/restart.sh","{{.event.source_host}}"],"timeout":"30s"}`),
			Enabled:  true,
		}
		got, err := s.CreateAction(ctx, in)
		require.NoError(t, err)
		require.Positive(t, got.ID)
		require.False(t, got.CreatedAt.IsZero())
		require.Equal(t, got.CreatedAt, got.UpdatedAt)
		require.True(t, actions.Equal(in, got), "stored as given: %+v", got)
		require.JSONEq(t, string(in.Executor), string(got.Executor))

		byName, err := s.ActionByName(ctx, "restart_nginx")
		require.NoError(t, err)
		require.Equal(t, got, byName)

		_, err = s.CreateAction(ctx, in)
		require.ErrorIs(t, err, store.ErrConflict, "names are unique")

		start := actions.Definition{Name: "start_nginx", Type: actions.TypeRemediation, RiskLevel: actions.RiskMedium,
			Executor: json.RawMessage(`{"type":"command","argv":["/opt/fix/start.sh"]}`)}
		started, err := s.CreateAction(ctx, start)
		require.NoError(t, err)
		require.False(t, started.Enabled)
		require.False(t, started.ApprovalRequired)
		require.Nil(t, started.SuccessCriteria)

		list, err := s.Actions(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "restart_nginx", list[0].Name, "listed by name")

		// Update: the name of another is a conflict; otherwise replaced.
		upd := got
		upd.Name = "start_nginx"
		_, err = s.UpdateAction(ctx, upd)
		require.ErrorIs(t, err, store.ErrConflict)
		upd = got
		upd.RiskLevel, upd.SuccessCriteria, upd.Enabled = actions.RiskCritical, nil, false
		after, err := s.UpdateAction(ctx, upd)
		require.NoError(t, err)
		require.Equal(t, actions.RiskCritical, after.RiskLevel)
		require.Nil(t, after.SuccessCriteria)
		require.False(t, after.Enabled)
		require.Equal(t, got.CreatedAt, after.CreatedAt)
		require.False(t, after.UpdatedAt.Before(got.UpdatedAt))

		// A rollback action in use cannot go; once unused it can.
		require.ErrorIs(t, s.DeleteAction(ctx, started.ID), store.ErrConflict)
		require.NoError(t, s.DeleteAction(ctx, after.ID))
		require.NoError(t, s.DeleteAction(ctx, started.ID))
		list, err = s.Actions(ctx)
		require.NoError(t, err)
		require.Empty(t, list)
	})
}
