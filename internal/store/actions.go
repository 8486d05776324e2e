package store

import (
	"context"

	"github.com/reflex-ops/reflex/internal/actions"
)

// ActionStore holds the action definitions of the autonomous service
// (autonomous.action_definitions in PostgreSQL). Definitions are
// validated by the caller (actions.Definition.Validate); the store keeps
// what it is given, its text cleaned as every store's.
type ActionStore interface {
	// CreateAction stores d under a new id and returns it as stored
	// (CreatedAt and UpdatedAt set to now). ErrConflict if another
	// definition has d.Name.
	CreateAction(ctx context.Context, d actions.Definition) (actions.Definition, error)
	// Action returns the definition with this id, or ErrNotFound.
	Action(ctx context.Context, id int64) (actions.Definition, error)
	// ActionByName returns the definition named name, or ErrNotFound.
	ActionByName(ctx context.Context, name string) (actions.Definition, error)
	// Actions lists every definition by name.
	Actions(ctx context.Context) ([]actions.Definition, error)
	// UpdateAction replaces the definition d.ID (its CreatedAt kept,
	// UpdatedAt set to now) and returns it as stored. ErrNotFound for an
	// unknown id, ErrConflict if another definition has d.Name.
	UpdateAction(ctx context.Context, d actions.Definition) (actions.Definition, error)
	// DeleteAction deletes the definition. ErrNotFound for an unknown id,
	// ErrConflict while another definition names it as its rollback
	// action.
	DeleteAction(ctx context.Context, id int64) error
}
