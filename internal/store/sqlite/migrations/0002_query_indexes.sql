-- The same indexes as PostgreSQL's 0002 (docs/storage.md justifies each).
-- raw_events needs none: its lookups are by id, the rowid.

CREATE INDEX processed_events_occurred_at_idx ON processed_events (occurred_at);
CREATE INDEX processed_events_host_occurred_at_idx ON processed_events (source_host, occurred_at);
CREATE INDEX processed_events_severity_occurred_at_idx ON processed_events (severity, occurred_at);
CREATE INDEX processed_events_correlation_id_idx ON processed_events (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX processed_events_repeat_last_seen_idx ON processed_events (last_seen_at)
    WHERE occurrence_count > 1;

CREATE UNIQUE INDEX event_correlations_correlation_id_key ON event_correlations (correlation_id);
CREATE INDEX event_correlations_primary_event_id_idx ON event_correlations (primary_event_id);
