package testutil

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestPostgresURL(t *testing.T) {
	var name string
	t.Run("creates a fresh database", func(t *testing.T) {
		u := PostgresURL(t)
		conn, err := pgx.Connect(context.Background(), u)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name))
		require.Regexp(t, `^reflex_t_[0-9a-f]{16}$`, name)
		var n int
		require.NoError(t, conn.QueryRow(context.Background(),
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&n))
		require.Zero(t, n)
	})
	if name == "" {
		return // skipped
	}
	t.Run("drops it at cleanup", func(t *testing.T) {
		base := PostgresURL(t) // any database on the server will do
		conn, err := pgx.Connect(context.Background(), base)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var exists bool
		require.NoError(t, conn.QueryRow(context.Background(),
			"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
		require.False(t, exists, "database %s was not dropped", name)
	})
}

func TestNATSURL(t *testing.T) {
	u := NATSURL(t)
	nc, err := nats.Connect(u)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	_, err = js.AccountInfo()
	require.NoError(t, err)
}

func TestRandomName(t *testing.T) {
	a, b := RandomName("x_"), RandomName("x_")
	require.NotEqual(t, a, b)
	require.Regexp(t, `^x_[0-9a-f]{16}$`, a)
}
