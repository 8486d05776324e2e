-- Action definitions of the autonomous service (internal/actions): what a
-- response template's step names by its "script". The seed's columns stay;
-- these add the executor that runs the action, the rollback action by
-- name, a description, an enabled switch and the time of the last change.
-- action_name becomes unique: templates refer to actions by it.

ALTER TABLE action_definitions ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE action_definitions ADD COLUMN rollback_action TEXT NOT NULL DEFAULT '';
ALTER TABLE action_definitions ADD COLUMN executor TEXT NOT NULL DEFAULT '{}';
ALTER TABLE action_definitions ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE action_definitions ADD COLUMN updated_at INTEGER;
CREATE UNIQUE INDEX action_definitions_name ON action_definitions (action_name);
