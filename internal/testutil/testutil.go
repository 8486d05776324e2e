// Package testutil holds helpers for integration tests that talk to the
// real services of the test machine: PostgreSQL and NATS JetStream. Each
// helper reads an environment variable; when it is unset the test is
// skipped with a message naming the variable, and when it is set but the
// service cannot be reached the test fails.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
)

// Environment variables read by the helpers.
const (
	// EnvDatabaseURL names a PostgreSQL database the tests may connect to
	// in order to create and drop their own databases, for example
	// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
	EnvDatabaseURL = "REFLEX_TEST_DATABASE_URL"
	// EnvNATSURL names a NATS server with JetStream enabled, for example
	// nats://127.0.0.1:4222.
	EnvNATSURL = "REFLEX_TEST_NATS_URL"
)

const connectTimeout = 10 * time.Second

// PostgresURL creates a fresh, empty database for the test and returns its
// URL. The database is named reflex_t_<random hex> and is dropped (WITH
// (FORCE), so open connections do not keep it) when the test ends. It skips
// the test when REFLEX_TEST_DATABASE_URL is unset and fails it when the
// server cannot be reached.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDatabaseURL)
	if base == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run this test", EnvDatabaseURL)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testutil: parse %s: %v", EnvDatabaseURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testutil: connect to %s (%s): %v", EnvDatabaseURL, redact(u), err)
	}
	defer func() { _ = conn.Close(context.Background()) }()

	name := "reflex_t_" + randomHex(8)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testutil: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testutil: connect to drop database %s: %v", name, err)
			return
		}
		defer func() { _ = c.Close(context.Background()) }()
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testutil: drop database %s: %v", name, err)
		}
	})

	nu := *u
	nu.Path = "/" + name
	return nu.String()
}

// NATSURL returns the URL of the NATS server named by REFLEX_TEST_NATS_URL
// after checking that it answers. It skips the test when the variable is
// unset and fails it when the server cannot be reached. Tests share the
// server, so each must use its own stream and subject names.
func NATSURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvNATSURL)
	if u == "" {
		t.Skipf("%s is not set; set it to a NATS JetStream URL such as nats://127.0.0.1:4222 to run this test", EnvNATSURL)
	}
	nc, err := nats.Connect(u, nats.Timeout(connectTimeout), nats.Name("reflex-testutil"))
	if err != nil {
		t.Fatalf("testutil: connect to %s (%s): %v", EnvNATSURL, u, err)
	}
	defer nc.Close()
	if err := nc.FlushTimeout(connectTimeout); err != nil {
		t.Fatalf("testutil: flush to %s (%s): %v", EnvNATSURL, u, err)
	}
	return u
}

// RandomName returns prefix followed by 16 random hex digits, for streams,
// subjects, databases and other names that concurrent tests must not share.
func RandomName(prefix string) string {
	return prefix + randomHex(8)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("testutil: read random: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// redact returns u without its password, for messages.
func redact(u *url.URL) string {
	return u.Redacted()
}
