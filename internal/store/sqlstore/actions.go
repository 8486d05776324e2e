package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/store"
)

// ActionTable holds the action definitions, in the autonomous schema.
const ActionTable = "action_definitions"

const actionSelect = `id, action_name, description, action_type, COALESCE(action_category, ''),
	COALESCE(risk_level, 'medium'), COALESCE(approval_required, TRUE), rollback_action,
	COALESCE(estimated_duration_minutes, 0), success_criteria, executor, enabled,
	created_at, updated_at`

func (q *Queries) actionTable() string { return q.d.Table("autonomous", ActionTable) }

// actionArgs are the columns CreateAction and UpdateAction write, in the
// order of their statements.
func (q *Queries) actionArgs(d actions.Definition) ([]any, error) {
	var criteria []byte
	if d.SuccessCriteria != nil {
		b, err := json.Marshal(d.SuccessCriteria)
		if err != nil {
			return nil, fmt.Errorf("success_criteria: %w", err)
		}
		criteria = store.CleanJSON(b)
	}
	exec := d.Executor
	if len(exec) == 0 {
		exec = json.RawMessage(`{}`)
	}
	return []any{
		store.CleanText(d.Name, actions.MaxNameLen), store.CleanText(d.Description, 0), store.CleanText(d.Type, 0),
		nullText(d.Category, actions.MaxNameLen), store.CleanText(d.RiskLevel, 0), d.ApprovalRequired,
		store.CleanText(d.Rollback, actions.MaxNameLen), d.EstimatedDurationMinutes, q.d.JSON(criteria),
		q.d.JSON(store.CleanJSON(exec)), d.Enabled,
	}, nil
}

// CreateAction stores d under a new id.
func (q *Queries) CreateAction(ctx context.Context, d actions.Definition) (actions.Definition, error) {
	args, err := q.actionArgs(d)
	if err != nil {
		return actions.Definition{}, fmt.Errorf("%s: create action %q: %w", q.d.Name, d.Name, err)
	}
	now := q.microNow()
	args = append(args, q.d.Time(now), q.d.Time(now))
	var id int64
	err = q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.actionTable()+` (action_name, description, action_type,
		action_category, risk_level, approval_required, rollback_action, estimated_duration_minutes,
		success_criteria, executor, enabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`), args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return actions.Definition{}, fmt.Errorf("%s: create action %q: an action of this name exists: %w", q.d.Name, d.Name, store.ErrConflict)
	}
	if err != nil {
		return actions.Definition{}, fmt.Errorf("%s: create action %q: %w", q.d.Name, d.Name, err)
	}
	return q.Action(ctx, id)
}

func scanAction(row Row) (actions.Definition, error) {
	var (
		d                actions.Definition
		criteria, exec   []byte
		created, updated time.Time
	)
	if err := row.Scan(&d.ID, &d.Name, &d.Description, &d.Type, &d.Category, &d.RiskLevel, &d.ApprovalRequired,
		&d.Rollback, &d.EstimatedDurationMinutes, &criteria, &exec, &d.Enabled, Time(&created), Time(&updated)); err != nil {
		return d, err
	}
	if len(criteria) > 0 && string(criteria) != "null" {
		d.SuccessCriteria = new(actions.Criteria)
		if err := json.Unmarshal(criteria, d.SuccessCriteria); err != nil {
			return d, fmt.Errorf("decode success_criteria of action %d: %w", d.ID, err)
		}
	}
	d.Executor = json.RawMessage(exec)
	d.CreatedAt, d.UpdatedAt = created, updated
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	return d, nil
}

// Action returns the definition with this id.
func (q *Queries) Action(ctx context.Context, id int64) (actions.Definition, error) {
	return byID(ctx, q, "action", actionSelect, q.actionTable(), id, scanAction)
}

// ActionByName returns the definition named name.
func (q *Queries) ActionByName(ctx context.Context, name string) (actions.Definition, error) {
	d, err := scanAction(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+actionSelect+` FROM `+q.actionTable()+` WHERE action_name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%s: action %q: %w", q.d.Name, name, store.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("%s: action %q: %w", q.d.Name, name, err)
	}
	return d, nil
}

// Actions lists every definition by name.
func (q *Queries) Actions(ctx context.Context) ([]actions.Definition, error) {
	return collect(ctx, q, "actions", scanAction, `SELECT `+actionSelect+` FROM `+q.actionTable()+` ORDER BY action_name`)
}

// UpdateAction replaces the definition d.ID.
func (q *Queries) UpdateAction(ctx context.Context, d actions.Definition) (actions.Definition, error) {
	args, err := q.actionArgs(d)
	if err != nil {
		return actions.Definition{}, fmt.Errorf("%s: update action %d: %w", q.d.Name, d.ID, err)
	}
	args = append(args, q.d.Time(q.microNow()), d.ID, store.CleanText(d.Name, actions.MaxNameLen), d.ID)
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.actionTable()+` SET action_name = ?, description = ?,
		action_type = ?, action_category = ?, risk_level = ?, approval_required = ?, rollback_action = ?,
		estimated_duration_minutes = ?, success_criteria = ?, executor = ?, enabled = ?, updated_at = ?
		WHERE id = ? AND NOT EXISTS (SELECT 1 FROM `+q.actionTable()+` o WHERE o.action_name = ? AND o.id <> ?)`), args...)
	if err != nil {
		return actions.Definition{}, fmt.Errorf("%s: update action %d: %w", q.d.Name, d.ID, err)
	}
	if n == 0 {
		if _, err := q.Action(ctx, d.ID); err != nil {
			return actions.Definition{}, err
		}
		return actions.Definition{}, fmt.Errorf("%s: update action %d: another action is named %q: %w", q.d.Name, d.ID, d.Name, store.ErrConflict)
	}
	return q.Action(ctx, d.ID)
}

// DeleteAction deletes the definition unless another names it as its
// rollback action.
func (q *Queries) DeleteAction(ctx context.Context, id int64) error {
	n, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.actionTable()+` WHERE id = ?
		AND NOT EXISTS (SELECT 1 FROM `+q.actionTable()+` o WHERE o.rollback_action = (SELECT action_name FROM `+q.actionTable()+` WHERE id = ?) AND o.id <> ?)`), id, id, id)
	if err != nil {
		return fmt.Errorf("%s: delete action %d: %w", q.d.Name, id, err)
	}
	if n == 0 {
		d, err := q.Action(ctx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("%s: delete action %d: another action names %q as its rollback action: %w", q.d.Name, id, d.Name, store.ErrConflict)
	}
	return nil
}

var _ store.ActionStore = (*Queries)(nil)
