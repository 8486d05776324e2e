package testutil

import (
	"os/exec"
	"testing"
)

// Program returns the path of the real program an integration test runs
// as its peer (logger, rsyslogd, snmptrap, swaks, prometheus ...). A
// missing program fails the test, naming the Debian package that has it
// (.ci/run installs them all): an adapter's test against its real peer is
// never skipped. Under -short the test is skipped instead.
func Program(t testing.TB, name, debianPackage string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: %s (Debian's %s) is not run", name, debianPackage)
	}
	for _, dir := range []string{"", "/usr/sbin/", "/sbin/", "/usr/bin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	t.Fatalf("testutil: %s not found: install Debian's %s (apt-get install %s; .ci/run does)", name, debianPackage, debianPackage)
	return ""
}
