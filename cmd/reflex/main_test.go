package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	t.Setenv("REFLEX_TOKEN", "")
	code, out, _ := runCmd(t, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "reflex "))

	code, _, errOut := runCmd(t)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "reflex server")

	code, _, errOut = runCmd(t, "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "frobnicate"`)

	code, _, errOut = runCmd(t, "server", "--check-config")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "configuration is valid")

	code, _, errOut = runCmd(t, "server", "--check-config", "--log-format", "xml")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "log-format")

	code, _, errOut = runCmd(t, "server", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "REFLEX_DATA_DIR")

	dir := t.TempDir()
	code, _, errOut = runCmd(t, "migrate", "--data-dir", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "migrations applied")
	_, err := os.Stat(filepath.Join(dir, "reflex.db"))
	require.NoError(t, err, "migrate created the SQLite database")

	code, _, errOut = runCmd(t, "send", "--url", "http://127.0.0.1:1", "--token", "x")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--message is required")

	code, _, errOut = runCmd(t, "loadgen")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "token")
}

// TestClientHelpPrintsNoSecret is the regression test of issue 5 §1.5:
// `reflex send --help` (and any usage error) printed REFLEX_TOKEN as the
// default of --token.
func TestClientHelpPrintsNoSecret(t *testing.T) {
	const token, urlSecret = "rfx_secret_token_0123456789", "url-password-42"
	t.Setenv("REFLEX_TOKEN", token)
	t.Setenv("REFLEX_URL", "http://user:"+urlSecret+"@127.0.0.1:1")
	for _, args := range [][]string{
		{"send", "--help"}, {"send", "--no-such-flag"}, {"send", "--meta", "novalue"},
		{"loadgen", "--help"}, {"loadgen", "--batch", "x"},
	} {
		_, out, errOut := runCmd(t, args...)
		require.Contains(t, errOut, "Usage: reflex "+args[0], args)
		for _, s := range []string{token, urlSecret} {
			require.NotContains(t, out+errOut, s, args)
		}
	}
}

// TestClientReadsTokenFromEnv: the environment still supplies the token and
// the URL when the flags are not given.
func TestClientReadsTokenFromEnv(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":1,"ids":[1]}`))
	}))
	defer srv.Close()
	t.Setenv("REFLEX_TOKEN", "from-env")
	t.Setenv("REFLEX_URL", srv.URL)
	code, _, errOut := runCmd(t, "send", "--message", "m")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "Bearer from-env", got)

	code, _, errOut = runCmd(t, "send", "--message", "m", "--token", "from-flag")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "Bearer from-flag", got)
}

// TestVersion is the regression test of issue 5 §1.7: without -ldflags,
// `reflex version` printed "dev" and nothing else; it reports the build
// info the go command recorded.
func TestVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20261201202304-cf9dbf0bf8bc+dirty"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "cf9dbf0bf8bc265e7bbf355cf7a023286a37670a"},
		{Key: "vcs.time", Value: "2026-12-01T20:23:04Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	require.Equal(t, "v0.0.0-20261201202304-cf9dbf0bf8bc+dirty (revision cf9dbf0bf8bc265e7bbf355cf7a023286a37670a, 2026-12-01T20:23:04Z, modified, go1.26.0)", describeBuild("dev", stamped))
	require.Equal(t, "v1.2.3", describeBuild("v1.2.3", stamped), "the version set at build time wins")
	require.Equal(t, "v0.4.0 (go1.26.0)", describeBuild("dev", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.4.0"}}), "go install of a tag")
	goRun := describeBuild("dev", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}})
	require.Contains(t, goRun, "go1.26.0")
	require.Contains(t, goRun, "make build")
	require.Equal(t, "dev", describeBuild("dev", nil))

	code, out, _ := runCmd(t, "version")
	require.Equal(t, 0, code)
	require.Contains(t, out, runtime.Version())
}

// TestMigrateHelp is the regression test of issue 5 §1.7: `reflex migrate
// --help` listed every server flag; it lists those migrate uses.
func TestMigrateHelp(t *testing.T) {
	code, _, errOut := runCmd(t, "migrate", "--help")
	require.Equal(t, 0, code)
	for _, f := range []string{"-config", "-data-dir", "-database-url", "-log-level", "-log-format"} {
		require.Contains(t, errOut, f)
	}
	for _, f := range []string{"-events-addr", "-nats-url", "-admin-token", "-retention", "-workers", "-check-config"} {
		require.NotContains(t, errOut, f)
	}
	code, _, errOut = runCmd(t, "migrate", "--events-addr", ":1")
	require.Equal(t, 1, code, "a server flag is a usage error of migrate")
	require.Contains(t, errOut, "flag provided but not defined: -events-addr")

	// The server flags' environment twins do not concern migrate.
	t.Setenv("REFLEX_RETENTION", "not-a-duration")
	code, _, errOut = runCmd(t, "migrate", "--data-dir", t.TempDir())
	require.Equal(t, 0, code, errOut)
}
