package snmp

import (
	"strconv"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
)

// DefaultSeverity is the severity of a trap that neither the built-in
// table nor the user's map gives one.
const DefaultSeverity = event.Medium

// OIDs of SNMPv2-MIB that carry a v2 notification's identity.
const (
	oidSysUpTime          = "1.3.6.1.2.1.1.3.0"
	oidSnmpTrapOID        = "1.3.6.1.6.3.1.1.4.1.0"
	oidSnmpTrapEnterprise = "1.3.6.1.6.3.1.1.4.3.0"
	oidStandardTraps      = "1.3.6.1.6.3.1.1.5" // snmpTraps: coldStart is .1 (RFC 3584 section 3.1)
	oidSnmpTrapCommunity  = "1.3.6.1.6.3.18.1.4.0"
	oidLinkDown           = oidStandardTraps + ".3"
	oidLinkUp             = oidStandardTraps + ".4"
	oidUsmStatsUnknownEng = "1.3.6.1.6.3.15.1.1.4.0"
)

// builtin names the standard and common OIDs: the traps of SNMPv2-MIB
// and a few common MIBs with their default severities, and the objects
// their varbinds carry. A varbind is named by the longest entry its OID
// starts with (an object's instance follows its OID: ifIndex.2).
var builtin = map[string]OIDDef{
	// SNMPv2-MIB traps (RFC 3418) and the v1 generic traps they map to.
	"1.3.6.1.6.3.1.1.5.1": {"coldStart", "medium"},
	"1.3.6.1.6.3.1.1.5.2": {"warmStart", "low"},
	"1.3.6.1.6.3.1.1.5.3": {"linkDown", "high"},
	"1.3.6.1.6.3.1.1.5.4": {"linkUp", "info"},
	"1.3.6.1.6.3.1.1.5.5": {"authenticationFailure", "medium"},
	"1.3.6.1.6.3.1.1.5.6": {"egpNeighborLoss", "medium"},

	// SNMPv2-MIB objects.
	"1.3.6.1.2.1.1.1":         {"sysDescr", ""},
	"1.3.6.1.2.1.1.2":         {"sysObjectID", ""},
	"1.3.6.1.2.1.1.3":         {"sysUpTime", ""},
	"1.3.6.1.2.1.1.4":         {"sysContact", ""},
	"1.3.6.1.2.1.1.5":         {"sysName", ""},
	"1.3.6.1.2.1.1.6":         {"sysLocation", ""},
	"1.3.6.1.2.1.1.7":         {"sysServices", ""},
	"1.3.6.1.6.3.1.1.4.1":     {"snmpTrapOID", ""},
	"1.3.6.1.6.3.1.1.4.3":     {"snmpTrapEnterprise", ""},
	"1.3.6.1.6.3.18.1.3":      {"snmpTrapAddress", ""},
	"1.3.6.1.2.1.2.2.1.1":     {"ifIndex", ""},
	"1.3.6.1.2.1.2.2.1.2":     {"ifDescr", ""},
	"1.3.6.1.2.1.2.2.1.3":     {"ifType", ""},
	"1.3.6.1.2.1.2.2.1.4":     {"ifMtu", ""},
	"1.3.6.1.2.1.2.2.1.5":     {"ifSpeed", ""},
	"1.3.6.1.2.1.2.2.1.6":     {"ifPhysAddress", ""},
	"1.3.6.1.2.1.2.2.1.7":     {"ifAdminStatus", ""},
	"1.3.6.1.2.1.2.2.1.8":     {"ifOperStatus", ""},
	"1.3.6.1.2.1.2.2.1.9":     {"ifLastChange", ""},
	"1.3.6.1.2.1.31.1.1.1.1":  {"ifName", ""},
	"1.3.6.1.2.1.31.1.1.1.15": {"ifHighSpeed", ""},
	"1.3.6.1.2.1.31.1.1.1.18": {"ifAlias", ""},

	// ENTITY-MIB (RFC 6933).
	"1.3.6.1.2.1.47.2.0.1": {"entConfigChange", "low"},

	// BGP4-MIB (RFC 4273): the v2 forms and the peer objects.
	"1.3.6.1.2.1.15.0.1":    {"bgpEstablishedNotification", "info"},
	"1.3.6.1.2.1.15.0.2":    {"bgpBackwardTransNotification", "high"},
	"1.3.6.1.2.1.15.7.1":    {"bgpEstablished", "info"},
	"1.3.6.1.2.1.15.7.2":    {"bgpBackwardTransition", "high"},
	"1.3.6.1.2.1.15.3.1.2":  {"bgpPeerState", ""},
	"1.3.6.1.2.1.15.3.1.7":  {"bgpPeerRemoteAddr", ""},
	"1.3.6.1.2.1.15.3.1.14": {"bgpPeerLastError", ""},

	// UPS-MIB (RFC 1628).
	"1.3.6.1.2.1.33.2.1": {"upsTrapOnBattery", "high"},
	"1.3.6.1.2.1.33.2.2": {"upsTrapTestCompleted", "info"},
	"1.3.6.1.2.1.33.2.3": {"upsTrapAlarmEntryAdded", "high"},
	"1.3.6.1.2.1.33.2.4": {"upsTrapAlarmEntryRemoved", "info"},

	// DISMAN-EVENT-MIB (RFC 2981): what snmpd's monitor directives send.
	"1.3.6.1.2.1.88.2.0.1": {"mteTriggerFired", "medium"},
	"1.3.6.1.2.1.88.2.0.2": {"mteTriggerRising", "medium"},
	"1.3.6.1.2.1.88.2.0.3": {"mteTriggerFalling", "low"},
	"1.3.6.1.2.1.88.2.0.4": {"mteTriggerFailure", "medium"},
	"1.3.6.1.2.1.88.2.0.5": {"mteEventSetFailure", "medium"},
	"1.3.6.1.2.1.88.2.1.1": {"mteHotTrigger", ""},
	"1.3.6.1.2.1.88.2.1.2": {"mteHotTargetName", ""},
	"1.3.6.1.2.1.88.2.1.3": {"mteHotContextName", ""},
	"1.3.6.1.2.1.88.2.1.4": {"mteHotOID", ""},
	"1.3.6.1.2.1.88.2.1.5": {"mteHotValue", ""},
	"1.3.6.1.2.1.88.2.1.6": {"mteFailedReason", ""},

	// NET-SNMP-AGENT-MIB: snmpd's own start and stop.
	"1.3.6.1.4.1.8072.4.0.1": {"nsNotifyStart", "low"},
	"1.3.6.1.4.1.8072.4.0.2": {"nsNotifyShutdown", "medium"},
	"1.3.6.1.4.1.8072.4.0.3": {"nsNotifyRestart", "low"},
}

// vendors names a few private enterprise numbers (1.3.6.1.4.1.N), for
// event_data.snmp.vendor of an enterprise's trap.
var vendors = map[string]string{
	"2":     "ibm",
	"9":     "cisco",
	"11":    "hp",
	"171":   "dlink",
	"232":   "compaq",
	"311":   "microsoft",
	"318":   "apc",
	"674":   "dell",
	"789":   "netapp",
	"2011":  "huawei",
	"2636":  "juniper",
	"3375":  "f5",
	"6876":  "vmware",
	"6027":  "force10",
	"8072":  "net-snmp",
	"12356": "fortinet",
	"14179": "cisco-wlc",
	"14988": "mikrotik",
	"25461": "paloalto",
	"30065": "arista",
	"41112": "ubiquiti",
}

// Table names OIDs and gives trap severities: the built-in table with the
// user's map over it. It is read-only once made and safe for concurrent
// use.
type Table struct {
	defs map[string]OIDDef
	def  event.Severity
	max  int // the most arcs of an entry, bounding the prefix search
}

// NewTable returns the built-in table with user's entries over it: a
// user entry's name or severity replaces the built-in one, an empty one
// keeps it. def is the severity of unknown traps ("" is DefaultSeverity).
// The keys of user must be clean OIDs (see cleanOID).
func NewTable(user map[string]OIDDef, def event.Severity) *Table {
	if def == "" {
		def = DefaultSeverity
	}
	t := &Table{defs: make(map[string]OIDDef, len(builtin)+len(user)), def: def}
	for oid, d := range builtin {
		t.defs[oid] = d
	}
	for oid, d := range user {
		b := t.defs[oid]
		if d.Name != "" {
			b.Name = d.Name
		}
		if d.Severity != "" {
			b.Severity = d.Severity
		}
		t.defs[oid] = b
	}
	for oid := range t.defs {
		t.max = max(t.max, strings.Count(oid, ".")+1)
	}
	return t
}

// Trap returns the name (the OID itself when the table has none) and the
// severity of the trap OID oid.
func (t *Table) Trap(oid string) (string, event.Severity) {
	d := t.defs[oid]
	name := d.Name
	if name == "" {
		name = oid
	}
	sev := t.def
	if d.Severity != "" {
		sev, _ = event.ParseSeverity(d.Severity) // checked when loaded
	}
	return name, sev
}

// Object returns the name of the longest entry oid starts with (at an arc
// boundary) and the rest of oid after it (the instance: "2" of
// ifIndex.2, "0" of a scalar); ok is false when no entry names it.
func (t *Table) Object(oid string) (name, instance string, ok bool) {
	prefix := oid
	for arcs := strings.Count(oid, ".") + 1; arcs > 0; arcs-- {
		if arcs <= t.max {
			if d, found := t.defs[prefix]; found && d.Name != "" {
				return d.Name, strings.TrimPrefix(strings.TrimPrefix(oid, prefix), "."), true
			}
		}
		i := strings.LastIndexByte(prefix, '.')
		if i < 0 {
			break
		}
		prefix = prefix[:i]
	}
	return "", "", false
}

// vendor names the enterprise of an OID under 1.3.6.1.4.1, or "".
func vendor(oid string) string {
	rest, ok := strings.CutPrefix(oid, "1.3.6.1.4.1.")
	if !ok {
		return ""
	}
	n, _, _ := strings.Cut(rest, ".")
	return vendors[n]
}

// cleanOID returns oid without a leading dot and reports whether it is a
// numeric OID (arcs of digits, at least two, none longer than ten digits).
func cleanOID(oid string) (string, bool) {
	oid = strings.TrimPrefix(strings.TrimSpace(oid), ".")
	arcs := strings.Split(oid, ".")
	if len(arcs) < 2 || len(arcs) > 128 {
		return oid, false
	}
	for _, a := range arcs {
		if a == "" || len(a) > 10 {
			return oid, false
		}
		if _, err := strconv.ParseUint(a, 10, 32); err != nil {
			return oid, false
		}
	}
	return oid, true
}
