-- Tables reflex needs beyond the seed: the asset inventory used by the
-- enricher, and the API keys of the auth layer (hashes only, never secrets).

CREATE TABLE events.assets (
    host TEXT PRIMARY KEY,
    data JSONB NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash BYTEA NOT NULL,
    scopes TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    revoked_at TIMESTAMP WITH TIME ZONE
);
