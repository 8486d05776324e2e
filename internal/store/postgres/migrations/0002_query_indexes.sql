-- The indexes the query endpoints need, and no more: every index is written
-- on every insert. docs/storage.md justifies each one.

-- GET /api/v1/events: newest first over a time range (hours, since/until).
CREATE INDEX processed_events_occurred_at_idx
    ON events.processed_events (occurred_at);
-- GET /api/v1/events?host=...: the seed's example query.
CREATE INDEX processed_events_host_occurred_at_idx
    ON events.processed_events (source_host, occurred_at);
-- GET /api/v1/events?severity=critical: critical events are rare, so a scan
-- in time order would read a great many rows to find a page of them.
CREATE INDEX processed_events_severity_occurred_at_idx
    ON events.processed_events (severity, occurred_at);
-- GET /api/v1/events?correlation_id=...: the members of one group.
CREATE INDEX processed_events_correlation_id_idx
    ON events.processed_events (correlation_id) WHERE correlation_id IS NOT NULL;
-- RecentEvents: events received before the window but seen again inside it.
-- Only repeated events (occurrence_count > 1) enter this index.
CREATE INDEX processed_events_repeat_last_seen_idx
    ON events.processed_events (last_seen_at) WHERE occurrence_count > 1;

-- The pipeline replaces a correlation row by its correlation_id.
CREATE UNIQUE INDEX event_correlations_correlation_id_key
    ON events.event_correlations (correlation_id);
-- GET /api/v1/events/{id}/correlations: the causal groups an event is the
-- parent of, and the one naming it as a child (found through its parent).
CREATE INDEX event_correlations_primary_event_id_idx
    ON events.event_correlations (primary_event_id);
