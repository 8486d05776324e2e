-- The state of the autonomous service (internal/store/autonomous.go):
-- decisions, executions with their steps, approvals, learning data and
-- small settings such as the kill switch. The seed's decision_log and
-- learning_data keep every column of theirs, and the application fills
-- them; these add what the decision model, the feedback processor and
-- the learning layer need. Times are unix microseconds; JSON is TEXT.
-- The application rounds decision_log.confidence_score to two decimals
-- (PostgreSQL's DECIMAL(3,2)), so that both stores read back the same.

ALTER TABLE decision_log ADD COLUMN incident_id INTEGER;
ALTER TABLE decision_log ADD COLUMN rule_execution_id INTEGER;
ALTER TABLE decision_log ADD COLUMN rule_id INTEGER;
ALTER TABLE decision_log ADD COLUMN source_host TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN pattern TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN factors TEXT NOT NULL DEFAULT '[]';
ALTER TABLE decision_log ADD COLUMN evidence TEXT;
ALTER TABLE decision_log ADD COLUMN engine TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN context TEXT;
ALTER TABLE decision_log ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN feedback TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN feedback_notes TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN feedback_suggestions TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN feedback_by TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN feedback_at INTEGER;
ALTER TABLE decision_log ADD COLUMN acknowledged_at INTEGER;
ALTER TABLE decision_log ADD COLUMN resolved_at INTEGER;
-- One decision per incident, one per firing (a redelivered request).
CREATE UNIQUE INDEX decision_log_incident ON decision_log (incident_id) WHERE incident_id IS NOT NULL;
CREATE UNIQUE INDEX decision_log_rule_execution ON decision_log (rule_execution_id) WHERE rule_execution_id IS NOT NULL;
CREATE INDEX decision_log_event ON decision_log (event_id);
CREATE INDEX decision_log_created ON decision_log (created_at, id);

-- One run of a decision's plan. The orchestrator rewrites the row at
-- every change of a step: steps and rollback_steps are JSON arrays of the
-- steps' states (store.StepState).
CREATE TABLE executions (
    id INTEGER PRIMARY KEY,
    decision_id INTEGER NOT NULL REFERENCES decision_log(id),
    template_id INTEGER,
    rule_execution_id INTEGER,
    status TEXT NOT NULL,                  -- pending, running, completed, failed, rolled_back, rollback_failed, cancelled
    dry_run INTEGER NOT NULL DEFAULT 0,
    rollback_on_failure INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL DEFAULT '',
    data TEXT,                             -- the steps' template data (event, incident)
    steps TEXT NOT NULL DEFAULT '[]',
    rollback_steps TEXT,
    outcome TEXT NOT NULL DEFAULT '',      -- successful, failed, partially_successful
    error_message TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX executions_decision ON executions (decision_id, id);
CREATE INDEX executions_status ON executions (status, id);
CREATE INDEX executions_created ON executions (created_at, id);

-- One request for a human's approval of one step. The token itself is
-- never stored: token_hash is its SHA-256, unique once set.
CREATE TABLE approvals (
    id INTEGER PRIMARY KEY,
    decision_id INTEGER NOT NULL REFERENCES decision_log(id),
    execution_id INTEGER REFERENCES executions(id),
    step_name TEXT NOT NULL DEFAULT '',
    action_id INTEGER NOT NULL,
    action_name TEXT NOT NULL,
    parameters TEXT NOT NULL DEFAULT '{}',
    params_hash TEXT NOT NULL DEFAULT '',
    risk_level TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    two_person INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,                  -- pending, approved, rejected, expired, used
    expires_at INTEGER NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at INTEGER,
    comment TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL DEFAULT '',
    used_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX approvals_token ON approvals (token_hash) WHERE token_hash <> '';
CREATE INDEX approvals_status ON approvals (status, created_at, id);
CREATE INDEX approvals_decision ON approvals (decision_id, id);

-- The learning data of a (pattern, template) pair: observation is the
-- learning.Observation the success estimator is rebuilt from.
ALTER TABLE learning_data ADD COLUMN pattern TEXT NOT NULL DEFAULT '';
ALTER TABLE learning_data ADD COLUMN template TEXT NOT NULL DEFAULT '';
ALTER TABLE learning_data ADD COLUMN observation TEXT;
CREATE INDEX learning_data_decision ON learning_data (decision_id);

-- Small settings of the service (the kill switch ...), one JSON value
-- per key.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
