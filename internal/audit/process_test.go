package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/postgres"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
	"github.com/reflex-ops/reflex/internal/testutil"
)

// Environment of the helper process of TestProcesses.
const (
	envHelper = "REFLEX_AUDIT_TEST_HELPER" // "sqlite" or "postgres"
	envDB     = "REFLEX_AUDIT_TEST_DB"     // the file or the URL
	envKey    = "REFLEX_AUDIT_TEST_KEY"    // the key file
	envName   = "REFLEX_AUDIT_TEST_NAME"   // the actor of its records
)

const perProcess = 40

// TestHelperProcess is the other process of TestProcesses: it waits for
// a line on stdin, then appends perProcess records to the log.
func TestHelperProcess(t *testing.T) {
	kind := os.Getenv(envHelper)
	if kind == "" {
		t.Skip("the helper of TestProcesses")
	}
	ctx := context.Background()
	var s store.Store
	var err error
	if kind == "sqlite" {
		s, err = sqlite.Open(ctx, sqlite.Options{Path: os.Getenv(envDB)})
	} else {
		s, err = postgres.Open(ctx, postgres.Options{URL: os.Getenv(envDB)})
	}
	require.NoError(t, err)
	defer s.Close()
	k, err := audit.LoadKey(os.Getenv(envKey))
	require.NoError(t, err)
	l, err := audit.New(audit.Options{Store: s, Key: k})
	require.NoError(t, err)
	_, err = bufio.NewReader(os.Stdin).ReadString('\n')
	require.NoError(t, err)
	for i := range perProcess {
		_, err := l.Append(ctx, audit.Entry{Actor: os.Getenv(envName), Action: audit.ActionExecutionStep,
			Subject: "execution:1/step:" + strconv.Itoa(i)})
		require.NoError(t, err)
	}
}

// TestProcesses appends from three processes at once (this one and two
// helpers) to one database, as the events and autonomous services do
// with PostgreSQL: the numbers have no gaps and the log verifies.
func TestProcesses(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var b *backend
			var db string
			if kind == "sqlite" {
				db = filepath.Join(t.TempDir(), "reflex.db")
				b = openSQLite(t, db)
			} else {
				db = testutil.PostgresURL(t)
				b = openPostgres(t, db)
			}
			dir := t.TempDir()
			k, err := audit.LoadOrCreateKey(dir)
			require.NoError(t, err)
			l, err := audit.New(audit.Options{Store: b.store, Key: k})
			require.NoError(t, err)

			var helpers []*exec.Cmd
			var starts []*os.File
			for i := range 2 {
				cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), envHelper+"="+kind, envDB+"="+db,
					envKey+"="+filepath.Join(dir, audit.KeyFileName), envName+"="+fmt.Sprintf("helper-%d", i))
				r, w, err := os.Pipe()
				require.NoError(t, err)
				cmd.Stdin = r
				cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
				require.NoError(t, cmd.Start())
				r.Close()
				helpers = append(helpers, cmd)
				starts = append(starts, w)
			}
			for _, w := range starts {
				_, err := w.WriteString("go\n")
				require.NoError(t, err)
				w.Close()
			}
			for i := range perProcess {
				_, err := l.Append(t.Context(), audit.Entry{Actor: "main", Action: audit.ActionExecutionStep,
					Subject: "execution:1/step:" + strconv.Itoa(i)})
				require.NoError(t, err)
			}
			for _, cmd := range helpers {
				require.NoError(t, cmd.Wait())
			}

			rs, err := b.store.AuditRecords(t.Context(), 0, 1000)
			require.NoError(t, err)
			require.Len(t, rs, 3*perProcess)
			actors := map[string]int{}
			for i, r := range rs {
				require.Equal(t, int64(i+1), r.Seq)
				actors[r.Actor]++
			}
			require.Equal(t, map[string]int{"main": perProcess, "helper-0": perProcess, "helper-1": perProcess}, actors)
			rep, err := l.Verify(t.Context())
			require.NoError(t, err)
			require.True(t, rep.OK(), rep.String())
			require.Equal(t, 3*perProcess, rep.Records)
		})
	}
}
