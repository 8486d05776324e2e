-- What the rules engine keeps: the occurrence (raw event) that made each
-- execution, unique per rule so that a redelivered record cannot fire a
-- rule twice; each rule's firing counters; and the windows and throttles
-- of each rule and group key, so that they continue across a restart.

ALTER TABLE rule_executions ADD COLUMN triggering_raw_event_id INTEGER;
CREATE UNIQUE INDEX rule_executions_occurrence ON rule_executions (trigger_rule_id, triggering_raw_event_id);

ALTER TABLE trigger_rules ADD COLUMN firings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trigger_rules ADD COLUMN suppressed_firings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trigger_rules ADD COLUMN last_fired_at INTEGER;

CREATE TABLE rule_windows (
    rule_id INTEGER NOT NULL,
    group_key TEXT NOT NULL,
    state TEXT NOT NULL,       -- the window package's KeySnapshot as JSON
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rule_id, group_key)
) WITHOUT ROWID;
CREATE INDEX rule_windows_updated ON rule_windows (updated_at);
