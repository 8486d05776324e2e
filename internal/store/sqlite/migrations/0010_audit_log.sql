-- The audit log of the autonomous service (internal/audit): one row per
-- record, numbered 1, 2, 3 ... by the application (seq, the rowid, is
-- the unique key), each chained to the previous one by prev_hash and
-- authenticated by hash, an HMAC over every other column. Every column
-- is stored exactly as the application hashed it (parameters: canonical
-- JSON text; recorded_at: unix microseconds).
--
-- The triggers refuse UPDATE and DELETE: a guard against accidents, not
-- against someone who can write the file, who can drop them. That is
-- what the HMAC is for: `reflex audit verify` finds what was changed.

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY CHECK (seq > 0),
    recorded_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    parameters TEXT NOT NULL,              -- canonical JSON object
    key_id TEXT NOT NULL,                  -- which key made hash
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_recorded_at ON audit_log (recorded_at, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
