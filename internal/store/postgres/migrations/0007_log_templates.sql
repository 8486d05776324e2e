-- Log templates mined by the template stage (internal/templates), and the
-- hosts each was seen on. Ids are allocated by the stage's miner, not by
-- the database: a stored event's event_data.template.id names a row here.

CREATE TABLE events.log_templates (
    id BIGINT PRIMARY KEY,
    template_text TEXT NOT NULL,
    example TEXT NOT NULL DEFAULT '',     -- the first message of the template
    folded_into BIGINT,                   -- the template it was folded into, if any
    state TEXT NOT NULL DEFAULT '',       -- the miner's tokens and glue (JSON), to restore it
    count BIGINT NOT NULL DEFAULT 0,
    first_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX log_templates_last_seen ON events.log_templates (last_seen_at, id);

CREATE TABLE events.log_template_hosts (
    source_host TEXT NOT NULL,
    template_id BIGINT NOT NULL,
    first_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (source_host, template_id)
);
