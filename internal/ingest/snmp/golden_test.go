package snmp

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/testutil"
)

var (
	update  = flag.Bool("update", false, "rewrite the golden .json files from the .hex packets")
	capture = flag.Bool("capture", false, "capture the golden .hex packets again from net-snmp's snmptrap/snmpinform")
)

var (
	receivedAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	processNow = receivedAt.Add(150 * time.Millisecond)
	baseID     = event.IDAt(receivedAt) + 7
	// goldenFrom is the datagrams' source in the golden files.
	goldenFrom = netip.MustParseAddrPort("192.0.2.10:50123")
)

// The v3 passphrases of testdata/config.yaml given by environment
// variables.
var testEnv = map[string]string{
	"SNMPTEST_BOB_AUTH":   "bob-auth-pass",
	"SNMPTEST_CAROL_AUTH": "carol-auth-pass",
	"SNMPTEST_CAROL_PRIV": "carol-priv-pass",
}

// peerCases are the golden packets, as net-snmp sends them: the name of
// the program and its arguments, ADDR standing for the receiver.
var peerCases = []struct {
	name string
	prog string
	args []string
}{
	{"v1_linkdown", "snmptrap", []string{"-v", "1", "-c", "public", "ADDR", "1.3.6.1.4.1.8072.2.3.1", "10.1.2.3", "2", "0", "12345",
		"1.3.6.1.2.1.2.2.1.1.2", "i", "2", "1.3.6.1.2.1.2.2.1.2.2", "s", "eth0", "1.3.6.1.2.1.2.2.1.7.2", "i", "1", "1.3.6.1.2.1.2.2.1.8.2", "i", "2"}},
	{"v1_enterprise", "snmptrap", []string{"-v", "1", "-c", "ops-ro", "ADDR", "1.3.6.1.4.1.9999", "10.1.2.4", "6", "17", "500",
		"1.3.6.1.4.1.9999.1.1", "s", "disk /var full"}},
	{"v2c_linkup", "snmptrap", []string{"-v", "2c", "-c", "public", "ADDR", "4242", "1.3.6.1.6.3.1.1.5.4",
		"1.3.6.1.2.1.2.2.1.1.3", "i", "3", "1.3.6.1.2.1.2.2.1.2.3", "s", "eth1", "1.3.6.1.2.1.2.2.1.7.3", "i", "1", "1.3.6.1.2.1.2.2.1.8.3", "i", "1"}},
	{"v2c_types", "snmptrap", []string{"-v", "2c", "-c", "public", "ADDR", "100", "1.3.6.1.4.1.9999.0.1",
		"1.3.6.1.4.1.9999.1.1", "s", "fan 2 failed", "1.3.6.1.4.1.9999.1.2", "x", "001A2B3C4D5E", "1.3.6.1.4.1.9999.1.3", "c", "123",
		"1.3.6.1.4.1.9999.1.4", "a", "10.9.8.7", "1.3.6.1.4.1.9999.1.5", "o", "1.3.6.1.2.1.1", "1.3.6.1.4.1.9999.1.6", "t", "999",
		"1.3.6.1.4.1.9999.1.7", "u", "7", "1.3.6.1.4.1.9999.1.8", "i", "-5", "1.3.6.1.2.1.1.5.0", "s", "sw-core-1"}},
	{"v2c_unknown_enterprise", "snmptrap", []string{"-v", "2c", "-c", "public", "ADDR", "1", "1.3.6.1.4.1.2636.4.1.1",
		"1.3.6.1.4.1.2636.3.1.1.0", "s", "chassis alarm"}},
	{"v2c_proxied", "snmptrap", []string{"-v", "2c", "-c", "public", "ADDR", "5", "1.3.6.1.6.3.1.1.5.1",
		"1.3.6.1.6.3.18.1.3.0", "a", "198.51.100.7"}},
	{"v2c_inform", "snmpinform", []string{"-v", "2c", "-c", "public", "-t", "0.2", "-r", "0", "ADDR", "77", "1.3.6.1.6.3.1.1.5.5"}},
	{"v2c_bad_community", "snmptrap", []string{"-v", "2c", "-c", "wrong", "ADDR", "1", "1.3.6.1.6.3.1.1.5.1"}},
	{"v3_authpriv_sha_aes", "snmptrap", []string{"-v", "3", "-u", "alice", "-l", "authPriv", "-a", "SHA", "-A", "alice-auth-pass",
		"-x", "AES", "-X", "alice-priv-pass", "-e", "0x8000000001020304", "ADDR", "300", "1.3.6.1.6.3.1.1.5.1", "1.3.6.1.2.1.1.5.0", "s", "router-7"}},
	{"v3_authnopriv_sha256", "snmptrap", []string{"-v", "3", "-u", "bob", "-l", "authNoPriv", "-a", "SHA-256", "-A", "bob-auth-pass",
		"-e", "0x8000000001020305", "ADDR", "301", "1.3.6.1.6.3.1.1.5.2"}},
	{"v3_authpriv_des_bound_engine", "snmptrap", []string{"-v", "3", "-u", "carol", "-l", "authPriv", "-a", "SHA", "-A", "carol-auth-pass",
		"-x", "DES", "-X", "carol-priv-pass", "-e", "0x8000000001020306", "ADDR", "302", "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.9", "i", "9"}},
	{"v3_wrong_engine", "snmptrap", []string{"-v", "3", "-u", "carol", "-l", "authPriv", "-a", "SHA", "-A", "carol-auth-pass",
		"-x", "DES", "-X", "carol-priv-pass", "-e", "0x8000000001020399", "ADDR", "303", "1.3.6.1.6.3.1.1.5.3"}},
	{"v3_wrong_password", "snmptrap", []string{"-v", "3", "-u", "alice", "-l", "authPriv", "-a", "SHA", "-A", "not-alice-pass",
		"-x", "AES", "-X", "alice-priv-pass", "-e", "0x8000000001020304", "ADDR", "304", "1.3.6.1.6.3.1.1.5.1"}},
	{"v3_unknown_user", "snmptrap", []string{"-v", "3", "-u", "mallory", "-l", "authNoPriv", "-a", "SHA", "-A", "mallory-pass",
		"-e", "0x8000000001020304", "ADDR", "305", "1.3.6.1.6.3.1.1.5.1"}},
}

// testSettings loads testdata/config.yaml.
func testSettings(t testing.TB) Settings {
	t.Helper()
	s, err := LoadConfig("testdata/config.yaml", func(k string) string { return testEnv[k] })
	require.NoError(t, err)
	return s
}

// peerEnv is the environment net-snmp's tools run with: no MIBs (numeric
// OIDs), no configuration or persistent state but the test's.
func peerEnv(t testing.TB) []string {
	t.Helper()
	dir := t.TempDir()
	return []string{"MIBS=", "HOME=" + dir, "SNMPCONFPATH=" + dir, "SNMP_PERSISTENT_DIR=" + dir, "PATH=/usr/bin:/bin"}
}

// runPeer runs a net-snmp program (no shell) with ADDR replaced.
func runPeer(ctx context.Context, t testing.TB, prog string, args []string, addr string, env []string) ([]byte, error) {
	t.Helper()
	path := testutil.Program(t, prog, "snmp")
	a := make([]string, len(args))
	for i, s := range args {
		a[i] = strings.ReplaceAll(s, "ADDR", addr)
	}
	cmd := exec.CommandContext(ctx, path, a...)
	cmd.Env = env
	return cmd.CombinedOutput()
}

// TestCaptureGolden captures the golden packets from the real net-snmp
// tools (with -capture): each case's first datagram, in hex.
func TestCaptureGolden(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to capture the golden packets again")
	}
	for _, c := range peerCases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			defer conn.Close()
			got := make(chan []byte, 1)
			go func() {
				buf := make([]byte, maxDatagram)
				n, _, err := conn.ReadFromUDP(buf)
				if err == nil {
					got <- append([]byte(nil), buf[:n]...)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = runPeer(ctx, t, c.prog, c.args, conn.LocalAddr().String(), peerEnv(t)) // an inform times out: no answer here
			select {
			case b := <-got:
				require.NoError(t, os.WriteFile(filepath.Join("testdata", "golden", c.name+".hex"), []byte(hex.EncodeToString(b)+"\n"), 0o644))
			case <-ctx.Done():
				t.Fatal("no datagram")
			}
		})
	}
}

// golden is a golden file's content: the event, or why the packet is
// refused.
type golden struct {
	Reject string       `json:"reject,omitempty"`
	Reply  string       `json:"reply,omitempty"` // what is sent back: "response" to an inform
	Event  *event.Event `json:"event,omitempty"`
}

// TestGolden decodes each captured packet and normalizes it as the
// pipeline does, comparing the result with <case>.json.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.hex")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), len(peerCases))
	dec, err := NewDecoder(testSettings(t))
	require.NoError(t, err)
	stage, err := normalize.New(normalize.Options{Normalizers: map[event.SourceType]normalize.Normalizer{event.SourceSNMP: Normalizer{}}})
	require.NoError(t, err)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hex")
		t.Run(name, func(t *testing.T) {
			pkt := readHex(t, f)
			var got golden
			p, err := dec.Decode(pkt, goldenFrom)
			if err != nil {
				var re *RejectError
				require.True(t, errors.As(err, &re), err)
				got.Reject = re.Reason
			} else {
				require.NotNil(t, p.Trap)
				if p.Reply != nil {
					got.Reply = "response"
				}
				got.Event = normalizeTrap(t, stage, p.Trap)
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", name+".json"), got, *update)
		})
	}
}

func readHex(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	pkt, err := hex.DecodeString(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pkt
}

// normalizeTrap encodes a trap as intake stores it and runs the normalize
// stage over it.
func normalizeTrap(t testing.TB, stage *normalize.Stage, tr *Trap) *event.Event {
	t.Helper()
	data, err := json.Marshal(tr)
	require.NoError(t, err)
	raw := event.Raw{ID: baseID, SourceSystem: "snmp", SourceType: event.SourceSNMP, Data: data, ReceivedAt: receivedAt}
	b := &pipeline.Batch{Now: processNow, Raw: []event.Raw{raw}}
	require.NoError(t, stage.Process(context.Background(), b))
	require.Len(t, b.Events, 1, "outcomes: %v", b.Outcomes)
	return b.Events[0]
}
