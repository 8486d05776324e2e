-- Log templates mined by the template stage (internal/templates), and the
-- hosts each was seen on. Ids are allocated by the stage's miner, not by
-- the database: a stored event's event_data.template.id names a row here.

CREATE TABLE log_templates (
    id INTEGER PRIMARY KEY,
    template_text TEXT NOT NULL,
    example TEXT NOT NULL DEFAULT '',     -- the first message of the template
    folded_into INTEGER,                   -- the template it was folded into, if any
    state TEXT NOT NULL DEFAULT '',       -- the miner's tokens and glue (JSON), to restore it
    count INTEGER NOT NULL DEFAULT 0,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX log_templates_last_seen ON log_templates (last_seen_at, id);

CREATE TABLE log_template_hosts (
    source_host TEXT NOT NULL,
    template_id INTEGER NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (source_host, template_id)
) WITHOUT ROWID;
