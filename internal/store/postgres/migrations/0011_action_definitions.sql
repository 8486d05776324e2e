-- Action definitions of the autonomous service (internal/actions): what a
-- response template's step names by its "script". The seed's columns stay;
-- these add the executor that runs the action, the rollback action by
-- name, a description, an enabled switch and the time of the last change.
-- action_name becomes unique: templates refer to actions by it.

ALTER TABLE autonomous.action_definitions
    ADD COLUMN description TEXT NOT NULL DEFAULT '',
    ADD COLUMN rollback_action VARCHAR(200) NOT NULL DEFAULT '',
    ADD COLUMN executor JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE;
CREATE UNIQUE INDEX action_definitions_name ON autonomous.action_definitions (action_name);
