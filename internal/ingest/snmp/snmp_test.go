package snmp

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
)

// gatedLog is an intake log that stores nothing until the test lets it:
// each publish announces itself on arrived and waits for its outcome on
// release (a fake, for the unit test of when an inform is answered; the
// server test uses the real log).
type gatedLog struct {
	arrived chan []bus.Message
	release chan error
}

func (g *gatedLog) PublishBatch(ctx context.Context, msgs []bus.Message) error {
	g.arrived <- msgs
	select {
	case err := <-g.release:
		if err != nil {
			errs := make([]error, len(msgs))
			for i := range errs {
				errs[i] = err
			}
			return &bus.BatchError{Errs: errs}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func listenGated(t *testing.T, settings Settings) (*Listener, *gatedLog, *prometheus.Registry) {
	t.Helper()
	g := &gatedLog{arrived: make(chan []bus.Message, 16), release: make(chan error, 16)}
	in, err := intake.New(intake.Options{Bus: g, IDs: event.NewIDGen(1, time.Now), PublishAttempts: 1})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	l, err := Listen(Options{Addr: "127.0.0.1:0", Settings: settings, Env: ingest.Env{Intake: in, MaxEventBytes: 64 << 10, Registerer: reg}})
	require.NoError(t, err)
	t.Cleanup(func() {
		close(g.release) // a publish still waiting succeeds
		require.NoError(t, l.Stop(context.Background()))
	})
	return l, g, reg
}

func informer(t *testing.T, l *Listener, timeout time.Duration) *gosnmp.GoSNMP {
	t.Helper()
	c := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(l.Addr().Port), Version: gosnmp.Version2c, Community: "public", //nolint:gosec // a port
		Timeout: timeout, Retries: 0, MaxOids: gosnmp.MaxOids}
	require.NoError(t, c.Connect())
	t.Cleanup(func() { _ = c.Conn.Close() })
	return c
}

var linkDownInform = gosnmp.SnmpTrap{IsInform: true, Variables: []gosnmp.SnmpPDU{
	{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(42)},
	{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.6.3.1.1.5.3"},
	{Name: ".1.3.6.1.2.1.2.2.1.1.4", Type: gosnmp.Integer, Value: 4},
}}

// TestInformAnsweredOnlyOnceDurable holds the intake log's write and sees
// that the inform is answered after it, not before; a write that fails
// answers nothing and counts the event as dropped.
func TestInformAnsweredOnlyOnceDurable(t *testing.T) {
	l, g, reg := listenGated(t, DefaultSettings())
	c := informer(t, l, 20*time.Second)
	answered := make(chan error, 1)
	go func() {
		_, err := c.SendTrap(linkDownInform)
		answered <- err
	}()
	msgs := <-g.arrived // the event is being written
	require.Len(t, msgs, 1)
	require.Contains(t, string(msgs[0].Data), `"trap_oid":"1.3.6.1.6.3.1.1.5.3"`)
	select {
	case err := <-answered:
		t.Fatalf("inform answered before its event was stored (err %v)", err)
	default:
	}
	g.release <- nil
	require.NoError(t, <-answered)
	require.Equal(t, 1.0, promtest.ToFloat64(l.met.Accepted.WithLabelValues("snmp", "udp")))

	// A failed write: no answer, the sender times out.
	c2 := informer(t, l, 500*time.Millisecond)
	go func() {
		_, err := c2.SendTrap(linkDownInform)
		answered <- err
	}()
	<-g.arrived
	g.release <- bus.ErrUnavailable
	require.Error(t, <-answered)
	require.Eventually(t, func() bool {
		return promtest.ToFloat64(l.met.Dropped.WithLabelValues("snmp", "udp", "intake_error")) == 1
	}, 10*time.Second, 10*time.Millisecond)
	_ = reg
}

// TestStopAnswersPendingInforms: Stop stores what it took and answers its
// informs before it closes the socket.
func TestStopAnswersPendingInforms(t *testing.T) {
	l, g, _ := listenGated(t, DefaultSettings())
	c := informer(t, l, 20*time.Second)
	answered := make(chan error, 1)
	go func() {
		_, err := c.SendTrap(linkDownInform)
		answered <- err
	}()
	<-g.arrived
	stopped := make(chan error, 1)
	go func() { stopped <- l.Stop(context.Background()) }()
	g.release <- nil
	require.NoError(t, <-answered)
	require.NoError(t, <-stopped)
	require.NoError(t, l.Stop(context.Background()), "idempotent")
}

func TestDecodeRejects(t *testing.T) {
	dec, err := NewDecoder(testSettings(t))
	require.NoError(t, err)
	none, err := NewDecoder(Settings{})
	require.NoError(t, err)
	v3 := readHex(t, "testdata/golden/v3_authpriv_sha_aes.hex")
	v2c := readHex(t, "testdata/golden/v2c_linkup.hex")
	for _, c := range []struct {
		name   string
		dec    *Decoder
		data   []byte
		reason string
	}{
		{"empty", dec, nil, ReasonParse},
		{"text", dec, []byte("<13>hello syslog"), ReasonParse},
		{"truncated v2c", dec, v2c[:len(v2c)-5], ReasonParse},
		{"truncated v3", dec, v3[:40], ReasonParse},
		{"v3 without users", none, v3, ReasonAuth},
		{"v2c with no community allowed", none, v2c, ReasonCommunity},
		{"get request", dec, getRequest(t), ReasonUnsupported},
		{"gosnmp panic (found by FuzzDecode)", dec, fuzzInput(t, "testdata/fuzz/FuzzDecode/af41ab6c0245755d"), ReasonParse},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.dec.Decode(c.data, goldenFrom)
			var re *RejectError
			require.True(t, errors.As(err, &re), "%v", err)
			require.Equal(t, c.reason, re.Reason, re.Error())
		})
	}
}

// fuzzInput reads the []byte of a file of the fuzz corpus.
func fuzzInput(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	_, lit, ok := strings.Cut(strings.TrimSpace(string(b)), "[]byte(")
	require.True(t, ok)
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	require.NoError(t, err)
	return []byte(s)
}

func getRequest(t *testing.T) []byte {
	t.Helper()
	p := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.GetRequest, RequestID: 1,
		Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.Null}}}
	b, err := p.MarshalMsg()
	require.NoError(t, err)
	return b
}

// TestDiscoveryProbe answers an engine discovery probe with a report of
// the receiver's engine ID, as a v3 inform's sender expects.
func TestDiscoveryProbe(t *testing.T) {
	s := testSettings(t)
	s.EngineID = "\x80\x00\x1f\x88\x80reflex"
	dec, err := NewDecoder(s)
	require.NoError(t, err)
	probe := &gosnmp.SnmpPacket{Version: gosnmp.Version3, MsgFlags: gosnmp.Reportable | gosnmp.NoAuthNoPriv, MsgID: 77,
		SecurityModel: gosnmp.UserSecurityModel, SecurityParameters: &gosnmp.UsmSecurityParameters{}, PDUType: gosnmp.GetRequest, RequestID: 78}
	b, err := probe.MarshalMsg()
	require.NoError(t, err)
	p, err := dec.Decode(b, goldenFrom)
	require.NoError(t, err)
	require.Nil(t, p.Trap)
	report, err := (&gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
		SecurityParameters: &gosnmp.UsmSecurityParameters{}}).UnmarshalTrap(p.Reply, false)
	require.NoError(t, err)
	require.Equal(t, gosnmp.Report, report.PDUType)
	require.Equal(t, uint32(77), report.MsgID)
	require.Equal(t, uint32(78), report.RequestID)
	require.Equal(t, s.EngineID, report.SecurityParameters.(*gosnmp.UsmSecurityParameters).AuthoritativeEngineID)
	require.Equal(t, "."+oidUsmStatsUnknownEng, report.Variables[0].Name)
}

func TestV1TrapOIDs(t *testing.T) {
	dec, err := NewDecoder(DefaultSettings())
	require.NoError(t, err)
	for _, c := range []struct {
		generic, specific int
		oid, name         string
	}{
		{0, 0, "1.3.6.1.6.3.1.1.5.1", "coldStart"},
		{1, 0, "1.3.6.1.6.3.1.1.5.2", "warmStart"},
		{2, 0, "1.3.6.1.6.3.1.1.5.3", "linkDown"},
		{3, 0, "1.3.6.1.6.3.1.1.5.4", "linkUp"},
		{4, 0, "1.3.6.1.6.3.1.1.5.5", "authenticationFailure"},
		{5, 0, "1.3.6.1.6.3.1.1.5.6", "egpNeighborLoss"},
		{6, 42, "1.3.6.1.4.1.8072.9.0.42", "1.3.6.1.4.1.8072.9.0.42"},
	} {
		p := &gosnmp.SnmpPacket{Version: gosnmp.Version1, Community: "public", PDUType: gosnmp.Trap,
			SnmpTrap: gosnmp.SnmpTrap{Enterprise: ".1.3.6.1.4.1.8072.9", AgentAddress: "0.0.0.0", GenericTrap: c.generic, SpecificTrap: c.specific, Timestamp: 9}}
		b, err := p.MarshalMsg()
		require.NoError(t, err)
		got, err := dec.Decode(b, netip.MustParseAddrPort("[::ffff:10.0.0.9]:162"))
		require.NoError(t, err)
		require.Equal(t, c.oid, got.Trap.TrapOID)
		require.Equal(t, c.name, got.Trap.TrapName)
		require.Equal(t, "10.0.0.9", got.Trap.Agent, "agent-addr 0.0.0.0: the datagram's source")
		require.Equal(t, "10.0.0.9:162", got.Trap.SourceAddress)
	}
}

func TestTable(t *testing.T) {
	tb := NewTable(map[string]OIDDef{
		"1.3.6.1.6.3.1.1.5.3":  {Severity: "critical"},
		"1.3.6.1.4.1.9.9.41":   {Name: "ciscoSyslogMIB"},
		"1.3.6.1.4.1.9.9.41.2": {Name: "clogMessageGenerated", Severity: "low"},
	}, event.Low)
	name, sev := tb.Trap("1.3.6.1.6.3.1.1.5.3")
	require.Equal(t, "linkDown", name, "the built-in name stays")
	require.Equal(t, event.Critical, sev, "the user's severity wins")
	name, sev = tb.Trap("1.3.6.1.6.3.1.1.5.4")
	require.Equal(t, "linkUp", name)
	require.Equal(t, event.Info, sev)
	name, sev = tb.Trap("1.3.6.1.4.1.1.2.3")
	require.Equal(t, "1.3.6.1.4.1.1.2.3", name, "unknown: the OID")
	require.Equal(t, event.Low, sev, "unknown: the default severity")

	for oid, want := range map[string][2]string{
		"1.3.6.1.2.1.2.2.1.1.12":    {"ifIndex", "12"},
		"1.3.6.1.2.1.1.5.0":         {"sysName", "0"},
		"1.3.6.1.2.1.1.3":           {"sysUpTime", ""},
		"1.3.6.1.4.1.9.9.41.2.7.1":  {"clogMessageGenerated", "7.1"},
		"1.3.6.1.4.1.9.9.41.1.2.3":  {"ciscoSyslogMIB", "1.2.3"},
		"1.3.6.1.2.1.2.2.1.10.3":    {"", ""}, // ifInOctets: not in the table
		"1.3.6.1.2.1.2.2.1.11":      {"", ""},
		"1.3.6.1.2.1.2.2.1.1":       {"ifIndex", ""},
		"1.3.6.1.2.1.2.2.1.1x":      {"", ""},
		"1.3.6.1.2.1.2.2.1.123.4.5": {"", ""},
	} {
		n, inst, ok := tb.Object(oid)
		require.Equal(t, want[0] != "", ok, oid)
		require.Equal(t, want[0], n, oid)
		require.Equal(t, want[1], inst, oid)
	}
}

func TestConfig(t *testing.T) {
	s := testSettings(t)
	require.Equal(t, []string{"public", "ops-ro"}, s.Communities)
	require.Len(t, s.Users, 3)
	require.Equal(t, "\x80\x00\x00\x00\x01\x02\x03\x06", s.Users[2].EngineID)
	for _, u := range s.Users {
		require.NotContains(t, u.String(), "pass", "a user's String shows no passphrase")
	}

	getenv := func(k string) string { return map[string]string{"SECRET": "sekret-passphrase"}[k] }
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown key", "comunities: [x]", "field comunities not found"},
		{"bad auth", "users: [{name: u, auth_protocol: SHA3, auth_passphrase_env: SECRET}]", "auth_protocol"},
		{"missing passphrase", "users: [{name: u, auth_protocol: SHA}]", "missing"},
		{"both sources", "users: [{name: u, auth_protocol: SHA, auth_passphrase_env: SECRET, auth_passphrase_file: /x}]", "not both"},
		{"unset env", "users: [{name: u, auth_protocol: SHA, auth_passphrase_env: NOPE}]", "NOPE is empty or unset"},
		{"priv without passphrase", "users: [{name: u, auth_protocol: SHA, auth_passphrase_env: SECRET, priv_protocol: AES}]", "priv passphrase"},
		{"duplicate", "users: [{name: u, auth_protocol: SHA, auth_passphrase_env: SECRET}, {name: u, auth_protocol: MD5, auth_passphrase_env: SECRET}]", "twice"},
		{"bad engine", "engine_id: 0x1234", "5 to 32"},
		{"bad oid", "oids: {ifIndex: {name: x}}", "not a numeric OID"},
		{"bad severity", "oids: {1.3.6.1: {severity: loud}}", "not a severity"},
		{"empty def", "oids: {1.3.6.1: {}}", "give a name or a severity"},
		{"empty community", "communities: ['']", "1 to 127"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml), getenv)
			require.ErrorIs(t, err, ErrConfig)
			require.Contains(t, err.Error(), c.want)
			require.NotContains(t, err.Error(), "sekret", "no secret in an error")
		})
	}
	s, err := ParseConfig([]byte("communities: []\n"), getenv)
	require.NoError(t, err)
	require.Empty(t, s.Communities, "[] refuses v1 and v2c")
	s, err = ParseConfig(nil, getenv)
	require.NoError(t, err)
	require.Equal(t, []string{"public"}, s.Communities)
	require.True(t, strings.HasPrefix(DefaultEngineID(), "\x80\x00\x1f\x88\x80"))
}
