package testutil

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMySQLDSN(t *testing.T) {
	var name string
	t.Run("creates a fresh database", func(t *testing.T) {
		db, err := sql.Open("mysql", MySQLDSN(t))
		require.NoError(t, err)
		defer db.Close()
		require.NoError(t, db.QueryRowContext(context.Background(), "SELECT DATABASE()").Scan(&name))
		require.Regexp(t, `^reflex_t_[0-9a-f]{16}$`, name)
		var n int
		require.NoError(t, db.QueryRowContext(context.Background(),
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()").Scan(&n))
		require.Zero(t, n)
	})
	if name == "" {
		return // skipped
	}
	t.Run("drops it at cleanup", func(t *testing.T) {
		db, err := sql.Open("mysql", MySQLDSN(t))
		require.NoError(t, err)
		defer db.Close()
		var n int
		require.NoError(t, db.QueryRowContext(context.Background(),
			"SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n))
		require.Zero(t, n, "database %s was not dropped", name)
	})
}

// fatalTB records a Fatalf instead of failing the test.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestMySQLDSNUnreachable: a DSN that is set but reaches no server fails
// the test (never skips it), without its password in the message.
func TestMySQLDSNUnreachable(t *testing.T) {
	t.Setenv(EnvMySQLDSN, "root:s3cr3t@tcp(127.0.0.1:1)/?timeout=2s")
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		MySQLDSN(f)
	}()
	<-done
	require.Contains(t, f.fatal, "connect to "+EnvMySQLDSN)
	require.NotContains(t, f.fatal, "s3cr3t")
}
