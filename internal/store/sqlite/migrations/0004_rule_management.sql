-- What the rule API needs beyond the seed's rules tables: a rule's
-- min_count and group_by, who created it (an API key id: the seed's
-- created_by is an integer user id that reflex does not have), unique
-- names (rule files match rules and templates by name), and the index of
-- the executions list.

ALTER TABLE trigger_rules ADD COLUMN min_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE trigger_rules ADD COLUMN group_by TEXT NOT NULL DEFAULT '["source_host"]'; -- TEXT[] as a JSON array
ALTER TABLE trigger_rules ADD COLUMN created_by_key TEXT;

CREATE UNIQUE INDEX trigger_rules_name ON trigger_rules (rule_name);
CREATE UNIQUE INDEX response_templates_name ON response_templates (template_name);
CREATE INDEX response_templates_rule ON response_templates (trigger_rule_id);
CREATE INDEX rule_executions_rule_started ON rule_executions (trigger_rule_id, started_at);
CREATE INDEX rule_executions_started ON rule_executions (started_at);
