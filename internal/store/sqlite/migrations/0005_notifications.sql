-- The notification router's tables (PostgreSQL: the notify schema): the
-- policy in use, silences and the record of delivery attempts.

CREATE TABLE notification_policy (
    id INTEGER PRIMARY KEY CHECK (id = 1), -- one row: the policy in use
    document BLOB NOT NULL,                -- as given, secrets included; never answered
    media_type TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers TEXT NOT NULL,                -- JSON object
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX silences_ends_at ON silences (ends_at);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    alerts INTEGER NOT NULL,
    at INTEGER NOT NULL,
    event_ids TEXT NOT NULL DEFAULT '[]',  -- BIGINT[] as a JSON array
    rule_ids TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX notifications_at ON notifications (at);
