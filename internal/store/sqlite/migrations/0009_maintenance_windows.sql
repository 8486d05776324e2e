-- Maintenance windows (internal/maintenance): a time range during which
-- the targets their matchers select are worked on. Listed by time, in
-- force now = starts_at <= now < ends_at, pruned by ends_at.

CREATE TABLE maintenance_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers TEXT NOT NULL,                -- JSON object
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX maintenance_windows_ends_at ON maintenance_windows (ends_at);
