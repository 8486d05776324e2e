-- The audit log of the autonomous service (internal/audit): one row per
-- record, numbered 1, 2, 3 ... by the application (seq is the unique
-- key that makes a concurrent append of the same number fail), each
-- chained to the previous one by prev_hash and authenticated by hash,
-- an HMAC over every other column. Every column is stored exactly as
-- the application hashed it: parameters is TEXT holding canonical JSON,
-- not JSONB, which would reorder and reformat it.
--
-- The triggers refuse UPDATE, DELETE and TRUNCATE: a guard against
-- accidents (a cleanup script, a mistaken query), not against someone
-- with rights on the database, who can drop them. That is what the HMAC
-- is for: `reflex audit verify` finds what such a person changed.

CREATE TABLE autonomous.audit_log (
    seq BIGINT PRIMARY KEY CHECK (seq > 0),
    recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    parameters TEXT NOT NULL,              -- canonical JSON object
    key_id TEXT NOT NULL,                  -- which key made hash
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_recorded_at ON autonomous.audit_log (recorded_at, seq);
CREATE INDEX audit_log_action ON autonomous.audit_log (action, seq);
CREATE INDEX audit_log_actor ON autonomous.audit_log (actor, seq);
CREATE INDEX audit_log_subject ON autonomous.audit_log (subject, seq);

CREATE FUNCTION autonomous.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'autonomous.audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON autonomous.audit_log
    FOR EACH ROW EXECUTE FUNCTION autonomous.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON autonomous.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION autonomous.audit_log_append_only();
