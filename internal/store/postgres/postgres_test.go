package postgres

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/storetest"
	"github.com/reflex-ops/reflex/internal/testutil"
)

func openTest(t testing.TB, url string, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: url, Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	testutil.PostgresURL(t) // skip the whole suite early without a server
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, testutil.PostgresURL(t), nil)
	})
}

func TestUnreadableRows(t *testing.T) {
	storetest.RunUnreadable(t, storetest.Unreadable{
		Open: func(t *testing.T, reg prometheus.Registerer) storetest.Events {
			s, err := Open(t.Context(), Options{URL: testutil.PostgresURL(t), Registerer: reg})
			require.NoError(t, err)
			return s
		},
		Corrupt: func(t *testing.T, s storetest.Events, id int64) {
			// jsonb keeps 1e309 as a numeric; Go's float64 cannot hold it.
			tag, err := s.(*Store).pool.Exec(t.Context(), `UPDATE events.processed_events SET event_data = $1::jsonb WHERE id = $2`,
				storetest.PoisonData, id)
			require.NoError(t, err)
			require.Equal(t, int64(1), tag.RowsAffected())
		},
	})
}

func TestPoisonedBatch(t *testing.T) {
	s := openTest(t, testutil.PostgresURL(t), nil)
	require.NoError(t, s.Migrate(t.Context()))
	_, err := s.pool.Exec(t.Context(), `
		CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.title = '`+storetest.PoisonTitle+`' THEN RAISE EXCEPTION 'poisoned'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER poison BEFORE INSERT ON events.processed_events
			FOR EACH ROW EXECUTE FUNCTION public.poison();`)
	require.NoError(t, err)
	storetest.RunPoisoned(t, s)
}

// seedColumns are the seed's ten tables and their columns (architecture.md),
// as PostgreSQL's format_type spells their types.
var seedColumns = map[string]string{
	"events.raw_events": `id bigint; source_system character varying(100); source_type character varying(50);
		raw_data jsonb; received_at timestamp with time zone; processed boolean; processing_errors text[]`,
	"events.processed_events": `id bigint; raw_event_id bigint; event_type character varying(100);
		severity character varying(20); source_host character varying(255); source_service character varying(100);
		title character varying(500); description text; event_data jsonb; tags character varying(50)[];
		occurred_at timestamp with time zone; processed_at timestamp with time zone; correlation_id uuid;
		parent_event_id bigint`,
	"events.event_correlations": `id bigint; correlation_id uuid; correlation_type character varying(50);
		primary_event_id bigint; related_event_ids bigint[]; correlation_score numeric(3,2);
		correlation_reason text; created_at timestamp with time zone`,
	"events.event_patterns": `id bigint; pattern_name character varying(200); pattern_type character varying(50);
		pattern_definition jsonb; confidence_threshold numeric(3,2); active boolean;
		created_at timestamp with time zone; updated_at timestamp with time zone`,
	"rules.trigger_rules": `id bigint; rule_name character varying(200); rule_description text;
		event_conditions jsonb; severity_threshold character varying(20); time_window_minutes integer;
		max_triggers_per_hour integer; active boolean; created_by integer;
		created_at timestamp with time zone; updated_at timestamp with time zone`,
	"rules.response_templates": `id bigint; template_name character varying(200); template_type character varying(50);
		trigger_rule_id integer; response_definition jsonb; approval_required boolean; rollback_supported boolean;
		max_execution_time_minutes integer; active boolean; created_at timestamp with time zone`,
	"rules.rule_executions": `id bigint; trigger_rule_id integer; response_template_id integer;
		triggering_event_id bigint; execution_status character varying(50); started_at timestamp with time zone;
		completed_at timestamp with time zone; execution_result jsonb; error_message text;
		human_feedback character varying(20); feedback_notes text`,
	"autonomous.action_definitions": `id bigint; action_name character varying(200); action_type character varying(50);
		action_category character varying(100); automation_script_id integer; risk_level character varying(20);
		approval_required boolean; rollback_script_id integer; estimated_duration_minutes integer;
		success_criteria jsonb; created_at timestamp with time zone`,
	"autonomous.decision_log": `id bigint; event_id bigint; decision_type character varying(50);
		confidence_score numeric(3,2); reasoning text; recommended_actions jsonb; human_override boolean;
		override_reason text; decision_outcome character varying(50); created_at timestamp with time zone`,
	"autonomous.learning_data": `id bigint; event_pattern_id integer; decision_id bigint; action_taken jsonb;
		outcome_success boolean; outcome_metrics jsonb; lessons_learned text; knowledge_updates jsonb;
		created_at timestamp with time zone`,
}

func TestSchema(t *testing.T) {
	s := openTest(t, testutil.PostgresURL(t), nil)
	ctx := t.Context()
	require.NoError(t, s.Migrate(ctx))

	t.Run("the seed's schemas", func(t *testing.T) {
		for _, schema := range []string{"events", "rules", "autonomous"} {
			var ok bool
			require.NoError(t, s.pool.QueryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok))
			require.True(t, ok, schema)
		}
	})
	names := make([]string, 0, len(seedColumns))
	for n := range seedColumns {
		names = append(names, n)
	}
	sort.Strings(names)
	require.Len(t, names, 10)
	for _, table := range names {
		t.Run(table, func(t *testing.T) {
			rows, err := s.pool.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod)
				FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, table)
			require.NoError(t, err)
			have := map[string]string{}
			for rows.Next() {
				var name, typ string
				require.NoError(t, rows.Scan(&name, &typ))
				have[name] = typ
			}
			require.NoError(t, rows.Err())
			for _, col := range strings.Split(seedColumns[table], ";") {
				name, typ, ok := strings.Cut(strings.TrimSpace(col), " ")
				require.True(t, ok, col)
				require.Contains(t, have, name, "%s.%s", table, name)
				require.Equal(t, typ, have[name], "%s.%s", table, name)
			}
		})
	}
	t.Run("events are partitioned by day", func(t *testing.T) {
		for table, key := range map[string]string{"events.raw_events": "received_at", "events.processed_events": "occurred_at"} {
			var def string
			require.NoError(t, s.pool.QueryRow(ctx, `SELECT pg_get_partkeydef($1::regclass)`, table).Scan(&def))
			require.Equal(t, "RANGE ("+key+")", def)
		}
	})
	t.Run("reflex's tables", func(t *testing.T) {
		for _, table := range []string{"events.assets", "auth.api_keys", "public.schema_migrations",
			"autonomous.executions", "autonomous.approvals", "autonomous.settings"} {
			var ok bool
			require.NoError(t, s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok))
			require.True(t, ok, table)
		}
	})
}

func TestMigrate(t *testing.T) {
	url := testutil.PostgresURL(t)
	ctx := t.Context()
	t.Run("concurrent instances", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			s := openTest(t, url, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Migrate(ctx)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
	})
	s := openTest(t, url, nil)
	require.NoError(t, s.Migrate(ctx))
	ms, err := migrations()
	require.NoError(t, err)
	var n int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM public.schema_migrations`).Scan(&n))
	require.Equal(t, len(ms), n)
}

func TestPartitions(t *testing.T) {
	url := testutil.PostgresURL(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 27, 23, 30, 0, 0, time.UTC)
	s, err := Open(ctx, Options{URL: url, Now: func() time.Time { return now }, PartitionDaysAhead: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(ctx))

	names := func(table string) []string {
		have, err := listPartitions(ctx, s.pool, table)
		require.NoError(t, err)
		var out []string
		for _, n := range have {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	t.Run("created ahead at migrate", func(t *testing.T) {
		want := []string{"raw_events_p20261127", "raw_events_p20261128", "raw_events_p20261129"}
		require.Equal(t, want, names(rawTable))
		require.Len(t, names(processedTable), 3)
	})
	t.Run("created on demand", func(t *testing.T) {
		w := storetest.Workload{Hosts: 10, Now: now}
		b := w.Next(5)
		b.New[0].OccurredAt = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		require.NoError(t, s.WriteBatch(ctx, b))
		require.Contains(t, names(processedTable), "processed_events_p20260501")
		require.NotContains(t, names(rawTable), "raw_events_p20260501")
	})
	t.Run("the next day at Open", func(t *testing.T) {
		now = now.Add(24 * time.Hour)
		openTest(t, url, func() time.Time { return now })
		require.Contains(t, names(rawTable), "raw_events_p20261130")
		// and through the batches of a running store
		now = now.Add(24 * time.Hour)
		w := storetest.Workload{Hosts: 10, Now: now}
		require.NoError(t, s.WriteBatch(ctx, w.Next(3)))
		require.Contains(t, names(processedTable), "processed_events_p20261201")
	})
	t.Run("retention drops whole days before the cutoff", func(t *testing.T) {
		n, err := s.EnforceRetention(ctx, time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		// The first batch: 5 raw events received on the 27th, 5 processed
		// events that occurred on May 1 and the 27th; counted, not -1.
		require.Equal(t, int64(10), n)
		for _, p := range names(processedTable) {
			require.GreaterOrEqual(t, p, "processed_events_p20261128", "the 28th is not wholly before the cutoff")
		}
	})
	t.Run("a partition dropped by another instance first counts 0", func(t *testing.T) {
		n, err := s.dropPartition(ctx, "processed_events_p19990101")
		require.NoError(t, err)
		require.Zero(t, n)
	})
	t.Run("a partition dropped behind the cache is recreated", func(t *testing.T) {
		old := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
		w := storetest.Workload{Hosts: 10, Now: now}
		b := w.Next(2)
		b.New[0].OccurredAt = old
		require.NoError(t, s.WriteBatch(ctx, b))
		// Another instance's retention drops it.
		_, err := s.pool.Exec(ctx, `DROP TABLE events.processed_events_p20260303`)
		require.NoError(t, err)
		b = w.Next(2)
		b.New[0].OccurredAt = old
		require.NoError(t, s.WriteBatch(ctx, b))
		_, err = s.Event(ctx, b.New[0].ID)
		require.NoError(t, err)
	})
}

func TestPartitionNames(t *testing.T) {
	cases := []struct {
		at   time.Time
		name string
	}{
		{time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), "raw_events_p20261127"},
		{time.Date(2026, 11, 27, 23, 59, 59, 999999999, time.UTC), "raw_events_p20261127"},
		{time.Date(2026, 11, 28, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "raw_events_p20261127"},
		{time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), "raw_events_p19691231"},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "raw_events_p00010101"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := dayOf(c.at)
			require.Equal(t, c.name, partitionName(rawTable, d))
			back, ok := partitionDay(rawTable, c.name)
			require.True(t, ok)
			require.Equal(t, d, back)
			require.False(t, dayStart(d).After(c.at))
			require.True(t, dayStart(d+1).After(c.at))
		})
	}
	_, ok := partitionDay(rawTable, "raw_events_default")
	require.False(t, ok)
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(t.Context(), Options{})
	require.Error(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = Open(ctx, Options{URL: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"})
	require.Error(t, err)
}

func BenchmarkWriteBatch(b *testing.B) {
	url := testutil.PostgresURL(b)
	for _, lanes := range []int{1, 4} {
		b.Run("lanes="+string(rune('0'+lanes)), func(b *testing.B) {
			s := openTest(b, url, nil)
			require.NoError(b, s.Migrate(context.Background()))
			storetest.BenchWriteBatch(b, s, lanes)
		})
	}
}

func BenchmarkHistory(b *testing.B) {
	s := openTest(b, testutil.PostgresURL(b), nil)
	require.NoError(b, s.Migrate(context.Background()))
	storetest.BenchHistory(b, s, 200_000)
}

// TestAuditAppendOnly: the triggers refuse to change, delete or truncate
// audit records (a guard against accidents; the HMAC is what detects the
// rest).
func TestAuditAppendOnly(t *testing.T) {
	s := openTest(t, testutil.PostgresURL(t), nil)
	require.NoError(t, s.Migrate(t.Context()))
	_, err := s.AppendAudit(t.Context(), func(*audit.Record) (audit.Record, error) {
		return audit.Record{Seq: 1, Actor: "system", Action: audit.ActionPause, Parameters: []byte(`{}`), PrevHash: audit.Genesis, Hash: audit.Genesis}, nil
	})
	require.NoError(t, err)
	for _, q := range []string{`UPDATE autonomous.audit_log SET actor = 'x'`, `DELETE FROM autonomous.audit_log`, `TRUNCATE autonomous.audit_log`} {
		_, err := s.pool.Exec(t.Context(), q)
		require.ErrorContains(t, err, "autonomous.audit_log is append-only", q)
	}
	rs, err := s.AuditRecords(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, "system", rs[0].Actor)
}

// TestAuditTwoStores: two stores on one database (two processes' pools)
// append at once; the advisory lock and the primary key keep the numbers
// without gaps or doubles.
func TestAuditTwoStores(t *testing.T) {
	url := testutil.PostgresURL(t)
	a, b := openTest(t, url, nil), openTest(t, url, nil)
	require.NoError(t, a.Migrate(t.Context()))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 10 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range 10 {
				_, err := s.AppendAudit(t.Context(), func(last *audit.Record) (audit.Record, error) {
					r := audit.Record{Seq: 1, Actor: "system", Action: audit.ActionPause, Parameters: []byte(`{}`), PrevHash: audit.Genesis}
					if last != nil {
						r.Seq, r.PrevHash = last.Seq+1, last.Hash
					}
					r.Hash = strings.Repeat("0", 63) + string(rune('a'+r.Seq%6))
					return r, nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rs, err := a.AuditRecords(t.Context(), 0, 1000)
	require.NoError(t, err)
	require.Len(t, rs, 100)
	for i, r := range rs {
		require.Equal(t, int64(i+1), r.Seq)
		if i > 0 {
			require.Equal(t, rs[i-1].Hash, r.PrevHash, "each chained to the one before")
		}
	}
}

// TestAuditConflictRetried: a writer that does not take the advisory lock
// inserts the number an append is about to use; the primary key stops
// the double and the append starts again after it.
func TestAuditConflictRetried(t *testing.T) {
	s := openTest(t, testutil.PostgresURL(t), nil)
	require.NoError(t, s.Migrate(t.Context()))
	var calls []int64
	r, err := s.AppendAudit(t.Context(), func(last *audit.Record) (audit.Record, error) {
		r := audit.Record{Seq: 1, Actor: "system", Action: audit.ActionPause, Parameters: []byte(`{}`), PrevHash: audit.Genesis, Hash: "h2"}
		if last != nil {
			r.Seq, r.PrevHash = last.Seq+1, last.Hash
		}
		calls = append(calls, r.Seq)
		if len(calls) == 1 {
			_, err := s.pool.Exec(t.Context(), `INSERT INTO autonomous.audit_log (seq, recorded_at, actor, action, subject, parameters, key_id, prev_hash, hash)
				VALUES (1, now(), 'other', 'pause', '', '{}', '', $1, 'h1')`, audit.Genesis)
			require.NoError(t, err)
		}
		return r, nil
	})
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, calls, "built again after the conflict")
	require.Equal(t, int64(2), r.Seq)
	require.Equal(t, "h1", r.PrevHash)
}
