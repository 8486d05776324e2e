package sqlstore

// PLACEHOLDER: the autonomous store is being written on wip/store; these
// answer ErrNotImplemented until it lands and must not reach a release.

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

var errNotImplemented = errors.New("sqlstore: not implemented yet")

func (q *Queries) InsertDecision(context.Context, store.Decision) (store.Decision, error) {
	return store.Decision{}, errNotImplemented
}
func (q *Queries) Decision(context.Context, int64) (store.Decision, error) {
	return store.Decision{}, errNotImplemented
}
func (q *Queries) Decisions(context.Context, store.DecisionQuery) ([]store.Decision, error) {
	return nil, errNotImplemented
}
func (q *Queries) UpdateDecision(context.Context, store.Decision) (store.Decision, error) {
	return store.Decision{}, errNotImplemented
}
func (q *Queries) InsertExecution(context.Context, store.Execution) (store.Execution, error) {
	return store.Execution{}, errNotImplemented
}
func (q *Queries) Execution(context.Context, int64) (store.Execution, error) {
	return store.Execution{}, errNotImplemented
}
func (q *Queries) Executions(context.Context, store.ExecutionQuery) ([]store.Execution, error) {
	return nil, errNotImplemented
}
func (q *Queries) UpdateExecution(context.Context, store.Execution) (store.Execution, error) {
	return store.Execution{}, errNotImplemented
}
func (q *Queries) InsertApproval(context.Context, store.Approval) (store.Approval, error) {
	return store.Approval{}, errNotImplemented
}
func (q *Queries) Approval(context.Context, int64) (store.Approval, error) {
	return store.Approval{}, errNotImplemented
}
func (q *Queries) Approvals(context.Context, store.ApprovalQuery) ([]store.Approval, error) {
	return nil, errNotImplemented
}
func (q *Queries) DecideApproval(context.Context, store.Approval) (store.Approval, error) {
	return store.Approval{}, errNotImplemented
}
func (q *Queries) UseApproval(context.Context, string, time.Time) (store.Approval, error) {
	return store.Approval{}, errNotImplemented
}
func (q *Queries) InsertLearning(context.Context, store.LearningRecord) (store.LearningRecord, error) {
	return store.LearningRecord{}, errNotImplemented
}
func (q *Queries) LearningRecords(context.Context, int64, int) ([]store.LearningRecord, error) {
	return nil, errNotImplemented
}
func (q *Queries) Setting(context.Context, string) (json.RawMessage, error) {
	return nil, errNotImplemented
}
func (q *Queries) PutSetting(context.Context, string, json.RawMessage) error {
	return errNotImplemented
}
func (q *Queries) UpdateRuleExecution(context.Context, store.RuleExecutionUpdate) (store.RuleExecution, error) {
	return store.RuleExecution{}, errNotImplemented
}
func (q *Queries) SetRuleExecutionFeedback(context.Context, int64, string, string) (store.RuleExecution, error) {
	return store.RuleExecution{}, errNotImplemented
}

var _ store.AutonomousStore = (*Queries)(nil)
