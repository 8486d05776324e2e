package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
		stored, err := tx.recordExecutions(ctx, b.Executions)
		if err != nil {
			return err
		}
		copy(out, stored)
		for _, c := range b.Counts {
			if err := tx.addCounts(ctx, c); err != nil {
				return err
			}
		}
		if err := tx.putWindows(ctx, b.Windows); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: record firings: %w", q.d.Name, err)
	}
	return out, nil
}

// executionChunk is how many executions one INSERT writes (ten
// parameters each, far below either database's limit).
const executionChunk = 200

var executionCols = []string{"trigger_rule_id", "response_template_id", "triggering_event_id", "triggering_raw_event_id",
	"execution_status", "started_at", "completed_at", "execution_result", "error_message"}

type occurrenceKey struct{ rule, raw int64 }

// recordExecutions inserts the executions of xs that their rules do not
// have yet for their occurrences, counts them in their rules' firings,
// and returns every one as stored, in order (the zero execution for one
// whose rule does not exist). q runs in a transaction.
func (q *Queries) recordExecutions(ctx context.Context, xs []store.RuleExecution) ([]store.RuleExecution, error) {
	out := make([]store.RuleExecution, len(xs))
	if len(xs) == 0 {
		return out, nil
	}
	xs = slices.Clone(xs) // stamped below, not the caller's
	var ruleIDs, tmplIDs []int64
	for _, x := range xs {
		if x.TriggeringRawEventID == 0 {
			return nil, fmt.Errorf("execution of trigger rule %d: no TriggeringRawEventID", x.TriggerRuleID)
		}
		ruleIDs = append(ruleIDs, x.TriggerRuleID)
		if x.ResponseTemplateID != nil {
			tmplIDs = append(tmplIDs, *x.ResponseTemplateID)
		}
	}
	rules, err := q.existing(ctx, q.triggerRules(), ruleIDs)
	if err != nil {
		return nil, err
	}
	tmpls, err := q.existing(ctx, q.templates(), tmplIDs)
	if err != nil {
		return nil, err
	}
	now := q.now()
	var rows []int // indexes into xs of the executions to insert
	for i := range xs {
		x := &xs[i]
		if !rules[x.TriggerRuleID] {
			continue // the rule was deleted meanwhile
		}
		if x.StartedAt.IsZero() {
			x.StartedAt = now
		}
		x.StartedAt = x.StartedAt.UTC().Truncate(time.Microsecond)
		if x.ResponseTemplateID != nil && !tmpls[*x.ResponseTemplateID] {
			x.ResponseTemplateID = nil // the template was deleted meanwhile
		}
		rows = append(rows, i)
	}
	inserted := map[occurrenceKey]int64{}
	for start := 0; start < len(rows); start += executionChunk {
		chunk := rows[start:min(start+executionChunk, len(rows))]
		args := make([]any, 0, len(chunk)*len(executionCols))
		for _, i := range chunk {
			x := xs[i]
			var tmpl, completed, result any
			if x.ResponseTemplateID != nil {
				tmpl = *x.ResponseTemplateID
			}
			if x.CompletedAt != nil {
				completed = q.d.Time(*x.CompletedAt)
			}
			if x.Result != nil {
				result = q.d.JSON(store.CleanJSON(x.Result))
			}
			args = append(args, x.TriggerRuleID, tmpl, x.TriggeringEventID, x.TriggeringRawEventID,
				store.CleanText(x.Status, MaxStatusLen), q.d.Time(x.StartedAt), completed, result, nullText(x.Error, 0))
		}
		rs, err := q.w.Query(ctx, q.d.InsertSQL(q.executions(), executionCols, len(chunk))+
			` RETURNING id, trigger_rule_id, triggering_raw_event_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("insert executions: %w", err)
		}
		for rs.Next() {
			var id int64
			var k occurrenceKey
			if err := rs.Scan(&id, &k.rule, &k.raw); err != nil {
				rs.Close()
				return nil, fmt.Errorf("insert executions: %w", err)
			}
			inserted[k] = id
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, fmt.Errorf("insert executions: %w", err)
		}
	}
	fired := map[int64]int64{}    // rule: executions inserted
	last := map[int64]time.Time{} // rule: the latest inserted StartedAt
	for _, i := range rows {
		x := xs[i]
		k := occurrenceKey{x.TriggerRuleID, x.TriggeringRawEventID}
		if id, ok := inserted[k]; ok {
			x.ID = id
			out[i] = x
			fired[k.rule]++
			if x.StartedAt.After(last[k.rule]) {
				last[k.rule] = x.StartedAt
			}
			continue
		}
		// A redelivered firing: its execution exists.
		old, err := q.OccurrenceExecution(ctx, k.rule, k.raw)
		if err != nil {
			return nil, err
		}
		out[i] = old
	}
	for id, n := range fired {
		if _, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.triggerRules()+` SET firings = firings + ?, last_fired_at = ? WHERE id = ?`),
			n, q.d.Time(last[id]), id); err != nil {
			return nil, fmt.Errorf("count the firings of trigger rule %d: %w", id, err)
		}
	}
	return out, nil
}

// existing returns which of ids are ids of table.
func (q *Queries) existing(ctx context.Context, table string, ids []int64) (map[int64]bool, error) {
	found := map[int64]bool{}
	if len(ids) == 0 {
		return found, nil
	}
	rs, err := q.r.Query(ctx, q.d.Rebind(`SELECT id FROM `+table+` WHERE `+q.d.InList("id")), q.d.Ints(ids))
	if err != nil {
		return nil, fmt.Errorf("read ids of %s: %w", table, err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("read ids of %s: %w", table, err)
		}
		found[id] = true
	}
	return found, rs.Err()
}

// addCounts adds c to its rule's counter.
func (q *Queries) addCounts(ctx context.Context, c store.RuleCount) error {
	if _, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.triggerRules()+` SET suppressed_firings = suppressed_firings + ? WHERE id = ?`),
		c.Suppressed, c.RuleID); err != nil {
		return fmt.Errorf("count firings of trigger rule %d: %w", c.RuleID, err)
	}
	return nil
}

// windowChunk is how many windows one upsert writes.
const windowChunk = 200

// putWindows stores ws, deleting those whose State is nil; of a rule and
// group key listed twice the last counts.
func (q *Queries) putWindows(ctx context.Context, ws []store.RuleWindow) error {
	type key struct {
		rule  int64
		group string
	}
	last := make(map[key]int, len(ws))
	for i, w := range ws {
		last[key{w.RuleID, w.GroupKey}] = i
	}
	var put []store.RuleWindow
	for i, w := range ws {
		if last[key{w.RuleID, w.GroupKey}] != i {
			continue
		}
		if w.State != nil {
			put = append(put, w)
			continue
		}
		if _, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.windows()+` WHERE rule_id = ? AND group_key = ?`),
			w.RuleID, store.CleanText(w.GroupKey, 0)); err != nil {
			return fmt.Errorf("delete window of trigger rule %d: %w", w.RuleID, err)
		}
	}
	now := q.now()
	for start := 0; start < len(put); start += windowChunk {
		chunk := put[start:min(start+windowChunk, len(put))]
		args := make([]any, 0, 4*len(chunk))
		for _, w := range chunk {
			if w.UpdatedAt.IsZero() {
				w.UpdatedAt = now
			}
			args = append(args, w.RuleID, store.CleanText(w.GroupKey, 0), q.d.JSON(w.State), q.d.Time(w.UpdatedAt))
		}
		if _, err := q.w.Exec(ctx, q.d.ValuesSQL(q.windows(), []string{"rule_id", "group_key", "state", "updated_at"}, len(chunk))+
			` ON CONFLICT (rule_id, group_key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`, args...); err != nil {
			return fmt.Errorf("store windows: %w", err)
		}
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
