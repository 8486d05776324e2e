-- The notification router's tables, in a schema of their own (notify): the
-- policy in use, silences and the record of delivery attempts.

CREATE SCHEMA IF NOT EXISTS notify;

CREATE TABLE notify.notification_policy (
    id INTEGER PRIMARY KEY CHECK (id = 1), -- one row: the policy in use
    document BYTEA NOT NULL,               -- as given, secrets included; never answered
    media_type TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE TABLE notify.silences (
    id BIGSERIAL PRIMARY KEY,
    matchers JSONB NOT NULL,
    starts_at TIMESTAMP WITH TIME ZONE NOT NULL,
    ends_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX silences_ends_at ON notify.silences (ends_at);

CREATE TABLE notify.notifications (
    id BIGSERIAL PRIMARY KEY,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    alerts INTEGER NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    event_ids BIGINT[] NOT NULL DEFAULT '{}',
    rule_ids BIGINT[] NOT NULL DEFAULT '{}'
);
CREATE INDEX notifications_at ON notify.notifications (at);
