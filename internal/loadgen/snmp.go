package loadgen

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/gosnmp/gosnmp"
)

// snmpTraps maps a message's severity to the standard trap whose default
// severity it is (the SNMP adapter's built-in table; critical has none, it
// travels as linkDown, high).
var snmpTraps = map[string]string{
	"critical": ".1.3.6.1.6.3.1.1.5.3", // linkDown
	"high":     ".1.3.6.1.6.3.1.1.5.3", // linkDown
	"medium":   ".1.3.6.1.6.3.1.1.5.5", // authenticationFailure
	"low":      ".1.3.6.1.6.3.1.1.5.2", // warmStart
	"info":     ".1.3.6.1.6.3.1.1.5.4", // linkUp
}

// dialSNMP is the "snmp" mode: each Message is an SNMPv2c trap (community
// public) over UDP, its host carried as snmpTrapAddress.0 (host-0042 is
// 10.0.0.42), its text and sequence number as varbinds.
func dialSNMP(_ context.Context, target string) (Sender, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Transport: "udp", Community: "public", Version: gosnmp.Version2c,
		Timeout: gosnmp.Default.Timeout, MaxOids: gosnmp.MaxOids}
	if err := g.Connect(); err != nil {
		return nil, err
	}
	return &snmpSender{g: g}, nil
}

type snmpSender struct{ g *gosnmp.GoSNMP }

func (s *snmpSender) Send(_ context.Context, m Message) error {
	n := 0
	if len(m.Host) > 5 {
		n, _ = strconv.Atoi(m.Host[5:])
	}
	trap := gosnmp.SnmpTrap{Variables: []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(m.Seq)}, //nolint:gosec // wraps, as uptime does
		{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: snmpTraps[m.Severity]},
		{Name: ".1.3.6.1.6.3.18.1.3.0", Type: gosnmp.IPAddress, Value: fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)},
		{Name: ".1.3.6.1.2.1.2.2.1.1." + strconv.Itoa(1+int(m.Seq%48)), Type: gosnmp.Integer, Value: 1 + int(m.Seq%48)},
		{Name: ".1.3.6.1.4.1.8072.9999.1.1", Type: gosnmp.OctetString, Value: m.Text},
		{Name: ".1.3.6.1.4.1.8072.9999.1.2", Type: gosnmp.Counter64, Value: uint64(m.Seq)}, //nolint:gosec // from 1
	}}
	_, err := s.g.SendTrap(trap)
	return err
}

func (s *snmpSender) Close() error { return s.g.Conn.Close() }
