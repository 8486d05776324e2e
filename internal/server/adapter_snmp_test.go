package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// snmpTestConfig is the listener's --snmp-config in TestSNMPEndToEnd:
// the v3 passphrases come from a file and from the environment.
const snmpTestConfig = `
communities: [public]
users:
  - name: alice
    auth_protocol: SHA
    auth_passphrase_file: %s
    priv_protocol: AES
    priv_passphrase_env: REFLEX_TEST_SNMP_ALICE_PRIV
  - name: bob
    auth_protocol: SHA-256
    auth_passphrase_env: REFLEX_TEST_SNMP_BOB_AUTH
oids:
  1.3.6.1.4.1.9999.0.1: {name: fanFailure, severity: critical}
  1.3.6.1.4.1.9999.1.1: {name: fanText}
`

// TestSNMPEndToEnd sends traps and informs with net-snmp's snmptrap and
// snmpinform (v1, v2c, v3 authPriv SHA/AES and authNoPriv SHA-256,
// numeric OIDs) to a real server and reads the events back through its
// API; a wrong community and a wrong v3 passphrase are refused and
// counted, and a refused inform is not acknowledged.
func TestSNMPEndToEnd(t *testing.T) {
	snmptrap := testutil.Program(t, "snmptrap", "snmp")
	snmpinform := testutil.Program(t, "snmpinform", "snmp")
	dir := t.TempDir()
	authFile := filepath.Join(dir, "alice.auth")
	require.NoError(t, os.WriteFile(authFile, []byte("alice-auth-pass\n"), 0o600))
	confFile := filepath.Join(dir, "snmp.yaml")
	require.NoError(t, os.WriteFile(confFile, fmt.Appendf(nil, snmpTestConfig, authFile), 0o600))
	t.Setenv("REFLEX_TEST_SNMP_ALICE_PRIV", "alice-priv-pass")
	t.Setenv("REFLEX_TEST_SNMP_BOB_AUTH", "bob-auth-pass")

	cfg := testConfig(t)
	addr := freeUDPAddr(t)
	cfg.SNMPAddr = addr
	cfg.SNMPConfig = confFile
	cfg.SNMPSource = "netsnmp"
	ts := start(t, cfg)

	env := []string{"MIBS=", "HOME=" + dir, "SNMPCONFPATH=" + dir, "SNMP_PERSISTENT_DIR=" + dir, "PATH=/usr/bin:/bin"}
	run := func(prog string, args ...string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, prog, args...) // no shell
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w: %s", filepath.Base(prog), strings.Join(args, " "), err, out)
		}
		return nil
	}
	v3alice := []string{"-v", "3", "-u", "alice", "-l", "authPriv", "-a", "SHA", "-A", "alice-auth-pass", "-x", "AES", "-X", "alice-priv-pass"}
	v3bob := []string{"-v", "3", "-u", "bob", "-l", "authNoPriv", "-a", "SHA-256", "-A", "bob-auth-pass"}

	// v1: linkDown (generic 2) from agent 10.20.30.40.
	require.NoError(t, run(snmptrap, "-v", "1", "-c", "public", addr, "1.3.6.1.4.1.8072.2.3.1", "10.20.30.40", "2", "0", "100",
		"1.3.6.1.2.1.2.2.1.1.7", "i", "7", "1.3.6.1.2.1.2.2.1.2.7", "s", "ge-0/0/7"))
	// v2c trap: an enterprise trap the user's map names.
	require.NoError(t, run(snmptrap, "-v", "2c", "-c", "public", addr, "", "1.3.6.1.4.1.9999.0.1", "1.3.6.1.4.1.9999.1.1", "s", "fan 3 stopped"))
	// v2c inform: acknowledged (exit 0) once durable.
	require.NoError(t, run(snmpinform, "-v", "2c", "-c", "public", addr, "", "1.3.6.1.6.3.1.1.5.2", "1.3.6.1.2.1.1.5.0", "s", "inform-v2c"))
	// v3 trap, authPriv SHA/AES, from engine 0x8000000001020304.
	require.NoError(t, run(snmptrap, append(v3alice, "-e", "0x8000000001020304", addr, "", "1.3.6.1.6.3.1.1.5.1", "1.3.6.1.2.1.1.5.0", "s", "trap-v3")...))
	// v3 informs: engine discovery, then the inform (authPriv SHA/AES and authNoPriv SHA-256).
	require.NoError(t, run(snmpinform, append(v3alice, addr, "", "1.3.6.1.6.3.1.1.5.5", "1.3.6.1.2.1.1.5.0", "s", "inform-v3-alice")...))
	require.NoError(t, run(snmpinform, append(v3bob, addr, "", "1.3.6.1.6.3.1.1.5.6", "1.3.6.1.2.1.1.5.0", "s", "inform-v3-bob")...))

	linkDown := ts.waitSNMP("linkDown", 1)[0]
	require.Equal(t, "10.20.30.40", linkDown["source_host"])
	require.Equal(t, "high", linkDown["severity"])
	require.Equal(t, "snmp", linkDown["source_type"])
	require.Equal(t, "netsnmp", linkDown["source_system"])
	require.Equal(t, "linkDown on 10.20.30.40 (ifIndex 7, ifDescr ge-0/0/7)", linkDown["title"])
	data := linkDown["event_data"].(map[string]any)
	require.Equal(t, "ge-0/0/7", data["varbinds"].(map[string]any)["1.3.6.1.2.1.2.2.1.2.7"])
	require.Equal(t, "ge-0/0/7", data["vars"].(map[string]any)["ifDescr"])
	require.Equal(t, "1", data["snmp"].(map[string]any)["version"])
	require.Equal(t, map[string]any{"key": "10.20.30.40/link/7", "status": "firing"}, data["alert"])

	fan := ts.waitSNMP("fanFailure", 1)[0]
	require.Equal(t, "critical", fan["severity"])
	require.Equal(t, "127.0.0.1", fan["source_host"])
	require.Equal(t, "fan 3 stopped", fan["event_data"].(map[string]any)["vars"].(map[string]any)["fanText"])

	warm := ts.waitSNMP("warmStart", 1)[0]
	require.Equal(t, "inform", warm["event_data"].(map[string]any)["snmp"].(map[string]any)["pdu"])
	cold := ts.waitSNMP("coldStart", 1)[0]
	require.Equal(t, "alice", cold["event_data"].(map[string]any)["snmp"].(map[string]any)["user"])
	for user, eventType := range map[string]string{"alice": "authenticationFailure", "bob": "egpNeighborLoss"} {
		snmp := ts.waitSNMP(eventType, 1)[0]["event_data"].(map[string]any)["snmp"].(map[string]any)
		require.Equal(t, "inform", snmp["pdu"])
		require.Equal(t, user, snmp["user"])
	}

	// Refused: a wrong community, a wrong v3 passphrase (trap and inform).
	before := ts.snmpCounters()
	require.NoError(t, run(snmptrap, "-v", "2c", "-c", "private", addr, "", "1.3.6.1.6.3.1.1.5.1"))
	require.NoError(t, run(snmptrap, "-v", "3", "-u", "alice", "-l", "authPriv", "-a", "SHA", "-A", "wrong-password", "-x", "AES", "-X", "alice-priv-pass",
		"-e", "0x8000000001020304", addr, "", "1.3.6.1.6.3.1.1.5.1"))
	require.Error(t, run(snmpinform, "-v", "3", "-u", "bob", "-l", "authNoPriv", "-a", "SHA-256", "-A", "wrong-password", "-t", "0.3", "-r", "0",
		addr, "", "1.3.6.1.6.3.1.1.5.1"), "an inform that fails authentication is not acknowledged")
	deadline := time.Now().Add(10 * time.Second)
	var after map[string]float64
	for time.Now().Before(deadline) {
		after = ts.snmpCounters()
		if after["rejected/community"]-before["rejected/community"] >= 1 && after["rejected/auth"]-before["rejected/auth"] >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, 1.0, after["rejected/community"]-before["rejected/community"])
	require.Equal(t, 2.0, after["rejected/auth"]-before["rejected/auth"])
	require.Equal(t, 6.0, after["accepted"])
	require.Equal(t, 1.0, ts.countSNMP("coldStart"), "nothing refused became an event")
}

// freeUDPAddr returns a 127.0.0.1 address whose UDP port was free a
// moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	require.NoError(t, c.Close())
	return addr
}

// waitSNMP polls the events API until n snmp events of eventType are
// processed.
func (ts *testServer) waitSNMP(eventType string, n int) []map[string]any {
	ts.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out struct {
			Events []map[string]any `json:"events"`
		}
		code := ts.do(http.MethodGet, ts.events+"/api/v1/events?hours=1&event_type="+eventType, "", &out)
		require.Equal(ts.t, http.StatusOK, code)
		if len(out.Events) >= n || time.Now().After(deadline) {
			require.Len(ts.t, out.Events, n, "events of type %s", eventType)
			return out.Events
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ts *testServer) countSNMP(eventType string) float64 {
	ts.t.Helper()
	var out struct {
		Events []map[string]any `json:"events"`
	}
	require.Equal(ts.t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events?hours=1&event_type="+eventType, "", &out))
	return float64(len(out.Events))
}

// snmpCounters reads the SNMP adapter's ingest counters: "received",
// "accepted", "rejected/<reason>", "dropped/<reason>".
func (ts *testServer) snmpCounters() map[string]float64 {
	ts.t.Helper()
	mfs, err := ts.srv.reg.Gather()
	require.NoError(ts.t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		kind, ok := strings.CutPrefix(mf.GetName(), "reflex_ingest_")
		if !ok {
			continue
		}
		kind = strings.TrimSuffix(kind, "_total")
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["adapter"] != "snmp" {
				continue
			}
			k := kind
			if r := labels["reason"]; r != "" {
				k += "/" + r
			}
			out[k] += m.GetCounter().GetValue()
		}
	}
	return out
}
