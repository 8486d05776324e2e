package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// The tables of the log templates, in the events schema.
const (
	TemplateTable     = "log_templates"
	TemplateHostTable = "log_template_hosts"
)

const logTemplateSelect = `id, template_text, example, COALESCE(folded_into, 0), state, count, first_seen_at, last_seen_at, updated_at`

// templateChunk bounds the rows of one multi-row statement (9 arguments
// each: far below either database's bound on arguments).
const templateChunk = 500

func (q *Queries) logTemplateTable() string  { return q.d.Table("events", TemplateTable) }
func (q *Queries) templateHostTable() string { return q.d.Table("events", TemplateHostTable) }

var _ store.TemplateStore = (*Queries)(nil)

// PutTemplates inserts or updates the templates, in one transaction.
func (q *Queries) PutTemplates(ctx context.Context, ts []store.LogTemplate) error {
	if len(ts) == 0 {
		return nil
	}
	now := q.d.Time(q.microNow())
	cols := []string{"id", "template_text", "example", "folded_into", "state", "count", "first_seen_at", "last_seen_at", "updated_at"}
	tail := ` ON CONFLICT (id) DO UPDATE SET template_text = excluded.template_text, count = excluded.count,
		folded_into = excluded.folded_into, state = excluded.state,
		example = CASE WHEN t.example = '' THEN excluded.example ELSE t.example END,
		first_seen_at = CASE WHEN excluded.first_seen_at < t.first_seen_at THEN excluded.first_seen_at ELSE t.first_seen_at END,
		last_seen_at = CASE WHEN excluded.last_seen_at > t.last_seen_at THEN excluded.last_seen_at ELSE t.last_seen_at END,
		updated_at = excluded.updated_at`
	err := q.inTx(ctx, func(tx *Queries) error {
		for start := 0; start < len(ts); start += templateChunk {
			chunk := ts[start:min(len(ts), start+templateChunk)]
			args := make([]any, 0, len(chunk)*len(cols))
			for _, t := range chunk {
				if t.ID < 1 {
					return fmt.Errorf("template id %d is not positive", t.ID)
				}
				first, last := t.FirstSeen, t.LastSeen
				if first.IsZero() {
					first = q.now()
				}
				if last.Before(first) {
					last = first
				}
				var folded any
				if t.FoldedInto > 0 {
					folded = t.FoldedInto
				}
				args = append(args, t.ID, store.CleanText(t.Text, store.MaxTemplateText), store.CleanText(t.Example, store.MaxTemplateExample),
					folded, store.CleanText(string(t.State), 0), max(t.Count, 0), q.d.Time(micro(first)), q.d.Time(micro(last)), now)
			}
			if _, err := tx.w.Exec(ctx, q.d.ValuesSQL(q.logTemplateTable()+" AS t", cols, len(chunk))+tail, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: put templates: %w", q.d.Name, err)
	}
	return nil
}

func scanLogTemplate(row Row) (store.LogTemplate, error) {
	var (
		t                   store.LogTemplate
		first, last, update time.Time
		state               string
	)
	if err := row.Scan(&t.ID, &t.Text, &t.Example, &t.FoldedInto, &state, &t.Count, Time(&first), Time(&last), Time(&update)); err != nil {
		return t, err
	}
	if state != "" {
		t.State = []byte(state)
	}
	t.FirstSeen, t.LastSeen, t.UpdatedAt = first, last, update
	return t, nil
}

// AllTemplates returns every template by id.
func (q *Queries) AllTemplates(ctx context.Context) ([]store.LogTemplate, error) {
	return collect(ctx, q, "all templates", scanLogTemplate, `SELECT `+logTemplateSelect+` FROM `+q.logTemplateTable()+` ORDER BY id`)
}

// Templates lists the templates tq selects, most recently seen first.
func (q *Queries) Templates(ctx context.Context, tq store.TemplateQuery) ([]store.LogTemplate, error) {
	var w Where
	if tq.Host != "" {
		w.Add(`id IN (SELECT template_id FROM `+q.templateHostTable()+` WHERE source_host = ?)`, store.CleanText(tq.Host, 0))
	}
	if tq.BeforeID != 0 {
		t := q.d.Time(tq.BeforeLastSeen)
		w.Add(`(last_seen_at < ? OR (last_seen_at = ? AND id < ?))`, t, t, tq.BeforeID)
	}
	text := `SELECT ` + logTemplateSelect + ` FROM ` + q.logTemplateTable() + w.Clause() +
		fmt.Sprintf(` ORDER BY last_seen_at DESC, id DESC LIMIT %d`, tq.PageSize())
	return collect(ctx, q, "templates", scanLogTemplate, text, w.Args()...)
}

// AddTemplateHosts records the pairs and returns the new ones.
func (q *Queries) AddTemplateHosts(ctx context.Context, pairs []store.TemplateHost) ([]store.TemplateHost, error) {
	type key struct {
		id   int64
		host string
	}
	seen := make(map[key]bool, len(pairs))
	uniq := make([]store.TemplateHost, 0, len(pairs))
	for _, p := range pairs {
		p.Host = store.CleanText(p.Host, 0)
		if k := (key{p.TemplateID, p.Host}); !seen[k] {
			seen[k] = true
			uniq = append(uniq, p)
		}
	}
	var out []store.TemplateHost
	cols := []string{"source_host", "template_id", "first_seen_at"}
	err := q.inTx(ctx, func(tx *Queries) error {
		for start := 0; start < len(uniq); start += templateChunk {
			chunk := uniq[start:min(len(uniq), start+templateChunk)]
			args := make([]any, 0, len(chunk)*len(cols))
			at := make(map[key]time.Time, len(chunk))
			for _, p := range chunk {
				first := p.FirstSeen
				if first.IsZero() {
					first = q.now()
				}
				first = micro(first)
				at[key{p.TemplateID, p.Host}] = first
				args = append(args, p.Host, p.TemplateID, q.d.Time(first))
			}
			rs, err := tx.w.Query(ctx, q.d.ValuesSQL(q.templateHostTable(), cols, len(chunk))+
				` ON CONFLICT DO NOTHING RETURNING source_host, template_id`, args...)
			if err != nil {
				return err
			}
			for rs.Next() {
				var p store.TemplateHost
				if err := rs.Scan(&p.Host, &p.TemplateID); err != nil {
					rs.Close()
					return err
				}
				p.FirstSeen = at[key{p.TemplateID, p.Host}]
				out = append(out, p)
			}
			err = rs.Err()
			rs.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: add template hosts: %w", q.d.Name, err)
	}
	return out, nil
}

// HostsFirstSeen returns when each host's first template was seen.
func (q *Queries) HostsFirstSeen(ctx context.Context, hosts []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(hosts))
	if len(hosts) == 0 {
		return out, nil
	}
	type row struct {
		host  string
		first time.Time
	}
	// InList takes a JSON array (SQLite) or an array (PostgreSQL) of
	// strings as well as of ids.
	rows, err := collect(ctx, q, "hosts first seen", func(r Row) (row, error) {
		var v row
		err := r.Scan(&v.host, Time(&v.first))
		return v, err
	}, `SELECT source_host, MIN(first_seen_at) FROM `+q.templateHostTable()+` WHERE `+q.d.InList("source_host")+` GROUP BY source_host`,
		q.d.Strings(hosts, 0))
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.host] = r.first
	}
	return out, nil
}
