package store

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/maintenance"
)

// MaintenanceStore holds the maintenance windows (events.maintenance_windows
// in PostgreSQL).
type MaintenanceStore interface {
	// CreateMaintenance stores w under a new id, which it returns with the
	// window as stored (times in microseconds, CreatedAt set to now). w.ID
	// is ignored.
	CreateMaintenance(ctx context.Context, w maintenance.Window) (maintenance.Window, error)
	// MaintenanceWindow returns the window with this id, or ErrNotFound.
	MaintenanceWindow(ctx context.Context, id int64) (maintenance.Window, error)
	// MaintenanceWindows lists the windows q selects, ordered by StartsAt,
	// then id.
	MaintenanceWindows(ctx context.Context, q MaintenanceQuery) ([]maintenance.Window, error)
	// EndMaintenance ends the window at at: its EndsAt becomes at unless it
	// ended before (and its StartsAt too, if it starts after at). It
	// returns ErrNotFound for an unknown id.
	EndMaintenance(ctx context.Context, id int64, at time.Time) error
	// PruneMaintenance deletes the windows that ended before before and
	// returns how many. The server runs it with the events' retention.
	PruneMaintenance(ctx context.Context, before time.Time) (int64, error)
}

// MaintenanceQuery selects maintenance windows. The zero value selects
// every one.
type MaintenanceQuery struct {
	// EndsAfter, when set, keeps the windows whose EndsAt is after it
	// (in force or still to come at that time).
	EndsAfter time.Time
	// StartsBy, when set, keeps the windows whose StartsAt is at or before
	// it (with EndsAfter at the same time: those in force then).
	StartsBy time.Time
	// StartsAfter, when set, keeps the windows whose StartsAt is after it
	// (still to come at that time).
	StartsAfter time.Time
	// EndedBy, when set, keeps the windows whose EndsAt is at or before it
	// (ended at that time).
	EndedBy time.Time
	// Limit bounds the answer (0: no bound).
	Limit int
}
