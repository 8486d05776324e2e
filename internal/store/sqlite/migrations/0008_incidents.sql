-- The incident engine's tables: incidents (correlated events with a
-- lifecycle and a ranking of their probable root causes) and the events
-- of each, one incident per event.

CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,                -- the id of the event that opened it
    correlation_id TEXT NOT NULL,          -- UUID of its event_correlations row
    status TEXT NOT NULL,                  -- open, acknowledged, resolved
    title TEXT NOT NULL DEFAULT '',
    correlation_type TEXT NOT NULL DEFAULT 'time_based',
    root_event_id INTEGER,
    root_cause_ranking TEXT NOT NULL DEFAULT '[]', -- JSON array of candidates
    event_count INTEGER NOT NULL DEFAULT 0,
    hosts TEXT NOT NULL DEFAULT '[]',      -- JSON array of host names
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    acknowledged_at INTEGER,
    resolved_at INTEGER
);
CREATE INDEX incidents_opened ON incidents (opened_at, id);
CREATE INDEX incidents_status ON incidents (status, updated_at);

CREATE TABLE incident_events (
    event_id INTEGER PRIMARY KEY,          -- a processed event is in one incident at most
    incident_id INTEGER NOT NULL,
    added_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX incident_events_incident ON incident_events (incident_id, event_id);
