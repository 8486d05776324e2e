package store

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/notify"
)

// NotificationStore holds what the notification router keeps (the notify
// schema in PostgreSQL): the notification policy in use, the silences and
// the record of every delivery attempt.
type NotificationStore interface {
	// PutPolicy stores p as the notification policy, replacing the one
	// stored. A zero UpdatedAt is set to now.
	PutPolicy(ctx context.Context, p StoredPolicy) error
	// Policy returns the stored policy, or ErrNotFound when none is.
	Policy(ctx context.Context) (StoredPolicy, error)

	// CreateSilence stores s under a new id, which it returns with the
	// silence as stored (times in microseconds). s.ID is ignored.
	CreateSilence(ctx context.Context, s notify.Silence) (notify.Silence, error)
	// Silence returns the silence with this id, or ErrNotFound.
	Silence(ctx context.Context, id int64) (notify.Silence, error)
	// Silences lists the silences q selects, newest first.
	Silences(ctx context.Context, q SilenceQuery) ([]notify.Silence, error)
	// ExpireSilence ends the silence at at: its EndsAt becomes at unless it
	// ended before (and its StartsAt too, if it starts after at). It
	// returns ErrNotFound for an unknown id.
	ExpireSilence(ctx context.Context, id int64, at time.Time) error

	// InsertNotification records one attempt and returns its id.
	InsertNotification(ctx context.Context, a notify.Attempt) (int64, error)
	// PruneNotifications deletes the delivery records made before before
	// and the silences that ended before it, and returns how many rows it
	// deleted. The server runs it with the events' retention.
	PruneNotifications(ctx context.Context, before time.Time) (int64, error)
	// Notifications lists the records q selects, newest first.
	Notifications(ctx context.Context, q NotificationQuery) ([]NotificationRecord, error)
}

// StoredPolicy is the notification policy document as it was given,
// secrets included: it is stored and read back to be parsed
// (notify.ParsePolicy), never answered.
type StoredPolicy struct {
	Document  []byte
	MediaType string // notify.MediaJSON or notify.MediaYAML
	UpdatedAt time.Time
}

// SilenceQuery selects silences. The zero value selects every one.
type SilenceQuery struct {
	// EndsAfter, when set, keeps the silences whose EndsAt is after it
	// (those active or still to come at that time).
	EndsAfter time.Time
	// EndedBy, when set, keeps the silences whose EndsAt is at or before
	// it (expired at that time).
	EndedBy time.Time
	// Limit bounds the answer (0: no bound).
	Limit int
}

// NotificationQuery selects notification records. The zero value selects
// every one.
type NotificationQuery struct {
	Receiver string
	Status   string    // notify.StatusSent ...
	Since    time.Time // At >= Since
	Limit    int       // 0: no bound
}

// NotificationRecord is a stored notify.Attempt with its id.
type NotificationRecord struct {
	ID int64 `json:"id"`
	notify.Attempt
}
