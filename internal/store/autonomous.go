package store

import (
	"context"
	"encoding/json"
	"time"
)

// AutonomousStore holds the state of the Autonomous Response Service
// beside its action definitions and audit log: decisions
// (autonomous.decision_log), executions with their steps
// (autonomous.executions), approvals (autonomous.approvals), the learning
// data (autonomous.learning_data) and small settings such as the kill
// switch (autonomous.settings). Implementations are safe for concurrent
// use; every method is one transaction.
type AutonomousStore interface {
	// InsertDecision stores d under a new id (CreatedAt set to now when
	// zero) and returns it as stored. When d.IncidentID is set and the
	// incident already has a decision, nothing is inserted: the stored
	// one is returned with ErrConflict (one decision per incident). When
	// d.RuleExecutionID is set and that firing already has a decision
	// (a redelivered request), the stored one is returned with
	// ErrConflict too.
	InsertDecision(ctx context.Context, d Decision) (Decision, error)
	// Decision returns the decision with this id, or ErrNotFound.
	Decision(ctx context.Context, id int64) (Decision, error)
	// Decisions lists decisions newest first (by CreatedAt, then id) as q
	// filters and limits them.
	Decisions(ctx context.Context, q DecisionQuery) ([]Decision, error)
	// UpdateDecision replaces the mutable fields of the decision d.ID
	// (DecisionType, Outcome, HumanOverride, OverrideReason, Feedback,
	// FeedbackNotes, FeedbackSuggestions, FeedbackBy, FeedbackAt,
	// AcknowledgedAt, ResolvedAt) and returns it as stored; ErrNotFound
	// for an unknown id.
	UpdateDecision(ctx context.Context, d Decision) (Decision, error)

	// InsertExecution stores x under a new id (CreatedAt and UpdatedAt
	// set to now when zero) and returns it as stored. ErrNotFound when
	// its decision does not exist.
	InsertExecution(ctx context.Context, x Execution) (Execution, error)
	// Execution returns the execution with this id, or ErrNotFound.
	Execution(ctx context.Context, id int64) (Execution, error)
	// Executions lists executions newest first (by CreatedAt, then id) as
	// q filters and limits them.
	Executions(ctx context.Context, q ExecutionQuery) ([]Execution, error)
	// UpdateExecution replaces everything of the execution x.ID but its
	// DecisionID and CreatedAt, sets UpdatedAt to now, and returns it as
	// stored. The orchestrator calls it at every change of a step, before
	// the step's work starts and after it ended. ErrNotFound for an
	// unknown id.
	UpdateExecution(ctx context.Context, x Execution) (Execution, error)

	// InsertApproval stores a pending approval under a new id (CreatedAt
	// set to now when zero) and returns it as stored.
	InsertApproval(ctx context.Context, a Approval) (Approval, error)
	// Approval returns the approval with this id, or ErrNotFound.
	Approval(ctx context.Context, id int64) (Approval, error)
	// Approvals lists approvals oldest first as q filters them.
	Approvals(ctx context.Context, q ApprovalQuery) ([]Approval, error)
	// DecideApproval records a's decision on the pending approval a.ID:
	// Status (approved, rejected or expired), DecidedBy, DecidedAt,
	// Comment and, when approved, TokenHash. ErrNotFound for an unknown
	// id; ErrConflict (with the stored approval) when it is no longer
	// pending.
	DecideApproval(ctx context.Context, a Approval) (Approval, error)
	// UseApproval marks the approved approval whose TokenHash is
	// tokenHash as used at now (Status used, UsedAt) and returns it, in
	// one conditional update, so that a token is used once even by two
	// processes at the same time. ErrNotFound when no approval has this
	// hash; ErrConflict (with the stored approval) when it is not
	// approved or was used. Checking that the token fits the request
	// (decision, action, parameters, expiry) is the caller's, after this
	// call: a token presented with the wrong request is spent.
	UseApproval(ctx context.Context, tokenHash string, now time.Time) (Approval, error)

	// InsertLearning stores one piece of learning data and returns it
	// with its id (CreatedAt set to now when zero).
	InsertLearning(ctx context.Context, l LearningRecord) (LearningRecord, error)
	// LearningRecords returns at most limit records whose id is greater
	// than after, by id: the history the success estimator is rebuilt
	// from at start.
	LearningRecords(ctx context.Context, after int64, limit int) ([]LearningRecord, error)

	// Setting returns the value stored under key, or ErrNotFound.
	Setting(ctx context.Context, key string) (json.RawMessage, error)
	// PutSetting stores value under key, replacing what was there.
	PutSetting(ctx context.Context, key string, value json.RawMessage) error
}

// Decision types (decision_log.decision_type).
const (
	DecisionInvestigate = "investigate"
	DecisionAutomate    = "automate"
	DecisionEscalate    = "escalate"
	DecisionIgnore      = "ignore"
)

// Decision is one decision of the autonomous service
// (autonomous.decision_log).
type Decision struct {
	ID int64 `json:"id"`
	// EventID is the processed event decided about.
	EventID int64 `json:"event_id"`
	// IncidentID is the event's incident when it has one (one decision
	// per incident); nil otherwise.
	IncidentID *int64 `json:"incident_id"`
	// RuleExecutionID is the firing whose decision request this answers
	// (rules.rule_executions); nil for POST /analyze.
	RuleExecutionID *int64 `json:"rule_execution_id"`
	RuleID          *int64 `json:"rule_id"`
	// SourceHost is the event's host, Pattern the learning pattern of
	// the event (see the engine), both as decided.
	SourceHost string `json:"source_host"`
	Pattern    string `json:"pattern"`
	// DecisionType is investigate, automate, escalate or ignore.
	DecisionType string `json:"decision_type"`
	// Confidence is in [0, 1]; decision_log keeps two decimals.
	Confidence float64 `json:"confidence_score"`
	// Reasoning is the readable explanation: every factor and its
	// contribution, one per line.
	Reasoning string `json:"reasoning"`
	// Factors are the reasoning's parts, as data.
	Factors []Factor `json:"factors"`
	// RecommendedActions are the templates and steps the decision
	// recommends, with their parameters, best first.
	RecommendedActions []Recommendation `json:"recommended_actions"`
	// Evidence is what the decision shows beside its reasoning: similar
	// past incidents and what resolved them. Free JSON of the engine.
	Evidence json.RawMessage `json:"evidence,omitempty"`
	// Engine is "builtin" or "llm:<model>".
	Engine string `json:"engine"`
	// Context is the context the decision was made in (the analyzer's
	// answer merged with the request's).
	Context json.RawMessage `json:"context,omitempty"`
	// RequestedBy is who asked (an API key's id, or "rules" for a
	// firing).
	RequestedBy string `json:"requested_by"`

	HumanOverride  bool   `json:"human_override"`
	OverrideReason string `json:"override_reason,omitempty"`
	// Outcome is successful, failed, partially_successful or "" (nothing
	// ran, or it has not ended).
	Outcome             string     `json:"decision_outcome,omitempty"`
	Feedback            string     `json:"feedback,omitempty"`
	FeedbackNotes       string     `json:"feedback_notes,omitempty"`
	FeedbackSuggestions string     `json:"feedback_suggestions,omitempty"`
	FeedbackBy          string     `json:"feedback_by,omitempty"`
	FeedbackAt          *time.Time `json:"feedback_at,omitempty"`
	// AcknowledgedAt is when a human (approval, feedback) or the
	// automation first acted on it, ResolvedAt when its execution ended
	// successfully: the performance tracker's MTTA and MTTR.
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Factor is one factor of a decision's reasoning.
type Factor struct {
	// Name is the factor ("severity", "asset_criticality",
	// "maintenance_window", "template_success" ...).
	Name string `json:"name"`
	// Value is what the factor saw, as text ("critical", "0.93").
	Value string `json:"value"`
	// Contribution is what it added to (or took from) the confidence.
	Contribution float64 `json:"contribution"`
	// Detail says why, in a sentence.
	Detail string `json:"detail,omitempty"`
}

// Recommendation is one recommended template (or single action) with
// its steps.
type Recommendation struct {
	TemplateID   int64  `json:"template_id,omitempty"`
	TemplateName string `json:"template_name,omitempty"`
	// ActionID is set for a single action recommended without a template.
	ActionID int64 `json:"action_id,omitempty"`
	// Success is the lower bound of the template's success estimate on
	// the pattern, and Evidence how many outcomes it rests on.
	Success  float64 `json:"success_lower_bound"`
	Evidence float64 `json:"evidence"`
	Steps    []Step  `json:"steps"`
}

// Step is one step of a recommendation or an execution plan, as
// resolved: its action and its rendered parameters.
type Step struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	ActionID   int64  `json:"action_id,omitempty"`
	ActionName string `json:"action_name,omitempty"`
	// Channels are a notification step's receivers.
	Channels   []string          `json:"channels,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
	RiskLevel  string            `json:"risk_level,omitempty"`
	// ApprovalRequired says the step waits for a human's approval, and
	// ApprovalReason why (the action, the template, the policy, the
	// blast radius ...).
	ApprovalRequired bool   `json:"approval_required"`
	ApprovalReason   string `json:"approval_reason,omitempty"`
	Group            string `json:"group,omitempty"`
	Timeout          string `json:"timeout,omitempty"`
	Retries          int    `json:"retries,omitempty"`
	OnFailure        string `json:"on_failure,omitempty"`
	Rollback         string `json:"rollback_action,omitempty"`
}

// DecisionQuery filters Decisions. The zero value lists the
// DefaultDecisionLimit newest decisions.
type DecisionQuery struct {
	EventID         int64     // 0: any
	IncidentID      int64     // 0: any
	RuleExecutionID int64     // 0: any
	Since           time.Time // zero: no bound; else CreatedAt >= Since
	Limit           int       // 0: DefaultDecisionLimit; at most MaxDecisionLimit
}

// Bounds of DecisionQuery.Limit and ExecutionQuery.Limit.
const (
	DefaultDecisionLimit = 100
	MaxDecisionLimit     = 1000
)

// Execution statuses (autonomous.executions.status); the matching
// rules.rule_executions row follows them.
const (
	ExecPending        = "pending"
	ExecRunning        = "running"
	ExecCompleted      = "completed"
	ExecFailed         = "failed"
	ExecRolledBack     = "rolled_back"
	ExecRollbackFailed = "rollback_failed"
	ExecCancelled      = "cancelled"
)

// Step statuses of an execution.
const (
	StepPending         = "pending"
	StepWaitingApproval = "waiting_approval"
	StepRunning         = "running"
	StepSucceeded       = "succeeded"
	StepFailed          = "failed"
	StepSkipped         = "skipped"
	// StepUnknown is a step that was running when the server died: its
	// outcome is unknown, it is never re-run blindly, and it escalates.
	StepUnknown    = "unknown"
	StepRolledBack = "rolled_back"
	StepCancelled  = "cancelled"
)

// Execution is one run of a decision's plan (autonomous.executions).
type Execution struct {
	ID         int64  `json:"id"`
	DecisionID int64  `json:"decision_id"`
	TemplateID *int64 `json:"template_id"`
	// RuleExecutionID is the firing's rules.rule_executions row, whose
	// status follows this execution's; nil for one started by the API
	// on a decision of POST /analyze.
	RuleExecutionID *int64 `json:"rule_execution_id"`
	// Status is one of the Exec* constants.
	Status            string `json:"status"`
	DryRun            bool   `json:"dry_run"`
	RollbackOnFailure bool   `json:"rollback_on_failure"`
	// RequestedBy is who started it: an API key's id, or "automation".
	RequestedBy string `json:"requested_by"`
	// Data is the execution's template data (event, incident), as the
	// steps render from it.
	Data json.RawMessage `json:"data,omitempty"`
	// Steps are the plan's steps and what became of each, in order;
	// Rollback the rollback steps run, in the order they ran.
	Steps    []StepState `json:"steps"`
	Rollback []StepState `json:"rollback,omitempty"`
	// Outcome is the result validator's: successful, failed,
	// partially_successful ("" until it ended).
	Outcome    string     `json:"outcome,omitempty"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// StepState is one step of an execution and what became of it.
type StepState struct {
	Step
	// Status is one of the Step* constants.
	Status string `json:"status"`
	// Attempts counts the step's runs (retries included).
	Attempts int `json:"attempts"`
	// ApprovalID is the approval the step waits for or ran with.
	ApprovalID *int64 `json:"approval_id,omitempty"`
	ExitCode   *int   `json:"exit_code,omitempty"`
	// Output is the captured output (bounded), Truncated when cut.
	Output    string `json:"output,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Outputs are the named values later steps render from.
	Outputs map[string]string `json:"outputs,omitempty"`
	// Validation is the result validator's verdict of the step's
	// success criteria ("" when it has none).
	Validation string     `json:"validation,omitempty"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// ExecutionQuery filters Executions. The zero value lists the
// DefaultDecisionLimit newest executions.
type ExecutionQuery struct {
	DecisionID int64 // 0: any
	// Statuses: any of these (nil: any status).
	Statuses []string
	Limit    int // 0: DefaultDecisionLimit; at most MaxDecisionLimit
}

// Approval statuses (autonomous.approvals.status).
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
	ApprovalUsed     = "used"
)

// Approval is one request for a human's approval of one step
// (autonomous.approvals).
type Approval struct {
	ID         int64 `json:"id"`
	DecisionID int64 `json:"decision_id"`
	// ExecutionID and StepName are the execution waiting for it (nil
	// and "" for an approval asked before any execution).
	ExecutionID *int64 `json:"execution_id"`
	StepName    string `json:"step_name,omitempty"`
	ActionID    int64  `json:"action_id"`
	ActionName  string `json:"action_name"`
	// Parameters are the exact parameters the approval is for;
	// ParamsHash their canonical hash, which a token is bound to.
	Parameters map[string]string `json:"parameters"`
	ParamsHash string            `json:"-"`
	RiskLevel  string            `json:"risk_level"`
	// Reason says why approval is needed.
	Reason string `json:"reason"`
	// TwoPerson says the key that requested cannot approve alone.
	TwoPerson   bool      `json:"two_person,omitempty"`
	RequestedBy string    `json:"requested_by"`
	Status      string    `json:"status"`
	ExpiresAt   time.Time `json:"expires_at"`
	DecidedBy   string    `json:"decided_by,omitempty"`
	// DecidedAt and UsedAt are nil until then.
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Comment   string     `json:"comment,omitempty"`
	// TokenHash is the SHA-256 (hex) of the approval token; the token
	// itself is never stored.
	TokenHash string     `json:"-"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// ApprovalQuery filters Approvals.
type ApprovalQuery struct {
	Status     string // "": any
	DecisionID int64  // 0: any
	Limit      int    // 0: DefaultDecisionLimit; at most MaxDecisionLimit
}

// LearningRecord is one piece of evidence of the learning layer
// (autonomous.learning_data): an execution's outcome or a human's
// feedback on a decision, for a (pattern, template) pair.
type LearningRecord struct {
	ID         int64  `json:"id"`
	DecisionID *int64 `json:"decision_id"`
	Pattern    string `json:"pattern"`
	// Template is the pair's template key (the response template's id,
	// or "action:<id>").
	Template string `json:"template"`
	// Observation is the learning.Observation, as JSON.
	Observation json.RawMessage `json:"observation"`
	// ActionTaken is what ran (the template and its steps).
	ActionTaken json.RawMessage `json:"action_taken,omitempty"`
	// OutcomeSuccess is the seed's column: true for a successful
	// outcome, false for a failed one, nil for feedback or a partial
	// success.
	OutcomeSuccess *bool `json:"outcome_success"`
	// OutcomeMetrics are response_time, resolution_time, ... in seconds.
	OutcomeMetrics  json.RawMessage `json:"outcome_metrics,omitempty"`
	LessonsLearned  string          `json:"lessons_learned,omitempty"`
	KnowledgeUpdate json.RawMessage `json:"knowledge_updates,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
}
