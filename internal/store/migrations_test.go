package store

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestLoadMigrations(t *testing.T) {
	ok := fstest.MapFS{
		"m/0002_indexes.sql": {Data: []byte("CREATE INDEX b;")},
		"m/0001_tables.sql":  {Data: []byte("CREATE TABLE a;")},
		"m/README":           {Data: []byte("not a migration")},
	}
	ms, err := LoadMigrations(ok, "m")
	require.NoError(t, err)
	require.Equal(t, []Migration{
		{Version: 1, Name: "0001_tables", SQL: "CREATE TABLE a;"},
		{Version: 2, Name: "0002_indexes", SQL: "CREATE INDEX b;"},
	}, ms)

	for name, fsys := range map[string]fstest.MapFS{
		"no version":   {"m/tables.sql": {}},
		"bad version":  {"m/x1_tables.sql": {}},
		"zero version": {"m/0000_tables.sql": {}},
		"same version": {"m/0001_a.sql": {}, "m/1_b.sql": {}},
		"missing dir":  {},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadMigrations(fsys, "m")
			require.Error(t, err)
		})
	}
}
