package loadgen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// A Scenario is a storm of events with its ground truth: the asset
// inventory it happens on (assets with their dependencies, to load
// through the assets API before posting), its events in the order a
// server would receive them, and for each event the incident it truly
// belongs to ("" for ordinary noise) and whether it is that incident's
// root cause.
type Scenario struct {
	Name   string          `json:"name"`
	Seed   uint64          `json:"seed"`
	Assets []store.Asset   `json:"assets"`
	Events []ScenarioEvent `json:"events"`
}

// ScenarioEvent is one event of a scenario: Offset from the scenario's
// start, the webhook fields, and its truth.
type ScenarioEvent struct {
	Offset    time.Duration `json:"offset"`
	Host      string        `json:"host"`
	Service   string        `json:"service,omitempty"`
	EventType string        `json:"event_type"`
	Severity  string        `json:"severity"`
	Message   string        `json:"message"`
	// Truth names the incident the event belongs to; "" is noise that
	// belongs to none.
	Truth string `json:"truth,omitempty"`
	// Root marks the root cause of its Truth incident (one per incident).
	Root bool `json:"root,omitempty"`
}

// Span is the time from the scenario's first event to its last.
func (s *Scenario) Span() time.Duration {
	var d time.Duration
	for _, e := range s.Events {
		d = max(d, e.Offset)
	}
	return d
}

// Truths returns the scenario's true incidents and their root events
// (indexes into Events).
func (s *Scenario) Truths() map[string]int {
	out := map[string]int{}
	for i, e := range s.Events {
		if e.Truth != "" && e.Root {
			out[e.Truth] = i
		}
	}
	return out
}

// scenarios are the generators by name.
var scenarios = map[string]func(b *builder){
	"db-cascade":     func(b *builder) { b.dbCascade("database", 0); b.noise() },
	"switch-failure": func(b *builder) { b.fanOut("switch", 0); b.noise() },
	"dns-failure":    func(b *builder) { b.fanOut("dns", 0); b.noise() },
	"twin-failures": func(b *builder) {
		b.dbCascade("database-a", 0)
		b.other().dbCascade("database-b", b.within(0, 40*time.Second))
		b.noise()
	},
	"flapping-service": func(b *builder) { b.flapping("flapping"); b.noise() },
	"storage-failure":  func(b *builder) { b.storage("storage"); b.noise() },
}

// ScenarioNames lists the scenarios, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NewScenario generates the scenario name from seed: host names, counts
// and timings are drawn from the seed, so that two seeds give two storms
// of one shape.
func NewScenario(name string, seed uint64) (Scenario, error) {
	gen, ok := scenarios[name]
	if !ok {
		return Scenario{}, fmt.Errorf("loadgen: unknown scenario %q: want one of %s", name, strings.Join(ScenarioNames(), ", "))
	}
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ab1e)) //nolint:gosec // a load generator, not cryptography
	s := &Scenario{Name: name, Seed: seed}
	b := &builder{rng: rng, s: s, hosts: map[string]bool{}}
	b.prefix = b.word()
	gen(b)
	slices.SortStableFunc(s.Events, func(x, y ScenarioEvent) int {
		switch {
		case x.Offset < y.Offset:
			return -1
		case x.Offset > y.Offset:
			return 1
		}
		return 0
	})
	slices.SortFunc(s.Assets, func(x, y store.Asset) int { return strings.Compare(x.Host, y.Host) })
	return *s, nil
}

// builder draws a scenario.
type builder struct {
	rng    *rand.Rand
	s      *Scenario
	prefix string
	hosts  map[string]bool
}

var words = []string{"orion", "vega", "lyra", "atlas", "nova", "kilo", "delta", "sierra", "tango", "zulu", "aurora", "cobalt",
	"ember", "fjord", "granite", "harbor", "indigo", "juniper", "krypton", "lumen", "magma", "nimbus", "onyx", "pylon"}

func (b *builder) word() string { return words[b.rng.IntN(len(words))] }

// other is a builder of the same scenario with another host prefix.
func (b *builder) other() *builder {
	o := *b
	for o.prefix == b.prefix {
		o.prefix = b.word()
	}
	return &o
}

// between draws an integer in [lo, hi].
func (b *builder) between(lo, hi int) int { return lo + b.rng.IntN(hi-lo+1) }

// within draws a duration in [lo, hi].
func (b *builder) within(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(b.rng.Int64N(int64(hi-lo)+1))
}

// asset adds a host of role to the inventory and returns its name.
func (b *builder) asset(role, criticality, service string, deps ...string) string {
	var host string
	for {
		host = fmt.Sprintf("%s-%s-%02d", b.prefix, role, b.between(1, 99))
		if !b.hosts[host] {
			break
		}
	}
	b.hosts[host] = true
	b.s.Assets = append(b.s.Assets, store.Asset{Host: host, Criticality: criticality, Service: service,
		Environment: "production", Dependencies: slices.Clone(deps)})
	return host
}

func (b *builder) emit(truth, host, service, typ, sev, msg string, at time.Duration, root bool) {
	b.s.Events = append(b.s.Events, ScenarioEvent{Offset: at.Round(time.Millisecond), Host: host, Service: service,
		EventType: typ, Severity: sev, Message: msg, Truth: truth, Root: root})
}

// symptom is a kind of message a failing host sends.
type symptom struct{ typ, sev, msg string }

// fail has host send n events drawn from syms over [start, end], the
// first one syms[0]; root marks that first one as the truth's root.
func (b *builder) fail(truth, host, service string, start, end time.Duration, n int, root bool, syms ...symptom) {
	b.emit(truth, host, service, syms[0].typ, syms[0].sev, b.fill(syms[0].msg), start, root)
	for range n - 1 {
		s := syms[b.rng.IntN(len(syms))]
		b.emit(truth, host, service, s.typ, s.sev, b.fill(s.msg), b.within(start, end), false)
	}
	// Failing hosts also log the ordinary low-level lines.
	for range b.between(0, 3) {
		b.emit(truth, host, service, "log", []string{"info", "low"}[b.rng.IntN(2)], b.fill("retrying operation after {n} ms"), b.within(start, end), false)
	}
}

// fill replaces {n} in msg with a number.
func (b *builder) fill(msg string) string {
	return strings.ReplaceAll(msg, "{n}", fmt.Sprint(b.between(2, 9999)))
}

// dbCascade is a database failing and taking its applications, load
// balancers and synthetic checks with it; the synthetic checks notice
// first and the database itself reports last.
func (b *builder) dbCascade(truth string, t0 time.Duration) {
	db := b.asset("db", "critical", "postgres")
	apps := make([]string, b.between(3, 7))
	for i := range apps {
		apps[i] = b.asset("app", "high", "api", db)
	}
	lbs := make([]string, b.between(1, 2))
	for i := range lbs {
		lbs[i] = b.asset("lb", "high", "haproxy", apps...)
	}
	synths := make([]string, b.between(2, 4))
	for i := range synths {
		synths[i] = b.asset("synthetic", "medium", "checkout-check", lbs[b.rng.IntN(len(lbs))])
	}
	dur := b.within(4*time.Minute, 10*time.Minute)
	for _, h := range synths {
		at := t0 + b.within(0, 10*time.Second)
		b.fail(truth, h, "checkout-check", at, at+dur, b.between(3, 8), false,
			symptom{"synthetic_check", "high", "checkout journey failed: HTTP 503 after {n} ms"},
			symptom{"synthetic_check", "high", "login journey timed out after {n} ms"})
	}
	for _, h := range lbs {
		at := t0 + b.within(10*time.Second, 30*time.Second)
		b.fail(truth, h, "haproxy", at, at+dur, b.between(5, 12), false,
			symptom{"backend_down", "high", "backend pool api has no healthy servers"},
			symptom{"http_errors", "high", "5xx rate {n} per minute"},
			symptom{"backend_down", "medium", "server api-{n} marked DOWN"})
	}
	for _, h := range apps {
		at := t0 + b.within(15*time.Second, 45*time.Second)
		b.fail(truth, h, "api", at, at+dur, b.between(6, 16), false,
			symptom{"app_error", "high", "could not connect to database: connection refused"},
			symptom{"app_error", "high", "connection pool exhausted after {n} ms"},
			symptom{"latency", "medium", "p99 latency {n} ms"},
			symptom{"app_error", "critical", "health check failing: database unavailable"})
	}
	at := t0 + b.within(50*time.Second, 90*time.Second)
	b.fail(truth, db, "postgres", at, at+dur, b.between(3, 8), true,
		symptom{"database_down", "critical", "FATAL: the database system is not accepting connections"},
		symptom{"replication", "high", "replication lag {n} s"},
		symptom{"disk", "critical", "could not write to file pg_wal: No space left on device"})
}

// fanOut is a network switch or a DNS server failing and taking many
// hosts with it; the hosts notice before, or after, the device reports.
func (b *builder) fanOut(kind string, t0 time.Duration) {
	var dev string
	var devSyms, hostSyms []symptom
	switch kind {
	case "switch":
		dev = b.asset("switch", "critical", "network")
		devSyms = []symptom{{"interface_down", "high", "port-channel {n} down"}, {"interface_down", "high", "interface xe-0/0/{n} link down"}}
		hostSyms = []symptom{{"host_down", "critical", "host unreachable: {n} of 5 pings lost"}, {"packet_loss", "high", "packet loss {n}%"},
			{"nfs", "high", "nfs server not responding, still trying"}}
	default:
		dev = b.asset("dns", "critical", "bind")
		devSyms = []symptom{{"service_degraded", "medium", "named: SERVFAIL rate {n} per second"}, {"service_down", "high", "named stopped responding on port 53"}}
		hostSyms = []symptom{{"dns_error", "high", "name resolution failed for api.internal: timeout"},
			{"app_error", "high", "upstream lookup failed after {n} ms"}, {"dns_error", "medium", "resolver timeout after {n} ms"}}
	}
	services := []string{"web", "api", "worker", "cache", "search", "queue"}
	hosts := make([]string, b.between(8, 24))
	for i := range hosts {
		svc := services[b.rng.IntN(len(services))]
		hosts[i] = b.asset(svc, []string{"high", "medium"}[b.rng.IntN(2)], svc, dev)
	}
	dur := b.within(3*time.Minute, 8*time.Minute)
	for _, h := range hosts {
		at := t0 + b.within(0, 60*time.Second)
		b.fail(kind, h, "", at, at+dur, b.between(2, 8), false, hostSyms...)
	}
	at := t0 + b.within(5*time.Second, 120*time.Second)
	b.fail(kind, dev, "", at, at+dur, b.between(2, 5), true, devSyms...)
}

// storage is a storage array failing: the virtual machines on it see I/O
// errors, the databases on those, then the applications.
func (b *builder) storage(truth string) {
	san := b.asset("san", "critical", "storage")
	vms := make([]string, b.between(3, 6))
	for i := range vms {
		vms[i] = b.asset("hv", "high", "hypervisor", san)
	}
	dbs := make([]string, b.between(1, 3))
	for i := range dbs {
		dbs[i] = b.asset("db", "critical", "mysql", vms[b.rng.IntN(len(vms))])
	}
	var apps []string
	for range b.between(2, 6) {
		apps = append(apps, b.asset("app", "high", "api", dbs[b.rng.IntN(len(dbs))]))
	}
	dur := b.within(4*time.Minute, 9*time.Minute)
	for _, h := range vms {
		at := b.within(0, 30*time.Second)
		b.fail(truth, h, "", at, at+dur, b.between(4, 10), false,
			symptom{"io_error", "critical", "blk_update_request: I/O error, dev sdb, sector {n}"},
			symptom{"io_latency", "high", "disk latency {n} ms"})
	}
	for _, h := range dbs {
		at := b.within(20*time.Second, 60*time.Second)
		b.fail(truth, h, "mysql", at, at+dur, b.between(3, 8), false,
			symptom{"database_error", "critical", "InnoDB: write of {n} bytes failed"},
			symptom{"slow_query", "medium", "query took {n} ms"})
	}
	for _, h := range apps {
		at := b.within(30*time.Second, 90*time.Second)
		b.fail(truth, h, "api", at, at+dur, b.between(3, 10), false,
			symptom{"app_error", "high", "database write timeout after {n} ms"},
			symptom{"latency", "medium", "p99 latency {n} ms"})
	}
	at := b.within(40*time.Second, 150*time.Second)
	b.fail(truth, san, "storage", at, at+dur, b.between(2, 4), true,
		symptom{"controller_failure", "high", "controller B offline, {n} paths degraded"},
		symptom{"raid", "medium", "raid group {n} rebuilding"})
}

// flapping is a service going down and up again for a while; the load
// balancer in front of it and a synthetic check complain each time.
func (b *builder) flapping(truth string) {
	web := b.asset("web", "high", "nginx")
	lb := b.asset("lb", "high", "haproxy", web)
	synth := b.asset("synthetic", "medium", "home-check", lb)
	at := b.within(0, 20*time.Second)
	first := true
	for range b.between(5, 12) {
		down := at
		// The checks may notice before the service reports itself.
		b.emit(truth, synth, "home-check", "synthetic_check", "high", b.fill("home page failed: HTTP 502 after {n} ms"), down+b.within(-10*time.Second, 20*time.Second)+10*time.Second, false)
		b.emit(truth, lb, "haproxy", "backend_down", "high", "server web DOWN, reason: Layer4 connection problem", down+b.within(5*time.Second, 30*time.Second), false)
		b.emit(truth, web, "nginx", "service_down", "high", "nginx: worker process exited on signal 11", down+10*time.Second, first)
		first = false
		up := down + b.within(30*time.Second, 2*time.Minute)
		b.emit(truth, web, "nginx", "service_up", "info", "nginx started", up, false)
		b.emit(truth, lb, "haproxy", "backend_up", "info", "server web UP", up+b.within(time.Second, 10*time.Second), false)
		at = up + b.within(30*time.Second, 3*time.Minute)
	}
}

// noiseWarnings are warnings of healthy hosts, each its own incident.
var noiseWarnings = []symptom{
	{"disk_usage", "medium", "filesystem /var {n}% full"},
	{"certificate", "medium", "certificate expires in {n} days"},
	{"backup", "medium", "nightly backup finished late ({n} s)"},
	{"memory", "medium", "memory usage {n}%"},
	{"ntp", "medium", "clock offset {n} ms"},
}

// noise is the ordinary chatter of other hosts over the scenario's span:
// info and low events from hosts that are healthy (some of them
// depending on each other), and one or two warnings of hosts that are
// each an incident of their own.
func (b *builder) noise() {
	span := max(b.s.Span(), 5*time.Minute)
	o := b.other()
	services := []string{"web", "api", "batch", "mq", "ldap", "mail", "ci"}
	var hosts []string
	for range o.between(15, 35) {
		svc := services[o.rng.IntN(len(services))]
		var deps []string
		if len(hosts) > 0 && o.rng.IntN(3) == 0 {
			deps = []string{hosts[o.rng.IntN(len(hosts))]}
		}
		hosts = append(hosts, o.asset(svc, []string{"medium", "low", "high"}[o.rng.IntN(3)], svc, deps...))
	}
	lines := []symptom{{"log", "info", "request served in {n} ms"}, {"heartbeat", "info", "agent heartbeat"},
		{"log", "low", "slow request {n} ms"}, {"cron", "info", "job finished in {n} s"}, {"auth", "low", "failed login for user {n}"}}
	for _, h := range hosts {
		svc := ""
		for _, a := range b.s.Assets {
			if a.Host == h {
				svc = a.Service
			}
		}
		for range o.between(2, 8) {
			l := lines[o.rng.IntN(len(lines))]
			sev := l.sev
			if sev == "low" && o.criticalityOf(h) == "high" {
				sev = "info" // a low event of a high asset would be scored medium
			}
			b.emit("", h, svc, l.typ, sev, o.fill(l.msg), o.within(0, span), false)
		}
	}
	for _, w := range o.pick(noiseWarnings, o.between(1, 2)) {
		// A host of its own, related to no other: a warning that is an
		// incident of its own.
		h := o.asset("util", "medium", "")
		truth := "warning-" + h
		at := o.within(0, span)
		b.emit(truth, h, "", w.typ, w.sev, o.fill(w.msg), at, true)
		for range o.between(0, 2) {
			b.emit(truth, h, "", w.typ, w.sev, o.fill(w.msg), at+o.within(time.Minute, 4*time.Minute), false)
		}
	}
}

func (b *builder) criticalityOf(host string) string {
	for _, a := range b.s.Assets {
		if a.Host == host {
			return a.Criticality
		}
	}
	return ""
}

// pick draws n distinct elements of from.
func (b *builder) pick(from []symptom, n int) []symptom {
	idx := b.rng.Perm(len(from))
	out := make([]symptom, 0, n)
	for _, i := range idx[:min(n, len(from))] {
		out = append(out, from[i])
	}
	return out
}
