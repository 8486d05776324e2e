package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/storetest"
)

func openTest(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "reflex.db"))
	})
}

func TestUnreadableRows(t *testing.T) {
	storetest.RunUnreadable(t, storetest.Unreadable{
		Open: func(t *testing.T, reg prometheus.Registerer) storetest.Events {
			s, err := Open(t.Context(), Options{Path: filepath.Join(t.TempDir(), "reflex.db"), Registerer: reg})
			require.NoError(t, err)
			return s
		},
		Corrupt: func(t *testing.T, s storetest.Events, id int64) {
			n, err := s.(*Store).w.ExecContext(t.Context(), `UPDATE processed_events SET event_data = ? WHERE id = ?`,
				storetest.PoisonData, id)
			require.NoError(t, err)
			rows, err := n.RowsAffected()
			require.NoError(t, err)
			require.Equal(t, int64(1), rows)
		},
	})
}

func TestPoisonedBatch(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "reflex.db"))
	require.NoError(t, s.Migrate(t.Context()))
	_, err := s.w.ExecContext(t.Context(), `CREATE TRIGGER poison BEFORE INSERT ON processed_events
		WHEN NEW.title = '`+storetest.PoisonTitle+`' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
	require.NoError(t, err)
	storetest.RunPoisoned(t, s)
}

func TestMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reflex.db")
	t.Run("concurrent processes", func(t *testing.T) {
		a, b := openTest(t, path), openTest(t, path)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Migrate(t.Context())
			}()
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
	})
	s := openTest(t, path)
	require.NoError(t, s.Migrate(t.Context()))
	ms, err := migrations()
	require.NoError(t, err)
	var versions []int
	rows, err := s.r.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	require.Len(t, versions, len(ms))
	for i, m := range ms {
		require.Equal(t, m.Version, versions[i])
	}

	t.Run("the seed's tables exist", func(t *testing.T) {
		for _, name := range []string{"raw_events", "processed_events", "event_correlations", "event_patterns",
			"trigger_rules", "response_templates", "rule_executions", "action_definitions", "decision_log",
			"learning_data", "assets", "api_keys", "executions", "approvals", "settings"} {
			var n int
			require.NoError(t, s.r.QueryRowContext(t.Context(),
				`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n))
			require.Equal(t, 1, n, name)
		}
	})
	t.Run("pragmas", func(t *testing.T) {
		var mode string
		require.NoError(t, s.w.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode))
		require.Equal(t, "wal", mode)
		var sync int
		require.NoError(t, s.w.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&sync))
		require.Equal(t, 2, sync, "synchronous=FULL")
		var fk int
		require.NoError(t, s.r.QueryRowContext(t.Context(), `PRAGMA foreign_keys`).Scan(&fk))
		require.Equal(t, 0, fk)
	})
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(t.Context(), Options{})
	require.Error(t, err)
	_, err = Open(t.Context(), Options{Path: filepath.Join(t.TempDir(), "a?b.db")})
	require.Error(t, err)
}

func TestWriteAfterClose(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "reflex.db"))
	require.NoError(t, s.Migrate(t.Context()))
	require.NoError(t, s.Close())
	w := storetest.Workload{}
	require.Error(t, s.WriteBatch(t.Context(), w.Next(10)))
}

func BenchmarkWriteBatch(b *testing.B) {
	for _, lanes := range []int{1, 4} {
		b.Run("lanes="+string(rune('0'+lanes)), func(b *testing.B) {
			s := openTest(b, filepath.Join(b.TempDir(), "reflex.db"))
			require.NoError(b, s.Migrate(context.Background()))
			storetest.BenchWriteBatch(b, s, lanes)
		})
	}
}

func BenchmarkHistory(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "reflex.db"))
	require.NoError(b, s.Migrate(context.Background()))
	storetest.BenchHistory(b, s, 200_000)
}

// TestAuditAppendOnly: the triggers refuse to change or delete audit
// records (a guard against accidents; the HMAC is what detects the rest).
func TestAuditAppendOnly(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "reflex.db"))
	require.NoError(t, s.Migrate(t.Context()))
	_, err := s.AppendAudit(t.Context(), func(*audit.Record) (audit.Record, error) {
		return audit.Record{Seq: 1, Actor: "system", Action: audit.ActionPause, Parameters: []byte(`{}`), PrevHash: audit.Genesis, Hash: audit.Genesis}, nil
	})
	require.NoError(t, err)
	for _, q := range []string{`UPDATE audit_log SET actor = 'x'`, `DELETE FROM audit_log`, `UPDATE audit_log SET seq = 2`} {
		_, err := s.w.ExecContext(t.Context(), q)
		require.ErrorContains(t, err, "audit_log is append-only", q)
	}
	rs, err := s.AuditRecords(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, "system", rs[0].Actor)
}
