-- Maintenance windows (internal/maintenance): a time range during which
-- the targets their matchers select are worked on. Listed by time, in
-- force now = starts_at <= now < ends_at, pruned by ends_at.

CREATE TABLE events.maintenance_windows (
    id BIGSERIAL PRIMARY KEY,
    matchers JSONB NOT NULL,
    starts_at TIMESTAMP WITH TIME ZONE NOT NULL,
    ends_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX maintenance_windows_ends_at ON events.maintenance_windows (ends_at);
