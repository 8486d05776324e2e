package testutil

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// EnvMySQLDSN names a MySQL or MariaDB server the tests may connect to in
// order to create and drop their own databases, as a go-sql-driver DSN
// without a database, for example root@tcp(127.0.0.1:3306)/.
const EnvMySQLDSN = "REFLEX_TEST_MYSQL_DSN"

// MySQLDSN creates a fresh, empty database for the test and returns a DSN
// for it (go-sql-driver/mysql's format). The database is named
// reflex_t_<random hex> and is dropped when the test ends. It skips the
// test when REFLEX_TEST_MYSQL_DSN is unset and fails it when the server
// cannot be reached.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvMySQLDSN)
	if base == "" {
		t.Skipf("%s is not set; set it to a MySQL DSN such as root@tcp(127.0.0.1:3306)/ to run this test", EnvMySQLDSN)
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("testutil: parse %s: %v", EnvMySQLDSN, redactMySQL(err.Error(), base))
	}
	cfg.DBName = ""
	if cfg.Timeout == 0 {
		cfg.Timeout = connectTimeout
	}
	admin := cfg.FormatDSN()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	db, err := sql.Open("mysql", admin)
	if err != nil {
		t.Fatalf("testutil: open %s: %v", EnvMySQLDSN, redactMySQL(err.Error(), cfg.Passwd))
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("testutil: connect to %s (%s@%s): %v", EnvMySQLDSN, cfg.User, cfg.Addr, redactMySQL(err.Error(), cfg.Passwd))
	}

	name := "reflex_t_" + randomHex(8)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testutil: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		c, err := sql.Open("mysql", admin)
		if err != nil {
			t.Errorf("testutil: open to drop database %s: %v", name, err)
			return
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("testutil: drop database %s: %v", name, err)
		}
	})

	cfg.DBName = name
	return cfg.FormatDSN()
}

// redactMySQL returns msg without secret, for messages.
func redactMySQL(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "xxxxx")
}
