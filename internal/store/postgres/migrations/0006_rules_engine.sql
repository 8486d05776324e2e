-- What the rules engine keeps: the occurrence (raw event) that made each
-- execution, unique per rule so that a redelivered record cannot fire a
-- rule twice; each rule's firing counters; and the windows and throttles
-- of each rule and group key, so that they continue across a restart.

ALTER TABLE rules.rule_executions ADD COLUMN triggering_raw_event_id BIGINT;
CREATE UNIQUE INDEX rule_executions_occurrence ON rules.rule_executions (trigger_rule_id, triggering_raw_event_id);

ALTER TABLE rules.trigger_rules
    ADD COLUMN firings BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN suppressed_firings BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_fired_at TIMESTAMP WITH TIME ZONE;

CREATE TABLE rules.rule_windows (
    rule_id BIGINT NOT NULL,
    group_key TEXT NOT NULL,
    state JSONB NOT NULL,      -- the window package's KeySnapshot
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (rule_id, group_key)
);
CREATE INDEX rule_windows_updated ON rules.rule_windows (updated_at);
