package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// The tables of the autonomous service, in the autonomous schema.
const (
	DecisionTable  = "decision_log"
	ExecutionTable = "executions"
	ApprovalTable  = "approvals"
	LearningTable  = "learning_data"
	SettingTable   = "settings"
)

// Column sizes of the seed's VARCHARs of decision_log and
// rule_executions, in characters.
const (
	maxDecisionTypeLen = 50
	maxOutcomeLen      = 50
	maxFeedbackLen     = 20
)

// maxLearningRead bounds one LearningRecords.
const maxLearningRead = 10000

func (q *Queries) decisionTable() string  { return q.d.Table("autonomous", DecisionTable) }
func (q *Queries) autoExecTable() string  { return q.d.Table("autonomous", ExecutionTable) }
func (q *Queries) approvalTable() string  { return q.d.Table("autonomous", ApprovalTable) }
func (q *Queries) learningTable() string  { return q.d.Table("autonomous", LearningTable) }
func (q *Queries) settingTable() string   { return q.d.Table("autonomous", SettingTable) }
func (q *Queries) processedTable() string { return q.d.Table("events", ProcessedTable) }

// decisionLimit is the LIMIT of a list query asking for n rows:
// store.DefaultDecisionLimit for 0 (or less), at most
// store.MaxDecisionLimit.
func decisionLimit(n int) string {
	if n <= 0 {
		n = store.DefaultDecisionLimit
	}
	return strconv.Itoa(min(n, store.MaxDecisionLimit))
}

// placeholders is "?, ?, ... ?", n of them.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// optTime is the stored value of an optional time: NULL for nil.
func (q *Queries) optTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return q.d.Time(*t)
}

// optInt is the stored value of an optional id: NULL for nil.
func optInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// timePtr is t, nil for the zero time (a NULL column).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// intPtr is the value of a nullable id column.
func intPtr(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

// rawJSON is the stored value of a free JSON document: NULL when empty,
// else cleaned (store.CleanJSON).
func (q *Queries) rawJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return q.d.JSON(store.CleanJSON(b))
}

// docJSON is the stored value of v encoded as JSON (cleaned: the \u0000
// escapes of captured output, which JSONB refuses, are removed).
func (q *Queries) docJSON(what string, v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	return q.d.JSON(store.CleanJSON(b)), nil
}

// readJSON is a stored JSON column as read, nil for NULL.
func readJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(b)
}

// decodeJSON decodes the JSON column b (NULL leaves *v as it is).
func decodeJSON(what string, id int64, b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s of row %d: %w", what, id, err)
	}
	return nil
}

// confidence is c as decision_log keeps it: two decimals. A value out
// of [0, 1] (or NaN) is an error, not clamped.
func confidence(c float64) (float64, error) {
	if math.IsNaN(c) || c < 0 || c > 1 {
		return 0, fmt.Errorf("confidence %v is not in [0, 1]", c)
	}
	return math.Round(c*100) / 100, nil
}

// ---- decisions

const decisionSelect = `id, COALESCE(event_id, 0), incident_id, rule_execution_id, rule_id, source_host, pattern,
	decision_type, confidence_score, reasoning, factors, recommended_actions, evidence, engine, context, requested_by,
	COALESCE(human_override, FALSE), COALESCE(override_reason, ''), COALESCE(decision_outcome, ''), feedback,
	feedback_notes, feedback_suggestions, feedback_by, feedback_at, acknowledged_at, resolved_at, created_at`

const decisionCols = `event_id, incident_id, rule_execution_id, rule_id, source_host, pattern, decision_type,
	confidence_score, reasoning, factors, recommended_actions, evidence, engine, context, requested_by, human_override,
	override_reason, decision_outcome, feedback, feedback_notes, feedback_suggestions, feedback_by, feedback_at,
	acknowledged_at, resolved_at, created_at`

func scanDecision(row Row) (store.Decision, error) {
	var (
		d                         store.Decision
		incident, firing, rule    sql.NullInt64
		factors, recs, ev, dctx   []byte
		fbAt, ackAt, resAt, creat time.Time
	)
	if err := row.Scan(&d.ID, &d.EventID, &incident, &firing, &rule, &d.SourceHost, &d.Pattern, &d.DecisionType,
		&d.Confidence, &d.Reasoning, &factors, &recs, &ev, &d.Engine, &dctx, &d.RequestedBy, &d.HumanOverride,
		&d.OverrideReason, &d.Outcome, &d.Feedback, &d.FeedbackNotes, &d.FeedbackSuggestions, &d.FeedbackBy,
		Time(&fbAt), Time(&ackAt), Time(&resAt), Time(&creat)); err != nil {
		return d, err
	}
	d.IncidentID, d.RuleExecutionID, d.RuleID = intPtr(incident), intPtr(firing), intPtr(rule)
	d.Evidence, d.Context = readJSON(ev), readJSON(dctx)
	d.FeedbackAt, d.AcknowledgedAt, d.ResolvedAt, d.CreatedAt = timePtr(fbAt), timePtr(ackAt), timePtr(resAt), creat
	if err := decodeJSON("factors", d.ID, factors, &d.Factors); err != nil {
		return d, err
	}
	if err := decodeJSON("recommended_actions", d.ID, recs, &d.RecommendedActions); err != nil {
		return d, err
	}
	if d.Factors == nil {
		d.Factors = []store.Factor{}
	}
	if d.RecommendedActions == nil {
		d.RecommendedActions = []store.Recommendation{}
	}
	return d, nil
}

// InsertDecision stores d under a new id, in one statement that inserts
// nothing when d's event does not exist or when the partial unique
// indexes on incident_id and rule_execution_id hold a decision already;
// the stored decision is then returned with store.ErrConflict, and a
// missing event is store.ErrNotFound. The confidence is stored rounded
// to two decimals; one out of [0, 1] is an error.
func (q *Queries) InsertDecision(ctx context.Context, d store.Decision) (store.Decision, error) {
	what := fmt.Sprintf("insert decision about event %d", d.EventID)
	c, err := confidence(d.Confidence)
	if err != nil {
		return store.Decision{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = q.microNow()
	}
	factors, err := q.docJSON("factors", nonNil(d.Factors))
	if err != nil {
		return store.Decision{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	recs, err := q.docJSON("recommended_actions", nonNil(d.RecommendedActions))
	if err != nil {
		return store.Decision{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	args := []any{
		d.EventID, optInt(d.IncidentID), optInt(d.RuleExecutionID), optInt(d.RuleID),
		store.CleanText(d.SourceHost, 0), store.CleanText(d.Pattern, 0),
		store.CleanText(d.DecisionType, maxDecisionTypeLen), c, store.CleanText(d.Reasoning, 0),
		factors, recs, q.rawJSON(d.Evidence), store.CleanText(d.Engine, 0), q.rawJSON(d.Context),
		store.CleanText(d.RequestedBy, 0), d.HumanOverride, nullText(d.OverrideReason, 0),
		nullText(d.Outcome, maxOutcomeLen), store.CleanText(d.Feedback, maxFeedbackLen),
		store.CleanText(d.FeedbackNotes, 0), store.CleanText(d.FeedbackSuggestions, 0),
		store.CleanText(d.FeedbackBy, 0), q.optTime(d.FeedbackAt), q.optTime(d.AcknowledgedAt),
		q.optTime(d.ResolvedAt), q.d.Time(d.CreatedAt), d.EventID,
	}
	var out store.Decision
	err = q.inTx(ctx, func(tx *Queries) error {
		var err error
		out, err = scanDecision(tx.w.QueryRow(ctx, tx.d.Rebind(`INSERT INTO `+tx.decisionTable()+` (`+decisionCols+`)
			SELECT `+placeholders(26)+` WHERE EXISTS (SELECT 1 FROM `+tx.processedTable()+` WHERE id = ?)
			ON CONFLICT DO NOTHING RETURNING `+decisionSelect), args...))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if d.IncidentID != nil {
			out, err = tx.decisionBy(ctx, "incident_id", *d.IncidentID)
			if err == nil {
				return fmt.Errorf("incident %d has decision %d already: %w", *d.IncidentID, out.ID, store.ErrConflict)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if d.RuleExecutionID != nil {
			out, err = tx.decisionBy(ctx, "rule_execution_id", *d.RuleExecutionID)
			if err == nil {
				return fmt.Errorf("rule execution %d has decision %d already: %w", *d.RuleExecutionID, out.ID, store.ErrConflict)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		out = store.Decision{}
		return fmt.Errorf("no event %d: %w", d.EventID, store.ErrNotFound)
	})
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return out, nil
}

// nonNil is s, or an empty slice for nil (stored as [], not null).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// decisionBy reads the decision whose col (a column of this package) is
// v; none is sql.ErrNoRows.
func (q *Queries) decisionBy(ctx context.Context, col string, v int64) (store.Decision, error) {
	return scanDecision(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+decisionSelect+` FROM `+q.decisionTable()+` WHERE `+col+` = ?`), v))
}

// Decision returns the decision with this id.
func (q *Queries) Decision(ctx context.Context, id int64) (store.Decision, error) {
	return byID(ctx, q, "decision", decisionSelect, q.decisionTable(), id, scanDecision)
}

// Decisions lists decisions newest first as dq filters them.
func (q *Queries) Decisions(ctx context.Context, dq store.DecisionQuery) ([]store.Decision, error) {
	var w Where
	if dq.EventID != 0 {
		w.Add("event_id = ?", dq.EventID)
	}
	if dq.IncidentID != 0 {
		w.Add("incident_id = ?", dq.IncidentID)
	}
	if dq.RuleExecutionID != 0 {
		w.Add("rule_execution_id = ?", dq.RuleExecutionID)
	}
	if !dq.Since.IsZero() {
		w.Add("created_at >= ?", q.d.Time(dq.Since))
	}
	return collect(ctx, q, "decisions", scanDecision, `SELECT `+decisionSelect+` FROM `+q.decisionTable()+w.Clause()+
		` ORDER BY created_at DESC, id DESC LIMIT `+decisionLimit(dq.Limit), w.Args()...)
}

// UpdateDecision replaces the mutable fields of the decision d.ID, in
// one statement.
func (q *Queries) UpdateDecision(ctx context.Context, d store.Decision) (store.Decision, error) {
	out, err := scanDecision(q.w.QueryRow(ctx, q.d.Rebind(`UPDATE `+q.decisionTable()+` SET decision_type = ?,
		decision_outcome = ?, human_override = ?, override_reason = ?, feedback = ?, feedback_notes = ?,
		feedback_suggestions = ?, feedback_by = ?, feedback_at = ?, acknowledged_at = ?, resolved_at = ?
		WHERE id = ? RETURNING `+decisionSelect),
		store.CleanText(d.DecisionType, maxDecisionTypeLen), nullText(d.Outcome, maxOutcomeLen), d.HumanOverride,
		nullText(d.OverrideReason, 0), store.CleanText(d.Feedback, maxFeedbackLen), store.CleanText(d.FeedbackNotes, 0),
		store.CleanText(d.FeedbackSuggestions, 0), store.CleanText(d.FeedbackBy, 0), q.optTime(d.FeedbackAt),
		q.optTime(d.AcknowledgedAt), q.optTime(d.ResolvedAt), d.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("%s: update decision %d: %w", q.d.Name, d.ID, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("%s: update decision %d: %w", q.d.Name, d.ID, err)
	}
	return out, nil
}

// ---- executions

const autoExecSelect = `id, decision_id, template_id, rule_execution_id, status, dry_run, rollback_on_failure,
	requested_by, data, steps, rollback_steps, outcome, error_message, created_at, started_at, finished_at, updated_at`

func scanAutoExec(row Row) (store.Execution, error) {
	var (
		x                            store.Execution
		tmpl, firing                 sql.NullInt64
		data, steps, rollback        []byte
		created, started, fin, updat time.Time
	)
	if err := row.Scan(&x.ID, &x.DecisionID, &tmpl, &firing, &x.Status, &x.DryRun, &x.RollbackOnFailure,
		&x.RequestedBy, &data, &steps, &rollback, &x.Outcome, &x.Error, Time(&created), Time(&started), Time(&fin),
		Time(&updat)); err != nil {
		return x, err
	}
	x.TemplateID, x.RuleExecutionID, x.Data = intPtr(tmpl), intPtr(firing), readJSON(data)
	x.CreatedAt, x.StartedAt, x.FinishedAt, x.UpdatedAt = created, timePtr(started), timePtr(fin), updat
	if err := decodeJSON("steps", x.ID, steps, &x.Steps); err != nil {
		return x, err
	}
	if err := decodeJSON("rollback_steps", x.ID, rollback, &x.Rollback); err != nil {
		return x, err
	}
	if x.Steps == nil {
		x.Steps = []store.StepState{}
	}
	if len(x.Rollback) == 0 {
		x.Rollback = nil
	}
	return x, nil
}

// autoExecArgs are the values of the columns that InsertExecution and
// UpdateExecution both write: template_id, rule_execution_id, status,
// dry_run, rollback_on_failure, requested_by, data, steps,
// rollback_steps, outcome, error_message, started_at, finished_at.
func (q *Queries) autoExecArgs(x store.Execution) ([]any, error) {
	steps, err := q.docJSON("steps", nonNil(x.Steps))
	if err != nil {
		return nil, err
	}
	var rollback any
	if len(x.Rollback) > 0 {
		if rollback, err = q.docJSON("rollback steps", x.Rollback); err != nil {
			return nil, err
		}
	}
	return []any{
		optInt(x.TemplateID), optInt(x.RuleExecutionID), store.CleanText(x.Status, 0), x.DryRun, x.RollbackOnFailure,
		store.CleanText(x.RequestedBy, 0), q.rawJSON(x.Data), steps, rollback, store.CleanText(x.Outcome, 0),
		store.CleanText(x.Error, 0), q.optTime(x.StartedAt), q.optTime(x.FinishedAt),
	}, nil
}

// InsertExecution stores x under a new id unless its decision does not
// exist (store.ErrNotFound), in one statement.
func (q *Queries) InsertExecution(ctx context.Context, x store.Execution) (store.Execution, error) {
	what := fmt.Sprintf("insert execution of decision %d", x.DecisionID)
	if x.CreatedAt.IsZero() {
		x.CreatedAt = q.microNow()
	}
	if x.UpdatedAt.IsZero() {
		x.UpdatedAt = x.CreatedAt
	}
	args, err := q.autoExecArgs(x)
	if err != nil {
		return store.Execution{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	args = append([]any{x.DecisionID}, args...)
	args = append(args, q.d.Time(x.CreatedAt), q.d.Time(x.UpdatedAt), x.DecisionID)
	out, err := scanAutoExec(q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.autoExecTable()+` (decision_id, template_id,
		rule_execution_id, status, dry_run, rollback_on_failure, requested_by, data, steps, rollback_steps, outcome,
		error_message, started_at, finished_at, created_at, updated_at)
		SELECT `+placeholders(16)+` WHERE EXISTS (SELECT 1 FROM `+q.decisionTable()+` WHERE id = ?)
		RETURNING `+autoExecSelect), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("%s: %s: no decision %d: %w", q.d.Name, what, x.DecisionID, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return out, nil
}

// Execution returns the execution with this id.
func (q *Queries) Execution(ctx context.Context, id int64) (store.Execution, error) {
	return byID(ctx, q, "execution", autoExecSelect, q.autoExecTable(), id, scanAutoExec)
}

// Executions lists executions newest first as xq filters them. An empty
// Statuses is any status.
func (q *Queries) Executions(ctx context.Context, xq store.ExecutionQuery) ([]store.Execution, error) {
	var w Where
	if xq.DecisionID != 0 {
		w.Add("decision_id = ?", xq.DecisionID)
	}
	if len(xq.Statuses) > 0 {
		args := make([]any, len(xq.Statuses))
		for i, s := range xq.Statuses {
			args[i] = s
		}
		w.Add("status IN ("+placeholders(len(args))+")", args...)
	}
	return collect(ctx, q, "executions", scanAutoExec, `SELECT `+autoExecSelect+` FROM `+q.autoExecTable()+w.Clause()+
		` ORDER BY created_at DESC, id DESC LIMIT `+decisionLimit(xq.Limit), w.Args()...)
}

// UpdateExecution replaces the execution x.ID but its decision and its
// creation time, in one statement.
func (q *Queries) UpdateExecution(ctx context.Context, x store.Execution) (store.Execution, error) {
	args, err := q.autoExecArgs(x)
	if err != nil {
		return store.Execution{}, fmt.Errorf("%s: update execution %d: %w", q.d.Name, x.ID, err)
	}
	args = append(args, q.d.Time(q.microNow()), x.ID)
	out, err := scanAutoExec(q.w.QueryRow(ctx, q.d.Rebind(`UPDATE `+q.autoExecTable()+` SET template_id = ?,
		rule_execution_id = ?, status = ?, dry_run = ?, rollback_on_failure = ?, requested_by = ?, data = ?, steps = ?,
		rollback_steps = ?, outcome = ?, error_message = ?, started_at = ?, finished_at = ?, updated_at = ?
		WHERE id = ? RETURNING `+autoExecSelect), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("%s: update execution %d: %w", q.d.Name, x.ID, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("%s: update execution %d: %w", q.d.Name, x.ID, err)
	}
	return out, nil
}

// ---- approvals

const approvalSelect = `id, decision_id, execution_id, step_name, action_id, action_name, parameters, params_hash,
	risk_level, reason, two_person, requested_by, status, expires_at, decided_by, decided_at, comment, token_hash,
	used_at, created_at`

func scanApproval(row Row) (store.Approval, error) {
	var (
		a                              store.Approval
		exec                           sql.NullInt64
		params                         []byte
		expires, decided, used, creatd time.Time
	)
	if err := row.Scan(&a.ID, &a.DecisionID, &exec, &a.StepName, &a.ActionID, &a.ActionName, &params, &a.ParamsHash,
		&a.RiskLevel, &a.Reason, &a.TwoPerson, &a.RequestedBy, &a.Status, Time(&expires), &a.DecidedBy, Time(&decided),
		&a.Comment, &a.TokenHash, Time(&used), Time(&creatd)); err != nil {
		return a, err
	}
	a.ExecutionID = intPtr(exec)
	a.ExpiresAt, a.DecidedAt, a.UsedAt, a.CreatedAt = expires, timePtr(decided), timePtr(used), creatd
	if err := decodeJSON("parameters", a.ID, params, &a.Parameters); err != nil {
		return a, err
	}
	if a.Parameters == nil {
		a.Parameters = map[string]string{}
	}
	return a, nil
}

// InsertApproval stores a as a pending approval (whatever a.Status and
// the decision's fields say: a pending approval has no decision, no
// token and no use) unless its decision, or its execution when set,
// does not exist (store.ErrNotFound).
func (q *Queries) InsertApproval(ctx context.Context, a store.Approval) (store.Approval, error) {
	what := fmt.Sprintf("insert approval of decision %d", a.DecisionID)
	if a.CreatedAt.IsZero() {
		a.CreatedAt = q.microNow()
	}
	params := a.Parameters
	if params == nil {
		params = map[string]string{}
	}
	pj, err := q.docJSON("parameters", params)
	if err != nil {
		return store.Approval{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	cond := `EXISTS (SELECT 1 FROM ` + q.decisionTable() + ` WHERE id = ?)`
	condArgs := []any{a.DecisionID}
	if a.ExecutionID != nil {
		cond += ` AND EXISTS (SELECT 1 FROM ` + q.autoExecTable() + ` WHERE id = ?)`
		condArgs = append(condArgs, *a.ExecutionID)
	}
	args := append([]any{
		a.DecisionID, optInt(a.ExecutionID), store.CleanText(a.StepName, 0), a.ActionID, store.CleanText(a.ActionName, 0),
		pj, store.CleanText(a.ParamsHash, 0), store.CleanText(a.RiskLevel, 0), store.CleanText(a.Reason, 0), a.TwoPerson,
		store.CleanText(a.RequestedBy, 0), store.ApprovalPending, q.d.Time(a.ExpiresAt), q.d.Time(a.CreatedAt),
	}, condArgs...)
	out, err := scanApproval(q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.approvalTable()+` (decision_id, execution_id,
		step_name, action_id, action_name, parameters, params_hash, risk_level, reason, two_person, requested_by, status,
		expires_at, created_at)
		SELECT `+placeholders(14)+` WHERE `+cond+` RETURNING `+approvalSelect), args...))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := q.Decision(ctx, a.DecisionID); err != nil {
			return out, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
		}
		return out, fmt.Errorf("%s: %s: no execution %d: %w", q.d.Name, what, *a.ExecutionID, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return out, nil
}

// Approval returns the approval with this id.
func (q *Queries) Approval(ctx context.Context, id int64) (store.Approval, error) {
	return byID(ctx, q, "approval", approvalSelect, q.approvalTable(), id, scanApproval)
}

// Approvals lists approvals oldest first as aq filters them.
func (q *Queries) Approvals(ctx context.Context, aq store.ApprovalQuery) ([]store.Approval, error) {
	var w Where
	if aq.Status != "" {
		w.Add("status = ?", aq.Status)
	}
	if aq.DecisionID != 0 {
		w.Add("decision_id = ?", aq.DecisionID)
	}
	return collect(ctx, q, "approvals", scanApproval, `SELECT `+approvalSelect+` FROM `+q.approvalTable()+w.Clause()+
		` ORDER BY created_at, id LIMIT `+decisionLimit(aq.Limit), w.Args()...)
}

// DecideApproval records a's decision on the pending approval a.ID, in
// one conditional update (status = 'pending'). DecidedAt nil is now. A
// status other than approved, rejected or expired, or an approval
// without a TokenHash, is an error; the TokenHash of a rejection or an
// expiry is not stored.
func (q *Queries) DecideApproval(ctx context.Context, a store.Approval) (store.Approval, error) {
	what := fmt.Sprintf("decide approval %d", a.ID)
	token := ""
	switch a.Status {
	case store.ApprovalApproved:
		if a.TokenHash == "" {
			return store.Approval{}, fmt.Errorf("%s: %s: an approval needs its token hash", q.d.Name, what)
		}
		token = store.CleanText(a.TokenHash, 0)
	case store.ApprovalRejected, store.ApprovalExpired:
	default:
		return store.Approval{}, fmt.Errorf("%s: %s: status %q is not approved, rejected or expired", q.d.Name, what, a.Status)
	}
	decided := q.microNow()
	if a.DecidedAt != nil {
		decided = *a.DecidedAt
	}
	out, err := scanApproval(q.w.QueryRow(ctx, q.d.Rebind(`UPDATE `+q.approvalTable()+` SET status = ?, decided_by = ?,
		decided_at = ?, comment = ?, token_hash = ? WHERE id = ? AND status = ? RETURNING `+approvalSelect),
		a.Status, store.CleanText(a.DecidedBy, 0), q.d.Time(decided), store.CleanText(a.Comment, 0), token, a.ID,
		store.ApprovalPending))
	if errors.Is(err, sql.ErrNoRows) {
		stored, err := q.Approval(ctx, a.ID)
		if err != nil {
			return store.Approval{}, err
		}
		return stored, fmt.Errorf("%s: %s: it is %s, not pending: %w", q.d.Name, what, stored.Status, store.ErrConflict)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return out, nil
}

// UseApproval spends the approved approval whose token hash is
// tokenHash, in one conditional update (status = 'approved' AND used_at
// IS NULL): of two concurrent uses, one changes the row and the other
// finds it used. An empty hash is store.ErrNotFound.
func (q *Queries) UseApproval(ctx context.Context, tokenHash string, now time.Time) (store.Approval, error) {
	const what = "use approval token"
	if tokenHash == "" {
		return store.Approval{}, fmt.Errorf("%s: %s: empty token hash: %w", q.d.Name, what, store.ErrNotFound)
	}
	out, err := scanApproval(q.w.QueryRow(ctx, q.d.Rebind(`UPDATE `+q.approvalTable()+` SET status = ?, used_at = ?
		WHERE token_hash = ? AND status = ? AND used_at IS NULL RETURNING `+approvalSelect),
		store.ApprovalUsed, q.d.Time(now), tokenHash, store.ApprovalApproved))
	if errors.Is(err, sql.ErrNoRows) {
		stored, err := scanApproval(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+approvalSelect+` FROM `+q.approvalTable()+
			` WHERE token_hash = ?`), tokenHash))
		if errors.Is(err, sql.ErrNoRows) {
			return store.Approval{}, fmt.Errorf("%s: %s: no approval has it: %w", q.d.Name, what, store.ErrNotFound)
		}
		if err != nil {
			return store.Approval{}, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
		}
		return stored, fmt.Errorf("%s: %s: approval %d is %s: %w", q.d.Name, what, stored.ID, stored.Status, store.ErrConflict)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return out, nil
}

// ---- learning data

const learningSelect = `id, decision_id, pattern, template, observation, action_taken, outcome_success,
	outcome_metrics, COALESCE(lessons_learned, ''), knowledge_updates, created_at`

func scanLearning(row Row) (store.LearningRecord, error) {
	var (
		l                              store.LearningRecord
		decision                       sql.NullInt64
		obs, taken, metrics, knowledge []byte
		success                        sql.NullBool
		created                        time.Time
	)
	if err := row.Scan(&l.ID, &decision, &l.Pattern, &l.Template, &obs, &taken, &success, &metrics,
		&l.LessonsLearned, &knowledge, Time(&created)); err != nil {
		return l, err
	}
	l.DecisionID = intPtr(decision)
	l.Observation, l.ActionTaken, l.OutcomeMetrics, l.KnowledgeUpdate = readJSON(obs), readJSON(taken), readJSON(metrics), readJSON(knowledge)
	if success.Valid {
		l.OutcomeSuccess = &success.Bool
	}
	l.CreatedAt = created
	return l, nil
}

// InsertLearning stores l unless its decision, when set, does not exist
// (store.ErrNotFound), in one statement.
func (q *Queries) InsertLearning(ctx context.Context, l store.LearningRecord) (store.LearningRecord, error) {
	what := fmt.Sprintf("insert learning data of %q on %q", l.Template, l.Pattern)
	if l.CreatedAt.IsZero() {
		l.CreatedAt = q.microNow()
	}
	var success any
	if l.OutcomeSuccess != nil {
		success = *l.OutcomeSuccess
	}
	cond, condArgs := "1 = 1", []any(nil)
	if l.DecisionID != nil {
		cond, condArgs = `EXISTS (SELECT 1 FROM `+q.decisionTable()+` WHERE id = ?)`, []any{*l.DecisionID}
	}
	args := append([]any{
		optInt(l.DecisionID), store.CleanText(l.Pattern, 0), store.CleanText(l.Template, 0), q.rawJSON(l.Observation),
		q.rawJSON(l.ActionTaken), success, q.rawJSON(l.OutcomeMetrics), nullText(l.LessonsLearned, 0),
		q.rawJSON(l.KnowledgeUpdate), q.d.Time(l.CreatedAt),
	}, condArgs...)
	out, err := scanLearning(q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.learningTable()+` (decision_id, pattern, template,
		observation, action_taken, outcome_success, outcome_metrics, lessons_learned, knowledge_updates, created_at)
		SELECT `+placeholders(10)+` WHERE `+cond+` RETURNING `+learningSelect), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("%s: %s: no decision %d: %w", q.d.Name, what, *l.DecisionID, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w", q.d.Name, what, err)
	}
	return out, nil
}

// LearningRecords returns at most limit records (at least one, at most
// 10,000) whose id is greater than after, by id.
func (q *Queries) LearningRecords(ctx context.Context, after int64, limit int) ([]store.LearningRecord, error) {
	limit = min(max(limit, 1), maxLearningRead)
	return collect(ctx, q, "learning data", scanLearning, `SELECT `+learningSelect+` FROM `+q.learningTable()+
		` WHERE id > ? ORDER BY id LIMIT `+strconv.Itoa(limit), after)
}

// ---- settings

// Setting returns the value stored under key.
func (q *Queries) Setting(ctx context.Context, key string) (json.RawMessage, error) {
	var v []byte
	err := q.r.QueryRow(ctx, q.d.Rebind(`SELECT value FROM `+q.settingTable()+` WHERE key = ?`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: setting %q: %w", q.d.Name, key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: setting %q: %w", q.d.Name, key, err)
	}
	return json.RawMessage(v), nil
}

// PutSetting stores value under key, replacing what was there. An empty
// key, or a value that is not one JSON document, is an error.
func (q *Queries) PutSetting(ctx context.Context, key string, value json.RawMessage) error {
	if key == "" {
		return fmt.Errorf("%s: put setting: empty key", q.d.Name)
	}
	if !json.Valid(value) {
		return fmt.Errorf("%s: put setting %q: the value is not JSON", q.d.Name, key)
	}
	_, err := q.w.Exec(ctx, q.d.Rebind(`INSERT INTO `+q.settingTable()+` (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
		store.CleanText(key, 0), q.d.JSON(store.CleanJSON(value)), q.d.Time(q.now()))
	if err != nil {
		return fmt.Errorf("%s: put setting %q: %w", q.d.Name, key, err)
	}
	return nil
}

var _ store.AutonomousStore = (*Queries)(nil)
