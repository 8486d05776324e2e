package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// RuleWindowTable is the table of the rules engine's windows and
// throttles.
const RuleWindowTable = "rule_windows"

func (q *Queries) windows() string { return q.d.Table("rules", RuleWindowTable) }

// OccurrenceExecution returns the execution of the rule that the
// occurrence rawEventID made.
func (q *Queries) OccurrenceExecution(ctx context.Context, ruleID, rawEventID int64) (store.RuleExecution, error) {
	x, err := scanExecution(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+executionSelect+` FROM `+q.executions()+
		` WHERE trigger_rule_id = ? AND triggering_raw_event_id = ?`), ruleID, rawEventID))
	if errors.Is(err, sql.ErrNoRows) {
		return x, fmt.Errorf("%s: execution of trigger rule %d for raw event %d: %w", q.d.Name, ruleID, rawEventID, store.ErrNotFound)
	}
	if err != nil {
		return x, fmt.Errorf("%s: execution of trigger rule %d for raw event %d: %w", q.d.Name, ruleID, rawEventID, err)
	}
	return x, nil
}

// RecordFirings writes a batch of the rules engine's work in one
// transaction.
func (q *Queries) RecordFirings(ctx context.Context, b store.FiringBatch) ([]store.RuleExecution, error) {
	out := make([]store.RuleExecution, len(b.Executions))
	err := q.inTx(ctx, func(tx *Queries) error {
		for _, id := range b.Forget {
			if _, err := tx.w.Exec(ctx, tx.d.Rebind(`DELETE FROM `+tx.windows()+` WHERE rule_id = ?`), id); err != nil {
				return fmt.Errorf("forget windows of trigger rule %d: %w", id, err)
			}
		}
		for i, x := range b.Executions {
			stored, err := tx.recordExecution(ctx, x)
			if err != nil {
				return err
			}
			out[i] = stored
		}
		for _, c := range b.Counts {
			if err := tx.addCounts(ctx, c); err != nil {
				return err
			}
		}
		for _, w := range b.Windows {
			if err := tx.putWindow(ctx, w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: record firings: %w", q.d.Name, err)
	}
	return out, nil
}

// recordExecution inserts x unless its rule has an execution for its
// occurrence already, and returns the stored one; the zero execution when
// its rule no longer exists.
func (q *Queries) recordExecution(ctx context.Context, x store.RuleExecution) (store.RuleExecution, error) {
	if x.StartedAt.IsZero() {
		x.StartedAt = q.now()
	}
	x.StartedAt = x.StartedAt.UTC().Truncate(time.Microsecond)
	id, err := q.insertExecution(ctx, x, ` ON CONFLICT DO NOTHING`)
	switch {
	case err == nil:
		x.ID = id
		if _, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.triggerRules()+` SET firings = firings + 1, last_fired_at = ? WHERE id = ?`),
			q.d.Time(x.StartedAt), x.TriggerRuleID); err != nil {
			return store.RuleExecution{}, fmt.Errorf("count the firing of trigger rule %d: %w", x.TriggerRuleID, err)
		}
		return x, nil
	case !errors.Is(err, sql.ErrNoRows):
		return store.RuleExecution{}, fmt.Errorf("insert execution of trigger rule %d: %w", x.TriggerRuleID, err)
	case x.TriggeringRawEventID == 0:
		return store.RuleExecution{}, nil
	}
	old, err := q.OccurrenceExecution(ctx, x.TriggerRuleID, x.TriggeringRawEventID)
	if errors.Is(err, store.ErrNotFound) {
		return store.RuleExecution{}, nil // the rule (or its template) is gone
	}
	return old, err
}

// addCounts adds c to its rule's counter.
func (q *Queries) addCounts(ctx context.Context, c store.RuleCount) error {
	if _, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.triggerRules()+` SET suppressed_firings = suppressed_firings + ? WHERE id = ?`),
		c.Suppressed, c.RuleID); err != nil {
		return fmt.Errorf("count firings of trigger rule %d: %w", c.RuleID, err)
	}
	return nil
}

// putWindow stores w, or deletes it when its State is nil.
func (q *Queries) putWindow(ctx context.Context, w store.RuleWindow) error {
	var err error
	if w.State == nil {
		_, err = q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.windows()+` WHERE rule_id = ? AND group_key = ?`), w.RuleID, w.GroupKey)
	} else {
		if w.UpdatedAt.IsZero() {
			w.UpdatedAt = q.now()
		}
		_, err = q.w.Exec(ctx, q.d.Rebind(`INSERT INTO `+q.windows()+` (rule_id, group_key, state, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (rule_id, group_key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`),
			w.RuleID, store.CleanText(w.GroupKey, 0), q.d.JSON(w.State), q.d.Time(w.UpdatedAt))
	}
	if err != nil {
		return fmt.Errorf("store window of trigger rule %d: %w", w.RuleID, err)
	}
	return nil
}

// RuleWindows returns the stored windows.
func (q *Queries) RuleWindows(ctx context.Context) ([]store.RuleWindow, error) {
	return collect(ctx, q, "rule windows", func(row Row) (store.RuleWindow, error) {
		var (
			w       store.RuleWindow
			state   []byte
			updated time.Time
		)
		if err := row.Scan(&w.RuleID, &w.GroupKey, &state, Time(&updated)); err != nil {
			return w, err
		}
		w.State, w.UpdatedAt = state, updated
		return w, nil
	}, `SELECT rule_id, group_key, state, updated_at FROM `+q.windows())
}

// PruneRuleWindows deletes the windows last updated before before and
// those of rules that are gone or inactive.
func (q *Queries) PruneRuleWindows(ctx context.Context, before time.Time) (int64, error) {
	n, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.windows()+` WHERE updated_at < ?
		OR rule_id NOT IN (SELECT id FROM `+q.triggerRules()+` WHERE COALESCE(active, TRUE))`), q.d.Time(before))
	if err != nil {
		return 0, fmt.Errorf("%s: prune rule windows: %w", q.d.Name, err)
	}
	return n, nil
}
