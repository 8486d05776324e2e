-- The alert lifecycle: one row per alert of a source (source type and the
-- source's alert key), pointing at the event of its current episode,
-- firing until a resolution resolves it. Written by the incident engine;
-- the event reads take resolved_at from it.

CREATE TABLE alerts (
    source_type TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    event_id INTEGER NOT NULL,             -- the firing event of the current episode
    status TEXT NOT NULL,                  -- firing, resolved
    started_at INTEGER NOT NULL,
    resolved_at INTEGER,
    resolved_by INTEGER,                   -- the resolution event
    last_event_id INTEGER NOT NULL,        -- the latest event applied (redeliveries of older ones change nothing)
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source_type, alert_key)
) WITHOUT ROWID;
CREATE INDEX alerts_event ON alerts (event_id);
CREATE INDEX alerts_updated ON alerts (status, updated_at);
