-- The incident engine's tables (events schema): incidents (correlated
-- events with a lifecycle and a ranking of their probable root causes)
-- and the events of each, one incident per event. incident_events is not
-- partitioned: it holds the events that are in incidents only, and the
-- event reads look their incident up in it by event id.

CREATE TABLE events.incidents (
    id BIGINT PRIMARY KEY,                 -- the id of the event that opened it
    correlation_id UUID NOT NULL,          -- of its event_correlations row
    status TEXT NOT NULL,                  -- open, acknowledged, resolved
    title TEXT NOT NULL DEFAULT '',
    correlation_type TEXT NOT NULL DEFAULT 'time_based',
    root_event_id BIGINT,
    root_cause_ranking TEXT NOT NULL DEFAULT '[]', -- JSON array of candidates
    event_count INTEGER NOT NULL DEFAULT 0,
    hosts TEXT NOT NULL DEFAULT '[]',      -- JSON array of host names
    opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    acknowledged_at TIMESTAMP WITH TIME ZONE,
    resolved_at TIMESTAMP WITH TIME ZONE
);
CREATE INDEX incidents_opened ON events.incidents (opened_at, id);
CREATE INDEX incidents_status ON events.incidents (status, updated_at);

CREATE TABLE events.incident_events (
    event_id BIGINT PRIMARY KEY,           -- a processed event is in one incident at most
    incident_id BIGINT NOT NULL,
    added_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX incident_events_incident ON events.incident_events (incident_id, event_id);
