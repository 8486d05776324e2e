package store

import (
	"context"
	"encoding/json"
	"time"
)

// RuleStore holds the trigger rules, the response templates and the
// history of rule executions (the rules schema in PostgreSQL). It stores
// what it is given: validating conditions and definitions is the caller's
// job (the API compiles conditions with internal/rules/cond before it
// stores them). Names are unique among rules and among templates, because
// rule files match by name. Implementations are safe for concurrent use.
type RuleStore interface {
	// CreateTriggerRule stores a new rule and returns it with its ID (and
	// CreatedAt and UpdatedAt, set to now when zero). ErrConflict if a
	// rule of the same name exists.
	CreateTriggerRule(ctx context.Context, r TriggerRule) (TriggerRule, error)
	// TriggerRule returns the rule with this id, or ErrNotFound.
	TriggerRule(ctx context.Context, id int64) (TriggerRule, error)
	// TriggerRules lists the rules by id; with active set, only the rules
	// whose Active is *active.
	TriggerRules(ctx context.Context, active *bool) ([]TriggerRule, error)
	// UpdateTriggerRule replaces every field of the rule r.ID but its
	// CreatedBy and CreatedAt, sets UpdatedAt (to now when zero) and
	// returns the stored rule. ErrNotFound if there is no such rule,
	// ErrConflict if another rule has r.Name.
	UpdateTriggerRule(ctx context.Context, r TriggerRule) (TriggerRule, error)
	// DeleteTriggerRule deletes the rule. ErrNotFound if there is none;
	// ErrConflict while a response template or an execution refers to it
	// (deactivate it instead, or delete its templates first).
	DeleteTriggerRule(ctx context.Context, id int64) error

	// CreateResponseTemplate stores a new template and returns it with
	// its ID (and CreatedAt, set to now when zero). ErrConflict if a
	// template of the same name exists; ErrNotFound if its trigger rule
	// does not exist.
	CreateResponseTemplate(ctx context.Context, t ResponseTemplate) (ResponseTemplate, error)
	// ResponseTemplate returns the template with this id, or ErrNotFound.
	ResponseTemplate(ctx context.Context, id int64) (ResponseTemplate, error)
	// ResponseTemplates lists the templates by id; with active set, only
	// those whose Active is *active.
	ResponseTemplates(ctx context.Context, active *bool) ([]ResponseTemplate, error)
	// UpdateResponseTemplate replaces every field of the template t.ID
	// but its CreatedAt and returns the stored template. ErrNotFound if
	// there is no such template or its new trigger rule does not exist
	// (the error says which), ErrConflict if another template has t.Name.
	UpdateResponseTemplate(ctx context.Context, t ResponseTemplate) (ResponseTemplate, error)
	// DeleteResponseTemplate deletes the template. ErrNotFound if there
	// is none; ErrConflict while an execution refers to it.
	DeleteResponseTemplate(ctx context.Context, id int64) error

	// InsertRuleExecution records an execution and returns it with its ID
	// (and StartedAt, set to now when zero). ErrNotFound if its trigger
	// rule, or its response template when it has one, does not exist.
	InsertRuleExecution(ctx context.Context, x RuleExecution) (RuleExecution, error)
	// RuleExecution returns the execution with this id, or ErrNotFound.
	RuleExecution(ctx context.Context, id int64) (RuleExecution, error)
	// RuleExecutions lists executions, newest (by StartedAt, then id)
	// first, as q filters and limits them.
	RuleExecutions(ctx context.Context, q RuleExecutionQuery) ([]RuleExecution, error)
	// OccurrenceExecution returns the execution of the rule that the
	// occurrence rawEventID made (its TriggeringRawEventID), or
	// ErrNotFound.
	OccurrenceExecution(ctx context.Context, ruleID, rawEventID int64) (RuleExecution, error)

	// UpdateRuleExecution sets the status of the execution u.ID and, when
	// set, its result, error and completion time (the autonomous service
	// keeps the row in step with its own execution). ErrNotFound for an
	// unknown id.
	UpdateRuleExecution(ctx context.Context, u RuleExecutionUpdate) (RuleExecution, error)
	// SetRuleExecutionFeedback records a human's feedback (helpful,
	// not_helpful, incorrect) and notes on the execution. ErrNotFound for
	// an unknown id.
	SetRuleExecutionFeedback(ctx context.Context, id int64, feedback, notes string) (RuleExecution, error)

	// RecordFirings writes what the rules engine did with one batch of
	// occurrences, all of it in one transaction, and returns the batch's
	// executions as stored, in the order of b.Executions.
	RecordFirings(ctx context.Context, b FiringBatch) ([]RuleExecution, error)
	// RuleWindows returns the stored windows and throttles, in no
	// particular order.
	RuleWindows(ctx context.Context) ([]RuleWindow, error)
	// PruneRuleWindows deletes the windows last updated before before and
	// those of rules that no longer exist or are inactive, and returns how
	// many it deleted.
	PruneRuleWindows(ctx context.Context, before time.Time) (int64, error)
}

// FiringBatch is what the rules engine writes for one batch of
// occurrences (see RuleStore.RecordFirings).
type FiringBatch struct {
	// Executions are the batch's firings, each with its
	// TriggeringRawEventID. One whose rule already has an execution for
	// that occurrence (a redelivered record) is not inserted again: the
	// stored one is returned in its place. One whose rule no longer
	// exists is left out: its place in the answer has ID 0.
	Executions []RuleExecution
	// Counts are added to the rules' suppression counters. (Firings and
	// LastFiredAt count the executions inserted, by themselves.)
	Counts []RuleCount
	// Windows are stored in place of the rule and group key's; one with a
	// nil State is deleted.
	Windows []RuleWindow
	// Forget lists rules whose windows are all deleted (deactivated or
	// changed rules).
	Forget []int64
}

// RuleCount is what a batch adds to a rule's suppression counter.
type RuleCount struct {
	RuleID     int64
	Suppressed int64
}

// RuleWindow is the stored window and throttle of one rule and group key
// (rules.rule_windows): the rules engine's state, kept so that it
// continues across a restart.
type RuleWindow struct {
	RuleID   int64
	GroupKey string
	// State is the window package's KeySnapshot as JSON; the store does
	// not read it.
	State     json.RawMessage
	UpdatedAt time.Time
}

// TriggerRule is a stored trigger rule (rules.trigger_rules).
type TriggerRule struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Conditions is the rule's condition document (see docs/rules.md).
	// PostgreSQL's jsonb does not keep the order of its keys nor its
	// spacing: compare documents, not bytes.
	Conditions json.RawMessage `json:"conditions"`
	// SeverityThreshold is the minimum severity of a matching event; ""
	// means none.
	SeverityThreshold  string   `json:"severity_threshold"`
	TimeWindowMinutes  int      `json:"time_window_minutes"`
	MinCount           int      `json:"min_count"`
	GroupBy            []string `json:"group_by"`
	MaxTriggersPerHour int      `json:"max_triggers_per_hour"`
	Active             bool     `json:"active"`
	// Firings counts the rule's firings (its executions recorded by
	// RecordFirings), SuppressedFirings those its throttle stopped, and
	// LastFiredAt is the StartedAt of its last firing (null before the
	// first). The rules engine keeps them; create and update leave them
	// alone.
	Firings           int64      `json:"firings"`
	SuppressedFirings int64      `json:"suppressed_firings"`
	LastFiredAt       *time.Time `json:"last_fired_at"`
	// CreatedBy names who created the rule: the id of the API key (or
	// the principal's name for the admin token). Empty when unknown.
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ResponseTemplate is a stored response template (rules.response_templates).
type ResponseTemplate struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Type is investigation, remediation or escalation.
	Type          string `json:"type"`
	TriggerRuleID int64  `json:"trigger_rule_id"`
	// Definition is the response_definition document: the template's
	// actions ({"actions": [...]}), as the API validated them.
	Definition              json.RawMessage `json:"definition"`
	ApprovalRequired        bool            `json:"approval_required"`
	RollbackSupported       bool            `json:"rollback_supported"`
	MaxExecutionTimeMinutes int             `json:"max_execution_time_minutes"`
	Active                  bool            `json:"active"`
	CreatedAt               time.Time       `json:"created_at"`
}

// RuleExecution is one firing of a rule and what became of it
// (rules.rule_executions).
type RuleExecution struct {
	ID                 int64  `json:"id"`
	TriggerRuleID      int64  `json:"trigger_rule_id"`
	ResponseTemplateID *int64 `json:"response_template_id"`
	TriggeringEventID  int64  `json:"triggering_event_id"`
	// TriggeringRawEventID is the occurrence that made the rule fire: the
	// raw event's id (the processed event's own for a new event, the
	// repeat's for one folded into it). 0 when unknown.
	TriggeringRawEventID int64 `json:"triggering_raw_event_id,omitempty"`
	// Status is pending, running, completed, failed or cancelled.
	Status      string          `json:"execution_status"`
	StartedAt   time.Time       `json:"started_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	Result      json.RawMessage `json:"execution_result,omitempty"`
	Error       string          `json:"error_message,omitempty"`
	// HumanFeedback is helpful, not_helpful, incorrect or "" (none yet),
	// FeedbackNotes what the human wrote with it.
	HumanFeedback string `json:"human_feedback,omitempty"`
	FeedbackNotes string `json:"feedback_notes,omitempty"`
}

// RuleExecutionUpdate is what UpdateRuleExecution changes.
type RuleExecutionUpdate struct {
	ID     int64
	Status string
	// ResponseTemplateID, Result, Error and CompletedAt replace the
	// stored values when set (non-nil, non-empty).
	ResponseTemplateID *int64
	Result             json.RawMessage
	Error              string
	CompletedAt        *time.Time
}

// RuleExecutionQuery filters RuleExecutions. The zero value lists the
// DefaultExecutionLimit newest executions.
type RuleExecutionQuery struct {
	RuleID int64     // 0: any rule
	Status string    // "": any status
	Since  time.Time // zero: no bound; else StartedAt >= Since
	Limit  int       // 0: DefaultExecutionLimit; at most MaxExecutionLimit
}

// Bounds of RuleExecutionQuery.Limit.
const (
	DefaultExecutionLimit = 100
	MaxExecutionLimit     = 1000
)
