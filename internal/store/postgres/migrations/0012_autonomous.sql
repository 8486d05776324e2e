-- The state of the autonomous service (internal/store/autonomous.go):
-- decisions, executions with their steps, approvals, learning data and
-- small settings such as the kill switch. The seed's decision_log and
-- learning_data keep every column of theirs, and the application fills
-- them; these add what the decision model, the feedback processor and
-- the learning layer need. No new foreign key reaches a table of the
-- events or rules schemas (processed_events is partitioned; the
-- application checks that a decision's event exists).
--
-- decision_log.confidence_score stays the seed's DECIMAL(3,2): the
-- application rounds the confidence to two decimals before it stores it,
-- so that both stores read back the same value.

ALTER TABLE autonomous.decision_log
    ADD COLUMN incident_id BIGINT,
    ADD COLUMN rule_execution_id BIGINT,
    ADD COLUMN rule_id BIGINT,
    ADD COLUMN source_host TEXT NOT NULL DEFAULT '',
    ADD COLUMN pattern TEXT NOT NULL DEFAULT '',
    ADD COLUMN factors JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN evidence JSONB,
    ADD COLUMN engine TEXT NOT NULL DEFAULT '',
    ADD COLUMN context JSONB,
    ADD COLUMN requested_by TEXT NOT NULL DEFAULT '',
    ADD COLUMN feedback TEXT NOT NULL DEFAULT '',
    ADD COLUMN feedback_notes TEXT NOT NULL DEFAULT '',
    ADD COLUMN feedback_suggestions TEXT NOT NULL DEFAULT '',
    ADD COLUMN feedback_by TEXT NOT NULL DEFAULT '',
    ADD COLUMN feedback_at TIMESTAMP WITH TIME ZONE,
    ADD COLUMN acknowledged_at TIMESTAMP WITH TIME ZONE,
    ADD COLUMN resolved_at TIMESTAMP WITH TIME ZONE;
-- One decision per incident, one per firing (a redelivered request).
CREATE UNIQUE INDEX decision_log_incident ON autonomous.decision_log (incident_id) WHERE incident_id IS NOT NULL;
CREATE UNIQUE INDEX decision_log_rule_execution ON autonomous.decision_log (rule_execution_id) WHERE rule_execution_id IS NOT NULL;
CREATE INDEX decision_log_event ON autonomous.decision_log (event_id);
CREATE INDEX decision_log_created ON autonomous.decision_log (created_at, id);

-- One run of a decision's plan. The orchestrator rewrites the row at
-- every change of a step: steps and rollback_steps are JSON arrays of the
-- steps' states (store.StepState).
CREATE TABLE autonomous.executions (
    id BIGSERIAL PRIMARY KEY,
    decision_id BIGINT NOT NULL REFERENCES autonomous.decision_log(id),
    template_id BIGINT,
    rule_execution_id BIGINT,
    status TEXT NOT NULL,                  -- pending, running, completed, failed, rolled_back, rollback_failed, cancelled
    dry_run BOOLEAN NOT NULL DEFAULT FALSE,
    rollback_on_failure BOOLEAN NOT NULL DEFAULT FALSE,
    requested_by TEXT NOT NULL DEFAULT '',
    data JSONB,                            -- the steps' template data (event, incident)
    steps JSONB NOT NULL DEFAULT '[]',
    rollback_steps JSONB,
    outcome TEXT NOT NULL DEFAULT '',      -- successful, failed, partially_successful
    error_message TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX executions_decision ON autonomous.executions (decision_id, id);
CREATE INDEX executions_status ON autonomous.executions (status, id);
CREATE INDEX executions_created ON autonomous.executions (created_at, id);

-- One request for a human's approval of one step. The token itself is
-- never stored: token_hash is its SHA-256, unique once set.
CREATE TABLE autonomous.approvals (
    id BIGSERIAL PRIMARY KEY,
    decision_id BIGINT NOT NULL REFERENCES autonomous.decision_log(id),
    execution_id BIGINT REFERENCES autonomous.executions(id),
    step_name TEXT NOT NULL DEFAULT '',
    action_id BIGINT NOT NULL,
    action_name TEXT NOT NULL,
    parameters JSONB NOT NULL DEFAULT '{}',
    params_hash TEXT NOT NULL DEFAULT '',
    risk_level TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    two_person BOOLEAN NOT NULL DEFAULT FALSE,
    requested_by TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,                  -- pending, approved, rejected, expired, used
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at TIMESTAMP WITH TIME ZONE,
    comment TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL DEFAULT '',
    used_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE UNIQUE INDEX approvals_token ON autonomous.approvals (token_hash) WHERE token_hash <> '';
CREATE INDEX approvals_status ON autonomous.approvals (status, created_at, id);
CREATE INDEX approvals_decision ON autonomous.approvals (decision_id, id);

-- The learning data of a (pattern, template) pair: observation is the
-- learning.Observation the success estimator is rebuilt from.
ALTER TABLE autonomous.learning_data
    ADD COLUMN pattern TEXT NOT NULL DEFAULT '',
    ADD COLUMN template TEXT NOT NULL DEFAULT '',
    ADD COLUMN observation JSONB;
CREATE INDEX learning_data_decision ON autonomous.learning_data (decision_id);

-- Small settings of the service (the kill switch ...), one JSON value
-- per key. json, not jsonb: a value reads back as it was written.
CREATE TABLE autonomous.settings (
    key TEXT PRIMARY KEY,
    value JSON NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);
