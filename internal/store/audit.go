package store

import (
	"context"

	"github.com/reflex-ops/reflex/internal/audit"
)

// AuditStore holds the audit log (autonomous.audit_log in PostgreSQL,
// audit_log in SQLite): append-only, every field stored exactly as
// given, since the records' hashes cover their bytes. It is the store of
// audit.Log; see audit.Store for the contract of each method.
type AuditStore interface {
	// AppendAudit appends the record build makes from the newest one, in
	// one transaction, serialized across processes (see
	// audit.Store.AppendAudit).
	AppendAudit(ctx context.Context, build func(last *audit.Record) (audit.Record, error)) (audit.Record, error)
	// AuditRecords returns at most limit records whose Seq is greater
	// than after, in Seq order.
	AuditRecords(ctx context.Context, after int64, limit int) ([]audit.Record, error)
	// ListAudit returns the records q selects, newest first.
	ListAudit(ctx context.Context, q audit.Query) ([]audit.Record, error)
}
