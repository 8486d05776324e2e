package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// The tables of the rules schema.
const (
	TriggerRuleTable      = "trigger_rules"
	ResponseTemplateTable = "response_templates"
	RuleExecutionTable    = "rule_executions"
)

// Column sizes of the rules tables (the seed's VARCHARs), in characters.
const (
	MaxRuleNameLen    = 200
	MaxSeverityLen    = 20
	MaxTemplateType   = 50
	MaxStatusLen      = 50
	maxGroupByItemLen = 256
)

func (q *Queries) triggerRules() string { return q.d.Table("rules", TriggerRuleTable) }
func (q *Queries) templates() string    { return q.d.Table("rules", ResponseTemplateTable) }
func (q *Queries) executions() string   { return q.d.Table("rules", RuleExecutionTable) }

const ruleSelect = `id, rule_name, COALESCE(rule_description, ''), event_conditions, COALESCE(severity_threshold, ''),
	COALESCE(time_window_minutes, 0), min_count, group_by, COALESCE(max_triggers_per_hour, 10), COALESCE(active, TRUE),
	COALESCE(created_by_key, ''), created_at, updated_at, firings, suppressed_firings, last_fired_at`

// ruleArgs are the values of the columns of r that CreateTriggerRule and
// UpdateTriggerRule write, in ruleCols order.
func (q *Queries) ruleArgs(r store.TriggerRule) []any {
	if r.GroupBy == nil {
		r.GroupBy = []string{}
	}
	return []any{
		store.CleanText(r.Name, MaxRuleNameLen), store.CleanText(r.Description, 0),
		q.d.JSON(store.CleanJSON(r.Conditions)), nullText(r.SeverityThreshold, MaxSeverityLen),
		r.TimeWindowMinutes, r.MinCount, q.d.Strings(r.GroupBy, maxGroupByItemLen), r.MaxTriggersPerHour, r.Active,
	}
}

// CreateTriggerRule stores a new rule and returns it as stored.
func (q *Queries) CreateTriggerRule(ctx context.Context, r store.TriggerRule) (store.TriggerRule, error) {
	now := q.now()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	args := append(q.ruleArgs(r), nullText(r.CreatedBy, 0), q.d.Time(r.CreatedAt), q.d.Time(r.UpdatedAt))
	var id int64
	err := q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.triggerRules()+` (rule_name, rule_description, event_conditions,
		severity_threshold, time_window_minutes, min_count, group_by, max_triggers_per_hour, active,
		created_by_key, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`), args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TriggerRule{}, fmt.Errorf("%s: create trigger rule %q: a rule of this name exists: %w", q.d.Name, r.Name, store.ErrConflict)
	}
	if err != nil {
		return store.TriggerRule{}, fmt.Errorf("%s: create trigger rule %q: %w", q.d.Name, r.Name, err)
	}
	return q.TriggerRule(ctx, id)
}

func (q *Queries) scanRule(row Row) (store.TriggerRule, error) {
	var (
		r                       store.TriggerRule
		conds                   []byte
		created, updated, fired time.Time
		bad                     error
	)
	if err := row.Scan(&r.ID, &r.Name, &r.Description, &conds, &r.SeverityThreshold, &r.TimeWindowMinutes,
		&r.MinCount, q.d.StringsDest(&r.GroupBy, &bad), &r.MaxTriggersPerHour, &r.Active, &r.CreatedBy,
		Time(&created), Time(&updated), &r.Firings, &r.SuppressedFirings, Time(&fired)); err != nil {
		return r, err
	}
	if !fired.IsZero() {
		r.LastFiredAt = &fired
	}
	if bad != nil {
		return r, fmt.Errorf("decode group_by of trigger rule %d: %w", r.ID, bad)
	}
	if r.GroupBy == nil {
		r.GroupBy = []string{}
	}
	r.Conditions = json.RawMessage(conds)
	r.CreatedAt, r.UpdatedAt = created, updated
	return r, nil
}

// TriggerRule returns the rule with this id.
func (q *Queries) TriggerRule(ctx context.Context, id int64) (store.TriggerRule, error) {
	return byID(ctx, q, "trigger rule", ruleSelect, q.triggerRules(), id, q.scanRule)
}

// TriggerRules lists the rules by id, only those whose active is *active
// when active is set.
func (q *Queries) TriggerRules(ctx context.Context, active *bool) ([]store.TriggerRule, error) {
	var w Where
	if active != nil {
		w.Add(`COALESCE(active, TRUE) = ?`, *active)
	}
	return collect(ctx, q, "trigger rules", q.scanRule, `SELECT `+ruleSelect+` FROM `+q.triggerRules()+w.Clause()+` ORDER BY id`, w.Args()...)
}

// UpdateTriggerRule replaces the rule r.ID and returns it as stored.
func (q *Queries) UpdateTriggerRule(ctx context.Context, r store.TriggerRule) (store.TriggerRule, error) {
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = q.now()
	}
	args := append(q.ruleArgs(r), q.d.Time(r.UpdatedAt), r.ID, store.CleanText(r.Name, MaxRuleNameLen), r.ID)
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.triggerRules()+` SET rule_name = ?, rule_description = ?,
		event_conditions = ?, severity_threshold = ?, time_window_minutes = ?, min_count = ?, group_by = ?,
		max_triggers_per_hour = ?, active = ?, updated_at = ?
		WHERE id = ? AND NOT EXISTS (SELECT 1 FROM `+q.triggerRules()+` o WHERE o.rule_name = ? AND o.id <> ?)`), args...)
	if err != nil {
		return store.TriggerRule{}, fmt.Errorf("%s: update trigger rule %d: %w", q.d.Name, r.ID, err)
	}
	if n == 0 {
		if _, err := q.TriggerRule(ctx, r.ID); err != nil {
			return store.TriggerRule{}, err
		}
		return store.TriggerRule{}, fmt.Errorf("%s: update trigger rule %d: another rule is named %q: %w", q.d.Name, r.ID, r.Name, store.ErrConflict)
	}
	return q.TriggerRule(ctx, r.ID)
}

// DeleteTriggerRule deletes the rule unless a template or an execution
// refers to it.
func (q *Queries) DeleteTriggerRule(ctx context.Context, id int64) error {
	n, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.triggerRules()+` WHERE id = ?
		AND NOT EXISTS (SELECT 1 FROM `+q.templates()+` WHERE trigger_rule_id = ?)
		AND NOT EXISTS (SELECT 1 FROM `+q.executions()+` WHERE trigger_rule_id = ?)`), id, id, id)
	if err != nil {
		return fmt.Errorf("%s: delete trigger rule %d: %w", q.d.Name, id, err)
	}
	if n == 0 {
		if _, err := q.TriggerRule(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("%s: delete trigger rule %d: response templates or executions refer to it: %w", q.d.Name, id, store.ErrConflict)
	}
	// Its windows go with it; PruneRuleWindows removes any left behind.
	if _, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.windows()+` WHERE rule_id = ?`), id); err != nil {
		return fmt.Errorf("%s: delete windows of trigger rule %d: %w", q.d.Name, id, err)
	}
	return nil
}

const templateSelect = `id, template_name, template_type, COALESCE(trigger_rule_id, 0), response_definition,
	COALESCE(approval_required, FALSE), COALESCE(rollback_supported, FALSE), COALESCE(max_execution_time_minutes, 30),
	COALESCE(active, TRUE), created_at`

func (q *Queries) templateArgs(t store.ResponseTemplate) []any {
	return []any{
		store.CleanText(t.Name, MaxRuleNameLen), store.CleanText(t.Type, MaxTemplateType), t.TriggerRuleID,
		q.d.JSON(store.CleanJSON(t.Definition)), t.ApprovalRequired, t.RollbackSupported, t.MaxExecutionTimeMinutes, t.Active,
	}
}

// ruleMissing is the error of a template or an execution whose trigger
// rule does not exist, or nil when it does.
func (q *Queries) ruleMissing(ctx context.Context, what string, ruleID int64) error {
	_, err := q.TriggerRule(ctx, ruleID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s: %s: no trigger rule %d: %w", q.d.Name, what, ruleID, store.ErrNotFound)
	}
	return err
}

// CreateResponseTemplate stores a new template and returns it as stored.
func (q *Queries) CreateResponseTemplate(ctx context.Context, t store.ResponseTemplate) (store.ResponseTemplate, error) {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = q.now()
	}
	what := fmt.Sprintf("create response template %q", t.Name)
	args := append(q.templateArgs(t), q.d.Time(t.CreatedAt), t.TriggerRuleID)
	var id int64
	err := q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.templates()+` (template_name, template_type, trigger_rule_id,
		response_definition, approval_required, rollback_supported, max_execution_time_minutes, active, created_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM `+q.triggerRules()+` WHERE id = ?)
		ON CONFLICT DO NOTHING RETURNING id`), args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		if err := q.ruleMissing(ctx, what, t.TriggerRuleID); err != nil {
			return store.ResponseTemplate{}, err
		}
		return store.ResponseTemplate{}, fmt.Errorf("%s: %s: a template of this name exists: %w", q.d.Name, what, store.ErrConflict)
	}
	if err != nil {
		return store.ResponseTemplate{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return q.ResponseTemplate(ctx, id)
}

func scanTemplate(row Row) (store.ResponseTemplate, error) {
	var (
		t       store.ResponseTemplate
		def     []byte
		created time.Time
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Type, &t.TriggerRuleID, &def, &t.ApprovalRequired, &t.RollbackSupported,
		&t.MaxExecutionTimeMinutes, &t.Active, Time(&created)); err != nil {
		return t, err
	}
	t.Definition, t.CreatedAt = json.RawMessage(def), created
	return t, nil
}

// ResponseTemplate returns the template with this id.
func (q *Queries) ResponseTemplate(ctx context.Context, id int64) (store.ResponseTemplate, error) {
	return byID(ctx, q, "response template", templateSelect, q.templates(), id, scanTemplate)
}

// ResponseTemplates lists the templates by id, only those whose active is
// *active when active is set.
func (q *Queries) ResponseTemplates(ctx context.Context, active *bool) ([]store.ResponseTemplate, error) {
	var w Where
	if active != nil {
		w.Add(`COALESCE(active, TRUE) = ?`, *active)
	}
	return collect(ctx, q, "response templates", scanTemplate, `SELECT `+templateSelect+` FROM `+q.templates()+w.Clause()+` ORDER BY id`, w.Args()...)
}

// UpdateResponseTemplate replaces the template t.ID and returns it as
// stored.
func (q *Queries) UpdateResponseTemplate(ctx context.Context, t store.ResponseTemplate) (store.ResponseTemplate, error) {
	what := fmt.Sprintf("update response template %d", t.ID)
	args := append(q.templateArgs(t), t.ID, t.TriggerRuleID, store.CleanText(t.Name, MaxRuleNameLen), t.ID)
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.templates()+` SET template_name = ?, template_type = ?,
		trigger_rule_id = ?, response_definition = ?, approval_required = ?, rollback_supported = ?,
		max_execution_time_minutes = ?, active = ?
		WHERE id = ? AND EXISTS (SELECT 1 FROM `+q.triggerRules()+` WHERE id = ?)
		AND NOT EXISTS (SELECT 1 FROM `+q.templates()+` o WHERE o.template_name = ? AND o.id <> ?)`), args...)
	if err != nil {
		return store.ResponseTemplate{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	if n == 0 {
		if _, err := q.ResponseTemplate(ctx, t.ID); err != nil {
			return store.ResponseTemplate{}, err
		}
		if err := q.ruleMissing(ctx, what, t.TriggerRuleID); err != nil {
			return store.ResponseTemplate{}, err
		}
		return store.ResponseTemplate{}, fmt.Errorf("%s: %s: another template is named %q: %w", q.d.Name, what, t.Name, store.ErrConflict)
	}
	return q.ResponseTemplate(ctx, t.ID)
}

// DeleteResponseTemplate deletes the template unless an execution refers
// to it.
func (q *Queries) DeleteResponseTemplate(ctx context.Context, id int64) error {
	n, err := q.w.Exec(ctx, q.d.Rebind(`DELETE FROM `+q.templates()+` WHERE id = ?
		AND NOT EXISTS (SELECT 1 FROM `+q.executions()+` WHERE response_template_id = ?)`), id, id)
	if err != nil {
		return fmt.Errorf("%s: delete response template %d: %w", q.d.Name, id, err)
	}
	if n == 0 {
		if _, err := q.ResponseTemplate(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("%s: delete response template %d: executions refer to it: %w", q.d.Name, id, store.ErrConflict)
	}
	return nil
}

const executionSelect = `id, COALESCE(trigger_rule_id, 0), response_template_id, COALESCE(triggering_event_id, 0),
	execution_status, started_at, completed_at, execution_result, COALESCE(error_message, ''),
	COALESCE(triggering_raw_event_id, 0), COALESCE(human_feedback, ''), COALESCE(feedback_notes, '')`

// InsertRuleExecution records an execution and returns it as stored.
func (q *Queries) InsertRuleExecution(ctx context.Context, x store.RuleExecution) (store.RuleExecution, error) {
	if x.StartedAt.IsZero() {
		x.StartedAt = q.now()
	}
	what := fmt.Sprintf("insert execution of trigger rule %d", x.TriggerRuleID)
	id, err := q.insertExecution(ctx, x)
	if errors.Is(err, sql.ErrNoRows) {
		if err := q.ruleMissing(ctx, what, x.TriggerRuleID); err != nil {
			return store.RuleExecution{}, err
		}
		return store.RuleExecution{}, fmt.Errorf("%s: %s: no response template %d: %w", q.d.Name, what, *x.ResponseTemplateID, store.ErrNotFound)
	}
	if err != nil {
		return store.RuleExecution{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return q.RuleExecution(ctx, id)
}

// insertExecution inserts x (its StartedAt set) unless its rule or its
// template does not exist, and returns its id. No row inserted is
// sql.ErrNoRows.
func (q *Queries) insertExecution(ctx context.Context, x store.RuleExecution) (int64, error) {
	var (
		tmpl, completed, result, raw any
		cond                         = `EXISTS (SELECT 1 FROM ` + q.triggerRules() + ` WHERE id = ?)`
		condArgs                     = []any{x.TriggerRuleID}
	)
	if x.ResponseTemplateID != nil {
		tmpl = *x.ResponseTemplateID
		cond += ` AND EXISTS (SELECT 1 FROM ` + q.templates() + ` WHERE id = ?)`
		condArgs = append(condArgs, *x.ResponseTemplateID)
	}
	if x.CompletedAt != nil {
		completed = q.d.Time(*x.CompletedAt)
	}
	if x.Result != nil {
		result = q.d.JSON(store.CleanJSON(x.Result))
	}
	if x.TriggeringRawEventID != 0 {
		raw = x.TriggeringRawEventID
	}
	args := append([]any{x.TriggerRuleID, tmpl, x.TriggeringEventID, raw, store.CleanText(x.Status, MaxStatusLen),
		q.d.Time(x.StartedAt), completed, result, nullText(x.Error, 0)}, condArgs...)
	var id int64
	err := q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.executions()+` (trigger_rule_id, response_template_id,
		triggering_event_id, triggering_raw_event_id, execution_status, started_at, completed_at, execution_result,
		error_message)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE `+cond+` RETURNING id`), args...).Scan(&id)
	return id, err
}

func scanExecution(row Row) (store.RuleExecution, error) {
	var (
		x                  store.RuleExecution
		tmpl               sql.NullInt64
		started, completed time.Time
		result             []byte
	)
	if err := row.Scan(&x.ID, &x.TriggerRuleID, &tmpl, &x.TriggeringEventID, &x.Status, Time(&started),
		Time(&completed), &result, &x.Error, &x.TriggeringRawEventID, &x.HumanFeedback, &x.FeedbackNotes); err != nil {
		return x, err
	}
	if tmpl.Valid {
		x.ResponseTemplateID = &tmpl.Int64
	}
	x.StartedAt = started
	if !completed.IsZero() {
		x.CompletedAt = &completed
	}
	if result != nil {
		x.Result = json.RawMessage(result)
	}
	return x, nil
}

// RuleExecution returns the execution with this id.
func (q *Queries) RuleExecution(ctx context.Context, id int64) (store.RuleExecution, error) {
	return byID(ctx, q, "rule execution", executionSelect, q.executions(), id, scanExecution)
}

// UpdateRuleExecution sets the status of the execution u.ID and those of
// its template, result, error and completion time that u sets, in one
// statement. A template that does not exist is store.ErrNotFound, as is
// an unknown id; an empty status is an error.
func (q *Queries) UpdateRuleExecution(ctx context.Context, u store.RuleExecutionUpdate) (store.RuleExecution, error) {
	what := fmt.Sprintf("update rule execution %d", u.ID)
	if u.Status == "" {
		return store.RuleExecution{}, fmt.Errorf("%s: %s: empty status", q.d.Name, what)
	}
	set := []string{"execution_status = ?"}
	args := []any{store.CleanText(u.Status, MaxStatusLen)}
	if u.ResponseTemplateID != nil {
		set, args = append(set, "response_template_id = ?"), append(args, *u.ResponseTemplateID)
	}
	if len(u.Result) > 0 {
		set, args = append(set, "execution_result = ?"), append(args, q.d.JSON(store.CleanJSON(u.Result)))
	}
	if u.Error != "" {
		set, args = append(set, "error_message = ?"), append(args, store.CleanText(u.Error, 0))
	}
	if u.CompletedAt != nil {
		set, args = append(set, "completed_at = ?"), append(args, q.d.Time(*u.CompletedAt))
	}
	cond := "id = ?"
	args = append(args, u.ID)
	if u.ResponseTemplateID != nil {
		cond += ` AND EXISTS (SELECT 1 FROM ` + q.templates() + ` WHERE id = ?)`
		args = append(args, *u.ResponseTemplateID)
	}
	x, err := scanExecution(q.w.QueryRow(ctx, q.d.Rebind(`UPDATE `+q.executions()+` SET `+strings.Join(set, ", ")+
		` WHERE `+cond+` RETURNING `+executionSelect), args...))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := q.RuleExecution(ctx, u.ID); err != nil {
			return store.RuleExecution{}, err
		}
		return store.RuleExecution{}, fmt.Errorf("%s: %s: no response template %d: %w", q.d.Name, what, *u.ResponseTemplateID, store.ErrNotFound)
	}
	if err != nil {
		return store.RuleExecution{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return x, nil
}

// SetRuleExecutionFeedback records a human's feedback and notes on the
// execution id, in one statement; "" clears them.
func (q *Queries) SetRuleExecutionFeedback(ctx context.Context, id int64, feedback, notes string) (store.RuleExecution, error) {
	x, err := scanExecution(q.w.QueryRow(ctx, q.d.Rebind(`UPDATE `+q.executions()+
		` SET human_feedback = ?, feedback_notes = ? WHERE id = ? RETURNING `+executionSelect),
		nullText(feedback, maxFeedbackLen), nullText(notes, 0), id))
	if errors.Is(err, sql.ErrNoRows) {
		return x, fmt.Errorf("%s: feedback on rule execution %d: %w", q.d.Name, id, store.ErrNotFound)
	}
	if err != nil {
		return x, fmt.Errorf("%s: feedback on rule execution %d: %w", q.d.Name, id, err)
	}
	return x, nil
}

// byID reads the row of table with this id (its columns cols) with scan;
// what names the row in errors. No row is store.ErrNotFound.
func byID[T any](ctx context.Context, q *Queries, what, cols, table string, id int64, scan func(Row) (T, error)) (T, error) {
	v, err := scan(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+cols+` FROM `+table+` WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%s: %s %d: %w", q.d.Name, what, id, store.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("%s: %s %d: %w", q.d.Name, what, id, err)
	}
	return v, nil
}

// RuleExecutions lists executions, newest first.
func (q *Queries) RuleExecutions(ctx context.Context, rq store.RuleExecutionQuery) ([]store.RuleExecution, error) {
	var w Where
	if rq.RuleID != 0 {
		w.Add(`trigger_rule_id = ?`, rq.RuleID)
	}
	if rq.Status != "" {
		w.Add(`execution_status = ?`, store.CleanText(rq.Status, 0))
	}
	if !rq.Since.IsZero() {
		w.Add(`started_at >= ?`, q.d.Time(rq.Since))
	}
	limit := rq.Limit
	if limit <= 0 {
		limit = store.DefaultExecutionLimit
	}
	limit = min(limit, store.MaxExecutionLimit)
	return collect(ctx, q, "rule executions", scanExecution, `SELECT `+executionSelect+` FROM `+q.executions()+w.Clause()+
		fmt.Sprintf(` ORDER BY started_at DESC, id DESC LIMIT %d`, limit), w.Args()...)
}

var _ store.RuleStore = (*Queries)(nil)
