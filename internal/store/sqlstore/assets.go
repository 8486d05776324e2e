package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// AssetTable is the asset inventory, in the events schema.
const AssetTable = "assets"

const assetSelect = `host, data, updated_at`

func (q *Queries) assets() string { return q.d.Table("events", AssetTable) }

// PutAsset creates or replaces the asset of a.Host. A zero UpdatedAt is
// set to now.
func (q *Queries) PutAsset(ctx context.Context, a store.Asset) error {
	if a.Host == "" {
		return fmt.Errorf("%s: put asset: empty host", q.d.Name)
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = q.now()
	}
	a.UpdatedAt = store.CleanTime(a.UpdatedAt).Truncate(time.Microsecond)
	a.Host = store.CleanText(a.Host, 0)
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("%s: put asset %s: %w", q.d.Name, a.Host, err)
	}
	_, err = q.w.Exec(ctx, q.d.Rebind(`INSERT INTO `+q.assets()+` (host, data, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (host) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`),
		a.Host, q.d.JSON(store.CleanJSON(doc)), q.d.Time(a.UpdatedAt))
	if err != nil {
		return fmt.Errorf("%s: put asset %s: %w", q.d.Name, a.Host, err)
	}
	return nil
}

func scanAsset(row Row) (store.Asset, error) {
	var (
		a       store.Asset
		host    string
		doc     []byte
		updated time.Time
	)
	if err := row.Scan(&host, &doc, Time(&updated)); err != nil {
		return a, err
	}
	if err := json.Unmarshal(doc, &a); err != nil {
		return a, fmt.Errorf("decode asset %s: %w", host, err)
	}
	a.Host, a.UpdatedAt = host, updated
	return a, nil
}

// Asset returns the asset of host.
func (q *Queries) Asset(ctx context.Context, host string) (store.Asset, error) {
	a, err := scanAsset(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+assetSelect+` FROM `+q.assets()+` WHERE host = ?`), store.CleanText(host, 0)))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%s: asset %s: %w", q.d.Name, host, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("%s: asset %s: %w", q.d.Name, host, err)
	}
	return a, nil
}

// DeleteAsset deletes the asset of host.
func (q *Queries) DeleteAsset(ctx context.Context, host string) error {
	n, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.assets()+` WHERE host = ?`), store.CleanText(host, 0))
	if err != nil {
		return fmt.Errorf("%s: delete asset %s: %w", q.d.Name, host, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: delete asset %s: %w", q.d.Name, host, store.ErrNotFound)
	}
	return nil
}

// Assets lists every asset by host.
func (q *Queries) Assets(ctx context.Context) ([]store.Asset, error) {
	return collect(ctx, q, "assets", scanAsset, `SELECT `+assetSelect+` FROM `+q.assets()+` ORDER BY host`)
}

// collect runs a query and scans every row with scan; never nil.
func collect[T any](ctx context.Context, q *Queries, what string, scan func(Row) (T, error), sqlText string, args ...any) ([]T, error) {
	rs, err := q.r.Query(ctx, q.d.Rebind(sqlText), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	defer rs.Close()
	out := []T{}
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return out, nil
}
