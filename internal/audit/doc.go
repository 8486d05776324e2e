// Package audit is the tamper-evident audit log of the Autonomous Response
// Service: every decision, approval request, approval, rejection,
// execution and execution step, rollback, refusal, escalation, override,
// pause, resume, policy change, change of an action definition, feedback
// and demotion is appended as a Record (the Action constants list them).
//
// # Records
//
// A Record holds a sequence number (1, 2, 3 ... without gaps), the time
// (UTC, whole microseconds, from the injected clock), the actor (an API
// key's id or name, or "system" for reflex itself), the action, the
// subject ("decision:12", "execution:7/step:restart"), the parameters (a
// JSON object), the id of the key that authenticated it, the previous
// record's hash and its own hash:
//
//	hash = hex(HMAC-SHA256(key, Canonical(record)))
//
// Canonical is every other field, the previous hash included, each
// length-prefixed (see Record.Canonical), so that no two records encode
// alike. Record 1 chains to Genesis (64 zeros). Whoever can write the
// database but does not hold the key cannot make a record that verifies:
// changing, removing, inserting or reordering records breaks the chain
// at the first record concerned, and Verify names it.
//
// # Secrets
//
// Parameters are redacted before they are hashed and stored: the value
// of every object member whose name contains, in any case, token,
// secret, password, passwd, key, authorization, cookie or credential
// becomes "[redacted]", at any depth and in objects within arrays
// (Redact, IsSecretName). Actor and subject are not redacted: they must
// never hold a secret. The key is never logged, printed or returned in an
// error; a Key shows only its ID.
//
// # The key
//
// The key is 32 random bytes in a file: LoadKey reads a file named by
// the operator, LoadOrCreateKey keeps <data dir>/audit.key, creating it
// (mode 0600) on first use. A key file that group or others can read is
// refused. Every process appending to one database (with PostgreSQL, the
// events and the autonomous services) must have the same key: Append
// refuses to chain onto a record made with another key (ErrKeyMismatch).
//
// # Fail closed
//
// Append returns an error when the record could not be stored (the
// database is down or closed, the entry is invalid, the key differs);
// callers then refuse the action they were about to take and say so.
// Nothing is done that the log does not show. Appends are serialized: in
// a process by the Log, across processes by the store (PostgreSQL takes
// an advisory lock in the append's transaction and the unique sequence
// number is the backstop; SQLite has one writer). Failures count in
// reflex_audit_append_failures_total, records in
// reflex_audit_records_total{action}.
//
// # Verification
//
// Verify walks the log a page at a time, recomputes every hash, and
// returns a Report naming the first bad record and its Kind. What it
// cannot see by itself is the removal of the newest records (the log
// just ends earlier): Log.Head gives the newest record's number and hash
// for an operator to note elsewhere, and Verify checks noted heads.
//
// The stores (internal/store) keep the log in autonomous.audit_log
// (PostgreSQL) and audit_log (SQLite). Triggers refuse UPDATE, DELETE
// (and in PostgreSQL TRUNCATE) on it: a guard against accidents, not
// against someone with rights on the database, which is what the HMAC
// is for.
package audit
