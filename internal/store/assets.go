package store

import (
	"context"
	"time"
)

// AssetStore is the asset inventory (events.assets in PostgreSQL).
type AssetStore interface {
	// PutAsset creates or replaces the asset of a.Host.
	PutAsset(ctx context.Context, a Asset) error
	// Asset returns the asset of host, or ErrNotFound.
	Asset(ctx context.Context, host string) (Asset, error)
	// DeleteAsset deletes the asset of host, or returns ErrNotFound.
	DeleteAsset(ctx context.Context, host string) error
	// Assets lists every asset, ordered by host.
	Assets(ctx context.Context) ([]Asset, error)
}

// Asset is an entry of the asset inventory.
type Asset struct {
	Host         string    `json:"host" yaml:"host"`
	Environment  string    `json:"environment,omitempty" yaml:"environment"`
	Criticality  string    `json:"criticality,omitempty" yaml:"criticality"` // critical, high, medium, low
	Owner        string    `json:"owner,omitempty" yaml:"owner"`
	Team         string    `json:"team,omitempty" yaml:"team"`
	Service      string    `json:"service,omitempty" yaml:"service"`
	Dependencies []string  `json:"dependencies,omitempty" yaml:"dependencies"` // hosts this one depends on
	Tags         []string  `json:"tags,omitempty" yaml:"tags"`
	UpdatedAt    time.Time `json:"updated_at" yaml:"-"`
}
