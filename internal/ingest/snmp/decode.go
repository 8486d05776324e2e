package snmp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/reflex-ops/reflex/internal/event"
)

// Reasons a datagram is rejected (reflex_ingest_rejected_total's reason).
const (
	ReasonParse       = "parse"       // not a well-formed SNMP message (or the decoder panicked)
	ReasonCommunity   = "community"   // v1/v2c community not in the allow-list
	ReasonAuth        = "auth"        // v3: unknown user, wrong passphrase, wrong security level or engine
	ReasonUnsupported = "unsupported" // a PDU other than a trap or an inform (a get, a response ...)
	ReasonTooLarge    = "too_large"   // the decoded event exceeds what one intake message carries
)

// RejectError is why a datagram was refused, with its metric reason.
type RejectError struct {
	Reason string
	Err    error
}

// Error says why.
func (e *RejectError) Error() string { return fmt.Sprintf("snmp: %s: %v", e.Reason, e.Err) }

// Unwrap returns the cause.
func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason string, format string, args ...any) error {
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Trap is a decoded trap or inform as intake stores it: the raw event's
// data. Names and the severity are resolved at intake, with the table the
// listener was configured with, so that the lane is known and the
// normalizer needs no configuration.
type Trap struct {
	// Version is "1", "2c" or "3".
	Version string `json:"version"`
	// PDU is "trap" or "inform".
	PDU string `json:"pdu"`
	// User is the v3 security name; ContextName the v3 context.
	User        string `json:"user,omitempty"`
	ContextName string `json:"context,omitempty"`
	// Agent is the agent's address: a v1 trap's agent-addr, else
	// snmpTrapAddress.0 when a proxy gave it, else the datagram's source.
	Agent string `json:"agent"`
	// SourceAddress is the datagram's source, ip:port.
	SourceAddress string `json:"source_address"`
	// Enterprise, GenericTrap and SpecificTrap are a v1 trap's.
	Enterprise   string `json:"enterprise,omitempty"`
	GenericTrap  *int   `json:"generic_trap,omitempty"`
	SpecificTrap *int   `json:"specific_trap,omitempty"`
	// Uptime is the agent's sysUpTime in hundredths of a second (a v1
	// trap's time-stamp, a v2 notification's sysUpTime.0).
	Uptime *uint64 `json:"uptime,omitempty"`
	// TrapOID is snmpTrapOID.0 (v1: mapped as RFC 3584 section 3.1 says);
	// TrapName its name, or the OID; Severity from the table.
	TrapOID  string         `json:"trap_oid"`
	TrapName string         `json:"trap_name"`
	Severity event.Severity `json:"severity"`
	// Vendor names the enterprise of a trap under 1.3.6.1.4.1, when known.
	Vendor string `json:"vendor,omitempty"`
	// Varbinds are the variable bindings, in order, without sysUpTime.0
	// and snmpTrapOID.0 (they are Uptime and TrapOID) and without
	// snmpTrapCommunity.0 (a proxy's copy of the community).
	Varbinds []Varbind `json:"varbinds"`

	requestID uint32 // an inform's, to recognize its retransmissions
}

// Varbind is one variable binding.
type Varbind struct {
	OID string `json:"oid"`
	// Name and Instance are the table's name for the OID and the rest of
	// the OID after it (ifIndex and 2 for 1.3.6.1.2.1.2.2.1.1.2).
	Name     string `json:"name,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Type is the ASN.1 type (Integer, OctetString, Counter32 ...).
	Type string `json:"type"`
	// Value is a number, a string, or null. An OctetString that is not
	// printable text is written in hex (Hex is true): 00:1a:2b.
	Value any  `json:"value"`
	Hex   bool `json:"hex,omitempty"`
}

// Packet is what a datagram decoded to.
type Packet struct {
	// Trap is the notification; nil for an engine discovery probe.
	Trap *Trap
	// Reply is what to send back to the sender: an inform's response (to
	// send once the event is durable), or a discovery probe's report (at
	// once, Trap is nil). Nil for a trap.
	Reply []byte
}

// Decoder decodes datagrams with the settings' communities, users and
// table. It is used by one goroutine at a time (the listener's reader).
type Decoder struct {
	plain       *gosnmp.GoSNMP // v1, v2c and v3 discovery probes
	users       *gosnmp.GoSNMP // v3 with the users' security parameters table; nil without users
	engines     map[string]string
	communities [][]byte
	table       *Table
	engineID    string
	started     time.Time
	unknownEng  atomic.Uint32
}

// NewDecoder returns a Decoder for s.
func NewDecoder(s Settings) (*Decoder, error) {
	d := &Decoder{
		plain: &gosnmp.GoSNMP{
			Version:            gosnmp.Version3,
			SecurityModel:      gosnmp.UserSecurityModel,
			SecurityParameters: &gosnmp.UsmSecurityParameters{AuthenticationProtocol: gosnmp.NoAuth, PrivacyProtocol: gosnmp.NoPriv},
		},
		engines:  map[string]string{},
		table:    s.Table,
		engineID: s.EngineID,
		started:  time.Now(),
	}
	if d.table == nil {
		d.table = NewTable(nil, "")
	}
	if d.engineID == "" {
		d.engineID = DefaultEngineID()
	}
	for _, c := range s.Communities {
		d.communities = append(d.communities, []byte(c))
	}
	if len(s.Users) > 0 {
		tbl := gosnmp.NewSnmpV3SecurityParametersTable(gosnmp.Logger{})
		for _, u := range s.Users {
			engine := u.EngineID
			if engine == "" {
				engine = d.engineID // re-localized to each packet's engine as it is decoded
			}
			err := tbl.Add(u.Name, &gosnmp.UsmSecurityParameters{
				UserName:                 u.Name,
				AuthoritativeEngineID:    engine,
				AuthenticationProtocol:   u.Auth,
				AuthenticationPassphrase: u.authPass,
				PrivacyProtocol:          u.Priv,
				PrivacyPassphrase:        u.privPass,
			})
			if err != nil {
				return nil, fmt.Errorf("snmp: user %s: %w", u.Name, err)
			}
			if u.EngineID != "" {
				d.engines[u.Name] = u.EngineID
			}
		}
		d.users = &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel}
		d.users.SetTrapSecurityParametersTable(tbl)
	}
	return d, nil
}

// DefaultEngineID is the receiver's engine ID when the configuration
// gives none: RFC 3411's enterprise-specific format under net-snmp's
// enterprise number, with 8 octets of a hash of the host name, so that it
// is stable across restarts.
func DefaultEngineID() string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte("reflex-snmp:" + host))
	return string(append([]byte{0x80, 0x00, 0x1f, 0x88, 0x80}, sum[:8]...))
}

// EngineID returns the receiver's engine ID, in hex.
func (d *Decoder) EngineID() string { return hex.EncodeToString([]byte(d.engineID)) }

// Decode decodes one datagram from from. A datagram that is refused
// returns a *RejectError. A panic of the SNMP library is a parse error.
func (d *Decoder) Decode(data []byte, from netip.AddrPort) (p Packet, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = Packet{}, reject(ReasonParse, "decoder panic: %v", r)
		}
	}()
	return d.decode(data, from)
}

// decode is Decode without its recover: the fuzz target calls it, so that
// a panic of this package shows. The library's panics are errors (see
// unmarshal).
func (d *Decoder) decode(data []byte, from netip.AddrPort) (Packet, error) {
	if len(data) < 2 || data[0] != 0x30 {
		return Packet{}, reject(ReasonParse, "not an SNMP message")
	}
	buf := make([]byte, len(data)) // the library writes into it (v3 MAC check)
	copy(buf, data)
	pkt, err := unmarshal(d.plain, buf, false)
	if err == nil && pkt.Version == gosnmp.Version3 {
		return d.probe(pkt)
	}
	switch {
	case err == nil && !d.communityAllowed(pkt.Community):
		return Packet{}, reject(ReasonCommunity, "community not allowed")
	case err == nil:
	case !isV3(data):
		return Packet{}, reject(ReasonParse, "%v", err)
	case d.users == nil:
		return Packet{}, reject(ReasonAuth, "v3 message and no v3 user configured")
	default:
		copy(buf, data)
		pkt, err = unmarshal(d.users, buf, true)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "no security parameters found") || strings.Contains(msg, "no credentials successfully") {
				return Packet{}, reject(ReasonAuth, "v3: %v", err)
			}
			return Packet{}, reject(ReasonParse, "v3: %v", err)
		}
		if err := d.checkEngine(pkt); err != nil {
			return Packet{}, err
		}
	}
	t, err := d.trap(pkt, from)
	if err != nil {
		return Packet{}, err
	}
	p := Packet{Trap: t}
	if pkt.PDUType == gosnmp.InformRequest {
		if p.Reply, err = d.response(pkt); err != nil {
			return Packet{}, reject(ReasonParse, "inform response: %v", err)
		}
	}
	return p, nil
}

// errLibraryPanic marks a datagram that panicked the SNMP library.
var errLibraryPanic = errors.New("gosnmp panicked")

// unmarshal is g.UnmarshalTrap with its panics turned into errors:
// gosnmp has had fuzz-found panics (v1.47.0: a nil dereference in
// getTrapIdentifier on a v3 header cut short, found by FuzzDecode).
func unmarshal(g *gosnmp.GoSNMP, buf []byte, useResponseParams bool) (pkt *gosnmp.SnmpPacket, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkt, err = nil, fmt.Errorf("%w: %v", errLibraryPanic, r)
		}
	}()
	return g.UnmarshalTrap(buf, useResponseParams)
}

// isV3 reports whether a message's version field says 3 (a sequence,
// then INTEGER 3), without decoding it.
func isV3(data []byte) bool {
	i := 1
	if i >= len(data) {
		return false
	}
	if data[i] < 0x80 {
		i++
	} else {
		i += 1 + int(data[i]&0x7f)
	}
	return i+2 < len(data) && data[i] == 0x02 && data[i+1] == 0x01 && data[i+2] == 3
}

// probe answers a v3 message the plain decoder could read: only an
// engine discovery probe (no user, no engine, no auth, an empty get) is
// one; it is answered with a report of this engine's ID, boots and time.
func (d *Decoder) probe(pkt *gosnmp.SnmpPacket) (Packet, error) {
	sp, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok || pkt.SecurityModel != gosnmp.UserSecurityModel || pkt.MsgFlags&gosnmp.Reportable == 0 ||
		sp.UserName != "" || sp.AuthoritativeEngineID != "" || pkt.PDUType != gosnmp.GetRequest || len(pkt.Variables) != 0 {
		return Packet{}, reject(ReasonAuth, "v3 message without authentication")
	}
	n := d.unknownEng.Add(1)
	report := &gosnmp.SnmpPacket{
		Version:       gosnmp.Version3,
		MsgFlags:      gosnmp.NoAuthNoPriv,
		SecurityModel: gosnmp.UserSecurityModel,
		SecurityParameters: &gosnmp.UsmSecurityParameters{
			AuthoritativeEngineID:    d.engineID,
			AuthoritativeEngineBoots: 1,
			AuthoritativeEngineTime:  d.engineTime(),
		},
		MsgID:           pkt.MsgID,
		MsgMaxSize:      pkt.MsgMaxSize,
		ContextEngineID: d.engineID,
		ContextName:     pkt.ContextName,
		PDUType:         gosnmp.Report,
		RequestID:       pkt.RequestID,
		Variables:       []gosnmp.SnmpPDU{{Name: "." + oidUsmStatsUnknownEng, Type: gosnmp.Counter32, Value: n}},
	}
	out, err := marshal(report)
	if err != nil {
		return Packet{}, reject(ReasonParse, "discovery report: %v", err)
	}
	return Packet{Reply: out}, nil
}

func (d *Decoder) engineTime() uint32 {
	return uint32(min(time.Since(d.started)/time.Second, 1<<31-1)) //nolint:gosec // clamped
}

// checkEngine refuses a v3 trap of a user bound to an engine from another
// engine.
func (d *Decoder) checkEngine(pkt *gosnmp.SnmpPacket) error {
	sp, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok {
		return reject(ReasonAuth, "v3: not the user security model")
	}
	if want, bound := d.engines[sp.UserName]; bound && pkt.PDUType != gosnmp.InformRequest && sp.AuthoritativeEngineID != want {
		return reject(ReasonAuth, "v3: user %s: trap from engine %x, not the user's", sp.UserName, sp.AuthoritativeEngineID)
	}
	return nil
}

func (d *Decoder) communityAllowed(c string) bool {
	ok := false
	for _, a := range d.communities {
		if subtle.ConstantTimeCompare(a, []byte(c)) == 1 {
			ok = true
		}
	}
	return ok
}

// response is an inform's response PDU: the inform's request id and
// varbinds, no error (RFC 3416 section 4.2.7), secured as the inform was
// (with a fresh privacy salt).
func (d *Decoder) response(pkt *gosnmp.SnmpPacket) ([]byte, error) {
	r := *pkt
	r.PDUType = gosnmp.GetResponse
	r.Error = gosnmp.NoError
	r.ErrorIndex = 0
	r.IsInform = false
	if pkt.Version == gosnmp.Version3 {
		r.MsgFlags &^= gosnmp.Reportable
		sp, ok := pkt.SecurityParameters.Copy().(*gosnmp.UsmSecurityParameters)
		if !ok {
			return nil, errors.New("not the user security model")
		}
		if r.MsgFlags&gosnmp.AuthPriv == gosnmp.AuthPriv {
			salt := make([]byte, 8)
			_, _ = rand.Read(salt)
			sp.PrivacyParameters = salt
		}
		r.SecurityParameters = sp
	}
	return marshal(&r)
}

// marshal is p.MarshalMsg with its panics turned into errors.
func marshal(p *gosnmp.SnmpPacket) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: %v", errLibraryPanic, r)
		}
	}()
	return p.MarshalMsg()
}

// trap turns a decoded notification into a Trap.
func (d *Decoder) trap(pkt *gosnmp.SnmpPacket, from netip.AddrPort) (*Trap, error) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	t := &Trap{SourceAddress: from.String(), Agent: from.Addr().String(), Varbinds: []Varbind{}, requestID: pkt.RequestID}
	switch pkt.Version {
	case gosnmp.Version1:
		t.Version = "1"
	case gosnmp.Version2c:
		t.Version = "2c"
	case gosnmp.Version3:
		t.Version = "3"
		if sp, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok {
			t.User = sp.UserName
		}
		t.ContextName = pkt.ContextName
	default:
		return nil, reject(ReasonUnsupported, "version %d", pkt.Version)
	}
	vars := pkt.Variables
	switch {
	case pkt.PDUType == gosnmp.Trap && pkt.Version == gosnmp.Version1:
		t.PDU = "trap"
		ent, ok := cleanOID(pkt.Enterprise)
		if !ok {
			return nil, reject(ReasonParse, "v1 trap: bad enterprise")
		}
		t.Enterprise = ent
		g, s := pkt.GenericTrap, pkt.SpecificTrap
		t.GenericTrap, t.SpecificTrap = &g, &s
		up := uint64(pkt.Timestamp)
		t.Uptime = &up
		if ip, err := netip.ParseAddr(pkt.AgentAddress); err == nil && !ip.IsUnspecified() {
			t.Agent = ip.Unmap().String()
		}
		if g >= 0 && g <= 5 {
			t.TrapOID = oidStandardTraps + "." + strconv.Itoa(g+1)
		} else {
			t.TrapOID = ent + ".0." + strconv.Itoa(s)
		}
	case pkt.PDUType == gosnmp.SNMPv2Trap || pkt.PDUType == gosnmp.InformRequest:
		t.PDU = "trap"
		if pkt.PDUType == gosnmp.InformRequest {
			t.PDU = "inform"
		}
		// RFC 3416 section 4.2.6: sysUpTime.0, then snmpTrapOID.0.
		if len(vars) > 0 && strings.TrimPrefix(vars[0].Name, ".") == oidSysUpTime {
			if up, ok := unsigned(vars[0].Value); ok {
				t.Uptime = &up
			}
			vars = vars[1:]
		}
		if len(vars) == 0 || strings.TrimPrefix(vars[0].Name, ".") != oidSnmpTrapOID || vars[0].Type != gosnmp.ObjectIdentifier {
			return nil, reject(ReasonParse, "notification without snmpTrapOID.0")
		}
		s, _ := vars[0].Value.(string)
		oid, ok := cleanOID(s)
		if !ok {
			return nil, reject(ReasonParse, "bad snmpTrapOID.0")
		}
		t.TrapOID = oid
		vars = vars[1:]
	default:
		return nil, reject(ReasonUnsupported, "PDU %s", pkt.PDUType)
	}
	t.TrapName, t.Severity = d.table.Trap(t.TrapOID)
	t.Vendor = vendor(t.TrapOID)
	for _, v := range vars {
		if strings.TrimPrefix(v.Name, ".") == oidSnmpTrapCommunity {
			continue // a proxy's copy of the community: a credential
		}
		vb := d.varbind(v)
		if vb.OID == "1.3.6.1.6.3.18.1.3.0" && pkt.Version != gosnmp.Version1 {
			if s, ok := vb.Value.(string); ok {
				if ip, err := netip.ParseAddr(s); err == nil && !ip.IsUnspecified() {
					t.Agent = ip.Unmap().String()
				}
			}
		}
		t.Varbinds = append(t.Varbinds, vb)
	}
	return t, nil
}

// varbind converts a variable binding's value to JSON's kinds.
func (d *Decoder) varbind(v gosnmp.SnmpPDU) Varbind {
	oid := strings.TrimPrefix(v.Name, ".")
	vb := Varbind{OID: oid, Type: v.Type.String()}
	vb.Name, vb.Instance, _ = d.table.Object(oid)
	switch x := v.Value.(type) {
	case []byte:
		if printable(x) {
			vb.Value = string(x)
		} else {
			vb.Value, vb.Hex = hexColons(x), true
		}
	case string:
		if v.Type == gosnmp.ObjectIdentifier {
			x = strings.TrimPrefix(x, ".")
		}
		vb.Value = x
	case net.IP:
		vb.Value = x.String()
	case nil:
		vb.Value = nil
	case float32, float64, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		vb.Value = x
	default:
		vb.Value = fmt.Sprint(x)
	}
	return vb
}

func unsigned(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint32:
		return uint64(x), true
	case uint:
		return uint64(x), true
	case uint64:
		return x, true
	case int:
		if x >= 0 {
			return uint64(x), true
		}
	}
	return 0, false
}

// printable reports whether b is UTF-8 text without control characters
// (tabs and line ends allowed).
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

func hexColons(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(hex.EncodeToString([]byte{c}))
	}
	return sb.String()
}
