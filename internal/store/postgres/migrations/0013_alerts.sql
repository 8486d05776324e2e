-- The alert lifecycle (events schema): one row per alert of a source
-- (source type and the source's alert key), pointing at the event of its
-- current episode, firing until a resolution resolves it. Written by the
-- incident engine; the event reads take resolved_at from it.

CREATE TABLE events.alerts (
    source_type TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    event_id BIGINT NOT NULL,              -- the firing event of the current episode
    status TEXT NOT NULL,                  -- firing, resolved
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    resolved_at TIMESTAMP WITH TIME ZONE,
    resolved_by BIGINT,                    -- the resolution event
    last_event_id BIGINT NOT NULL,         -- the latest event applied (redeliveries of older ones change nothing)
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (source_type, alert_key)
);
CREATE INDEX alerts_event ON events.alerts (event_id);
CREATE INDEX alerts_updated ON events.alerts (status, updated_at);
