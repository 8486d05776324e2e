-- The seed's ten tables (architecture.md, "Database Schema Design") in
-- SQLite: no schemas (table names without the events., rules. and
-- autonomous. prefixes), times as INTEGER unix microseconds (UTC), arrays
-- and JSON as TEXT holding JSON, DECIMAL as REAL, BOOLEAN as INTEGER 0/1.
-- docs/storage.md lists the mapping and reflex's changes. Columns that are
-- filtered on come before the large text columns, so that reading them does
-- not walk past event payloads.

CREATE TABLE raw_events (
    id INTEGER PRIMARY KEY,              -- allocated at intake (event.IDGen)
    source_system TEXT NOT NULL,         -- VARCHAR(100)
    source_type TEXT NOT NULL,           -- VARCHAR(50)
    received_at INTEGER NOT NULL,
    processed INTEGER DEFAULT 0,
    processing_errors TEXT,              -- TEXT[] as a JSON array
    processed_event_id INTEGER,          -- reflex addition
    raw_data TEXT NOT NULL               -- JSONB
);

CREATE TABLE processed_events (
    id INTEGER PRIMARY KEY,              -- the id of the raw event it came from
    raw_event_id INTEGER,
    event_type TEXT NOT NULL,            -- VARCHAR(100)
    severity TEXT NOT NULL,              -- VARCHAR(20)
    source_host TEXT,                    -- VARCHAR(255)
    source_service TEXT,                 -- VARCHAR(100)
    occurred_at INTEGER NOT NULL,
    processed_at INTEGER,
    correlation_id TEXT,                 -- UUID
    parent_event_id INTEGER,
    source_system TEXT,                  -- reflex additions from here
    source_type TEXT,
    received_at INTEGER,
    fingerprint TEXT,
    occurrence_count INTEGER NOT NULL DEFAULT 1,
    last_seen_at INTEGER,
    priority INTEGER,
    title TEXT NOT NULL,                 -- VARCHAR(500)
    tags TEXT,                           -- VARCHAR(50)[] as a JSON array
    description TEXT,
    event_data TEXT                      -- JSONB
);

CREATE TABLE event_correlations (
    id INTEGER PRIMARY KEY,
    correlation_id TEXT NOT NULL,        -- UUID
    correlation_type TEXT NOT NULL,      -- VARCHAR(50)
    primary_event_id INTEGER,
    related_event_ids TEXT,              -- BIGINT[] as a JSON array
    correlation_score REAL,              -- DECIMAL(3,2)
    correlation_reason TEXT,
    created_at INTEGER
);

CREATE TABLE event_patterns (
    id INTEGER PRIMARY KEY,
    pattern_name TEXT NOT NULL,
    pattern_type TEXT NOT NULL,
    pattern_definition TEXT NOT NULL,
    confidence_threshold REAL DEFAULT 0.8,
    active INTEGER DEFAULT 1,
    created_at INTEGER,
    updated_at INTEGER
);

CREATE TABLE trigger_rules (
    id INTEGER PRIMARY KEY,
    rule_name TEXT NOT NULL,
    rule_description TEXT,
    event_conditions TEXT NOT NULL,
    severity_threshold TEXT,
    time_window_minutes INTEGER,
    max_triggers_per_hour INTEGER DEFAULT 10,
    active INTEGER DEFAULT 1,
    created_by INTEGER,
    created_at INTEGER,
    updated_at INTEGER
);

CREATE TABLE response_templates (
    id INTEGER PRIMARY KEY,
    template_name TEXT NOT NULL,
    template_type TEXT NOT NULL,
    trigger_rule_id INTEGER REFERENCES trigger_rules(id),
    response_definition TEXT NOT NULL,
    approval_required INTEGER DEFAULT 0,
    rollback_supported INTEGER DEFAULT 0,
    max_execution_time_minutes INTEGER DEFAULT 30,
    active INTEGER DEFAULT 1,
    created_at INTEGER
);

CREATE TABLE rule_executions (
    id INTEGER PRIMARY KEY,
    trigger_rule_id INTEGER REFERENCES trigger_rules(id),
    response_template_id INTEGER REFERENCES response_templates(id),
    triggering_event_id INTEGER,
    execution_status TEXT NOT NULL,
    started_at INTEGER,
    completed_at INTEGER,
    execution_result TEXT,
    error_message TEXT,
    human_feedback TEXT,
    feedback_notes TEXT
);

CREATE TABLE action_definitions (
    id INTEGER PRIMARY KEY,
    action_name TEXT NOT NULL,
    action_type TEXT NOT NULL,
    action_category TEXT,
    automation_script_id INTEGER,
    risk_level TEXT DEFAULT 'medium',
    approval_required INTEGER DEFAULT 1,
    rollback_script_id INTEGER,
    estimated_duration_minutes INTEGER,
    success_criteria TEXT,
    created_at INTEGER
);

CREATE TABLE decision_log (
    id INTEGER PRIMARY KEY,
    event_id INTEGER,
    decision_type TEXT NOT NULL,
    confidence_score REAL NOT NULL,
    reasoning TEXT NOT NULL,
    recommended_actions TEXT,
    human_override INTEGER DEFAULT 0,
    override_reason TEXT,
    decision_outcome TEXT,
    created_at INTEGER
);

CREATE TABLE learning_data (
    id INTEGER PRIMARY KEY,
    event_pattern_id INTEGER REFERENCES event_patterns(id),
    decision_id INTEGER REFERENCES decision_log(id),
    action_taken TEXT,
    outcome_success INTEGER,
    outcome_metrics TEXT,
    lessons_learned TEXT,
    knowledge_updates TEXT,
    created_at INTEGER
);
