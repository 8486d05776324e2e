-- The seed's three schemas and ten tables (architecture.md, "Database Schema
-- Design"), with the changes that partitioning and reflex's pipeline need.
-- Every change is listed with its reason in docs/storage.md.

CREATE SCHEMA IF NOT EXISTS events;

-- Raw events from all sources. Partitioned by day on received_at: the primary
-- key includes the partition column; ids are allocated at intake (event.IDGen),
-- not by a sequence.
CREATE TABLE events.raw_events (
    id BIGINT NOT NULL,
    source_system VARCHAR(100) NOT NULL,
    source_type VARCHAR(50) NOT NULL, -- snmp, syslog, webhook, email, etc.
    raw_data JSONB NOT NULL,
    received_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    processed BOOLEAN DEFAULT FALSE,
    processing_errors TEXT[],
    processed_event_id BIGINT, -- reflex: the processed event it became or was folded into
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);

-- Normalized and enriched events. Partitioned by day on occurred_at. The
-- foreign keys raw_event_id and parent_event_id cannot be declared: they
-- would reference partitioned tables whose keys include the partition column.
CREATE TABLE events.processed_events (
    id BIGINT NOT NULL,
    raw_event_id BIGINT,
    event_type VARCHAR(100) NOT NULL,
    severity VARCHAR(20) NOT NULL, -- critical, high, medium, low, info
    source_host VARCHAR(255),
    source_service VARCHAR(100),
    title VARCHAR(500) NOT NULL,
    description TEXT,
    event_data JSONB,
    tags VARCHAR(50)[],
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    processed_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    correlation_id UUID,
    parent_event_id BIGINT,
    -- reflex additions
    source_system VARCHAR(100),
    source_type VARCHAR(50),
    received_at TIMESTAMP WITH TIME ZONE,
    fingerprint VARCHAR(32),
    occurrence_count INTEGER NOT NULL DEFAULT 1,
    last_seen_at TIMESTAMP WITH TIME ZONE,
    priority SMALLINT,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Event correlation and grouping. primary_event_id cannot reference the
-- partitioned processed_events.
CREATE TABLE events.event_correlations (
    id BIGSERIAL PRIMARY KEY,
    correlation_id UUID NOT NULL,
    correlation_type VARCHAR(50) NOT NULL, -- time_based, pattern_based, causal
    primary_event_id BIGINT,
    related_event_ids BIGINT[],
    correlation_score DECIMAL(3,2),
    correlation_reason TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Event patterns and signatures
CREATE TABLE events.event_patterns (
    id BIGSERIAL PRIMARY KEY,
    pattern_name VARCHAR(200) NOT NULL,
    pattern_type VARCHAR(50) NOT NULL, -- sequence, frequency, anomaly
    pattern_definition JSONB NOT NULL,
    confidence_threshold DECIMAL(3,2) DEFAULT 0.8,
    active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE SCHEMA IF NOT EXISTS rules;

-- Trigger rules for automated responses
CREATE TABLE rules.trigger_rules (
    id BIGSERIAL PRIMARY KEY,
    rule_name VARCHAR(200) NOT NULL,
    rule_description TEXT,
    event_conditions JSONB NOT NULL,
    severity_threshold VARCHAR(20),
    time_window_minutes INTEGER,
    max_triggers_per_hour INTEGER DEFAULT 10,
    active BOOLEAN DEFAULT TRUE,
    created_by INTEGER,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Response templates and playbooks
CREATE TABLE rules.response_templates (
    id BIGSERIAL PRIMARY KEY,
    template_name VARCHAR(200) NOT NULL,
    template_type VARCHAR(50) NOT NULL, -- investigation, remediation, escalation
    trigger_rule_id INTEGER REFERENCES rules.trigger_rules(id),
    response_definition JSONB NOT NULL,
    approval_required BOOLEAN DEFAULT FALSE,
    rollback_supported BOOLEAN DEFAULT FALSE,
    max_execution_time_minutes INTEGER DEFAULT 30,
    active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Rule execution history and performance. triggering_event_id cannot
-- reference the partitioned processed_events.
CREATE TABLE rules.rule_executions (
    id BIGSERIAL PRIMARY KEY,
    trigger_rule_id INTEGER REFERENCES rules.trigger_rules(id),
    response_template_id INTEGER REFERENCES rules.response_templates(id),
    triggering_event_id BIGINT,
    execution_status VARCHAR(50) NOT NULL, -- pending, running, completed, failed, cancelled
    started_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    completed_at TIMESTAMP WITH TIME ZONE,
    execution_result JSONB,
    error_message TEXT,
    human_feedback VARCHAR(20), -- helpful, not_helpful, incorrect
    feedback_notes TEXT
);

CREATE SCHEMA IF NOT EXISTS autonomous;

-- Autonomous action definitions
CREATE TABLE autonomous.action_definitions (
    id BIGSERIAL PRIMARY KEY,
    action_name VARCHAR(200) NOT NULL,
    action_type VARCHAR(50) NOT NULL, -- diagnostic, remediation, notification
    action_category VARCHAR(100), -- system, network, application, security
    automation_script_id INTEGER,
    risk_level VARCHAR(20) DEFAULT 'medium', -- low, medium, high, critical
    approval_required BOOLEAN DEFAULT TRUE,
    rollback_script_id INTEGER,
    estimated_duration_minutes INTEGER,
    success_criteria JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Autonomous decision log. event_id cannot reference the partitioned
-- processed_events.
CREATE TABLE autonomous.decision_log (
    id BIGSERIAL PRIMARY KEY,
    event_id BIGINT,
    decision_type VARCHAR(50) NOT NULL, -- investigate, automate, escalate, ignore
    confidence_score DECIMAL(3,2) NOT NULL,
    reasoning TEXT NOT NULL,
    recommended_actions JSONB,
    human_override BOOLEAN DEFAULT FALSE,
    override_reason TEXT,
    decision_outcome VARCHAR(50), -- successful, failed, partially_successful
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Learning and improvement tracking
CREATE TABLE autonomous.learning_data (
    id BIGSERIAL PRIMARY KEY,
    event_pattern_id INTEGER REFERENCES events.event_patterns(id),
    decision_id BIGINT REFERENCES autonomous.decision_log(id),
    action_taken JSONB,
    outcome_success BOOLEAN,
    outcome_metrics JSONB, -- response_time, resolution_time, user_satisfaction
    lessons_learned TEXT,
    knowledge_updates JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
