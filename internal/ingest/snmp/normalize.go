package snmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Keys of event_data the normalizer sets.
const (
	// DataSNMP holds the notification's envelope: version, pdu, user,
	// context, agent, source_address, enterprise, generic_trap,
	// specific_trap, uptime, trap_oid, vendor.
	DataSNMP = "snmp"
	// DataVarbinds holds every varbind's value by its OID.
	DataVarbinds = "varbinds"
	// DataVars holds the values of the varbinds the table names, by name
	// (ifIndex, ifDescr ...); a second varbind of the same name is keyed
	// name.instance.
	DataVars = "vars"
)

// Normalizer is the SNMP adapter's normalizer, registered for
// event.SourceSNMP. It maps a Trap (the raw event's data) to the event:
//
//	event_type     the trap's name (coldStart, linkDown ... or the user map's), else its numeric OID
//	severity       the trap's severity, resolved at intake (the user map's, else the built-in default)
//	source_host    the agent's address (v1 agent-addr, else snmpTrapAddress.0, else the UDP source)
//	source_service the interface a trap names: ifName, else ifDescr, else "ifIndex N" (so that the
//	               fingerprint, which masks digits in the title, keeps two interfaces' traps apart)
//	title          "<event_type> on <host>", with ifIndex and ifDescr when present: "linkDown on 10.0.0.1 (ifIndex 2, ifDescr eth0)"
//	description    one "name = value" line per varbind
//	event_data     snmp (the envelope), varbinds (by OID), vars (by name)
//	alert          linkDown fires and linkUp resolves the alert host/link/ifIndex
//
// occurred_at is the receipt time: a trap carries only the agent's uptime.
type Normalizer struct{}

var _ normalize.Normalizer = Normalizer{}

// ErrBadTrap means a raw event's data is not a Trap.
var ErrBadTrap = errors.New("snmp: raw data is not a decoded trap")

// Normalize decodes raw.Data and maps the trap.
func (Normalizer) Normalize(raw *event.Raw) (normalize.Draft, error) {
	var t Trap
	dec := json.NewDecoder(bytes.NewReader(raw.Data))
	dec.UseNumber()
	if err := dec.Decode(&t); err != nil {
		return normalize.Draft{}, fmt.Errorf("%w: %w", ErrBadTrap, err)
	}
	if t.TrapOID == "" {
		return normalize.Draft{}, fmt.Errorf("%w: no trap_oid", ErrBadTrap)
	}
	return normalize.Draft{Event: t.Event()}, nil
}

// Event maps the trap to the event's fields (see Normalizer).
func (t *Trap) Event() *event.Event {
	name := t.TrapName
	if name == "" {
		name = t.TrapOID
	}
	sev := t.Severity
	if !sev.Valid() {
		sev = DefaultSeverity
	}
	e := &event.Event{
		EventType:  name,
		Severity:   sev,
		SourceHost: t.Agent,
	}
	byOID := make(map[string]any, len(t.Varbinds))
	byName := map[string]any{}
	var lines []string
	for _, v := range t.Varbinds {
		byOID[v.OID] = v.Value
		label := v.OID
		if v.Name != "" {
			key := v.Name
			if _, dup := byName[key]; dup && v.Instance != "" {
				key += "." + v.Instance
			}
			byName[key] = v.Value
			label = v.Name
			if v.Instance != "" && v.Instance != "0" {
				label += "." + v.Instance
			}
		}
		lines = append(lines, fmt.Sprintf("%s = %v", label, display(v.Value)))
	}
	e.Title = normalize.Title(title(name, t.Agent, byName))
	e.SourceService = iface(byName)
	e.Description = strings.Join(lines, "\n")
	e.SetData(DataSNMP, t.envelope())
	e.SetData(DataVarbinds, byOID)
	if len(byName) > 0 {
		e.SetData(DataVars, byName)
	}
	if ifIndex, ok := t.ifIndex(); ok && (t.TrapOID == oidLinkDown || t.TrapOID == oidLinkUp) {
		st := event.AlertFiring
		if t.resolution() {
			st = event.AlertResolved
			e.Severity = event.Info // a resolution takes the low lane
		}
		e.Alert = &event.Alert{Key: event.AlertKey(normalize.Host(t.Agent), "link", fmt.Sprint(ifIndex)), Status: st}
	}
	return e
}

// ifIndex is the value of the trap's first ifIndex varbind.
func (t *Trap) ifIndex() (any, bool) {
	for _, v := range t.Varbinds {
		if v.Name == "ifIndex" && v.Value != nil {
			return v.Value, true
		}
	}
	return nil, false
}

// resolution reports whether the trap resolves an alert: a linkUp naming
// its interface resolves the linkDown of the same interface.
func (t *Trap) resolution() bool {
	if t.TrapOID != oidLinkUp {
		return false
	}
	_, ok := t.ifIndex()
	return ok
}

// Host is the event's host as intake partitions by it.
func (t *Trap) Host() string { return normalize.Host(t.Agent) }

// title is "<name> on <host>" and the interface, when the trap names one.
func title(name, host string, vars map[string]any) string {
	s := name
	if host != "" {
		s += " on " + host
	}
	var iface []string
	if v, ok := vars["ifIndex"]; ok {
		iface = append(iface, fmt.Sprintf("ifIndex %v", display(v)))
	}
	for _, k := range []string{"ifName", "ifDescr"} {
		if v, ok := vars[k]; ok {
			iface = append(iface, fmt.Sprintf("%s %v", k, display(v)))
			break
		}
	}
	if len(iface) > 0 {
		s += " (" + strings.Join(iface, ", ") + ")"
	}
	return s
}

// iface names the interface of a trap's varbinds, or "".
func iface(vars map[string]any) string {
	for _, k := range []string{"ifName", "ifDescr"} {
		if v, ok := vars[k].(string); ok && v != "" {
			return v
		}
	}
	if v, ok := vars["ifIndex"]; ok && v != nil {
		return fmt.Sprintf("ifIndex %v", v)
	}
	return ""
}

func display(v any) any {
	if v == nil {
		return "null"
	}
	return v
}

// envelope is event_data.snmp.
func (t *Trap) envelope() map[string]any {
	m := map[string]any{
		"version":        t.Version,
		"pdu":            t.PDU,
		"agent":          t.Agent,
		"source_address": t.SourceAddress,
		"trap_oid":       t.TrapOID,
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("user", t.User)
	put("context", t.ContextName)
	put("enterprise", t.Enterprise)
	put("vendor", t.Vendor)
	if t.GenericTrap != nil {
		m["generic_trap"] = *t.GenericTrap
	}
	if t.SpecificTrap != nil {
		m["specific_trap"] = *t.SpecificTrap
	}
	if t.Uptime != nil {
		m["uptime"] = *t.Uptime
	}
	return m
}
