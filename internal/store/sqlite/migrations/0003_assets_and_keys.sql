-- The asset inventory and the API keys (PostgreSQL: events.assets and
-- auth.api_keys).

CREATE TABLE assets (
    host TEXT PRIMARY KEY,
    data TEXT NOT NULL,                  -- the asset as a JSON document
    updated_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash BLOB NOT NULL,
    scopes TEXT NOT NULL DEFAULT '[]',   -- TEXT[] as a JSON array
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
