package incident

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/loadgen"
	"github.com/reflex-ops/reflex/internal/store"
)

// heldOut builds storms of shapes that loadgen's scenarios do not have,
// written apart from the engine and its scenarios, to check that the
// method generalizes: a message broker whose producers and consumers
// complain (a synthetic check first, the broker last), a four-level chain
// (storage under a database under applications under a load balancer)
// whose root reports late and only at medium severity, and an unrelated
// disk filling on a host of another team at the same time, amid noise.
type heldOut struct {
	rng *rand.Rand
	sc  loadgen.Scenario
}

func (h *heldOut) asset(host, crit string, deps ...string) string {
	h.sc.Assets = append(h.sc.Assets, store.Asset{Host: host, Criticality: crit, Environment: "production", Dependencies: slices.Clone(deps)})
	return host
}

func (h *heldOut) emit(truth, host, typ, sev, msg string, at time.Duration, root bool) {
	h.sc.Events = append(h.sc.Events, loadgen.ScenarioEvent{Offset: at, Host: host, EventType: typ, Severity: sev,
		Message: fmt.Sprintf(msg, h.rng.IntN(5000)), Truth: truth, Root: root})
}

func (h *heldOut) jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(h.rng.Int64N(int64(hi-lo)))
}

func newHeldOut(seed uint64) loadgen.Scenario {
	h := &heldOut{rng: rand.New(rand.NewPCG(seed, 7)), sc: loadgen.Scenario{Name: "held-out", Seed: seed}} //nolint:gosec // test data

	// A broker and its clients.
	broker := h.asset("mq-07", "critical")
	var clients []string
	for i := range 4 + h.rng.IntN(6) {
		clients = append(clients, h.asset(fmt.Sprintf("orders-%02d", i+1), "high", broker))
	}
	check := h.asset("probe-orders", "medium", clients[0])
	h.emit("broker", check, "synthetic_check", "high", "order placement probe failed after %d ms", 0, false)
	for _, c := range clients {
		for range 3 + h.rng.IntN(8) {
			h.emit("broker", c, []string{"publish_error", "consumer_lag"}[h.rng.IntN(2)], []string{"high", "medium"}[h.rng.IntN(2)],
				"amqp publish to exchange orders failed: channel closed (%d)", h.jitter(5*time.Second, 6*time.Minute), false)
		}
	}
	h.emit("broker", broker, "service_down", "critical", "rabbitmq node down: %d connections lost", 70*time.Second, true)
	h.emit("broker", broker, "memory_alarm", "high", "memory high watermark reached (%d MiB)", 90*time.Second, false)

	// A four-level chain; the storage reports late and at medium.
	san := h.asset("san-02", "critical")
	db := h.asset("pg-billing", "critical", san)
	var apps []string
	for i := range 3 + h.rng.IntN(4) {
		apps = append(apps, h.asset(fmt.Sprintf("billing-api-%02d", i+1), "high", db))
	}
	lb := h.asset("lb-billing", "high", apps...)
	base := 20 * time.Second
	for range 4 + h.rng.IntN(5) {
		h.emit("chain", lb, "http_errors", "high", "5xx ratio %d per mille", base+h.jitter(0, 5*time.Minute), false)
	}
	for _, a := range apps {
		for range 3 + h.rng.IntN(6) {
			h.emit("chain", a, "app_error", "high", "query timeout after %d ms", base+h.jitter(10*time.Second, 5*time.Minute), false)
		}
	}
	for range 3 {
		h.emit("chain", db, "io_latency", "critical", "checkpoint took %d s: I/O stalled", base+h.jitter(40*time.Second, 4*time.Minute), false)
	}
	h.emit("chain", san, "array_degraded", "medium", "controller B path failover, %d IOPS", base+2*time.Minute, true)

	// An unrelated disk filling on another team's host, at the same time.
	disk := h.asset("ci-runner-3", "low")
	h.emit("disk", disk, "disk_full", "high", "/var is 9%d%% full", 30*time.Second, true)
	h.emit("disk", disk, "disk_full", "critical", "/var is 9%d%% full", 3*time.Minute, false)

	// Noise: healthy hosts logging.
	for i := range 40 {
		host := h.asset(fmt.Sprintf("web-%02d", i%12+1), "medium")
		h.emit("", host, "log", []string{"info", "low"}[h.rng.IntN(2)], "GET /health 200 in %d ms", h.jitter(0, 7*time.Minute), false)
	}
	slices.SortStableFunc(h.sc.Events, func(a, b loadgen.ScenarioEvent) int { return int(a.Offset - b.Offset) })
	// Assets may repeat (the noise hosts): keep the first of each.
	seen := map[string]bool{}
	h.sc.Assets = slices.DeleteFunc(h.sc.Assets, func(a store.Asset) bool { d := seen[a.Host]; seen[a.Host] = true; return d })
	return h.sc
}

// TestHeldOutShapes scores storms of shapes the scenarios do not have,
// over several seeds, against the targets.
func TestHeldOutShapes(t *testing.T) {
	var rs []loadgen.StormResult
	for seed := uint64(1); seed <= 6; seed++ {
		rs = append(rs, runStorm(t, newHeldOut(seed)))
	}
	o := loadgen.Overall(rs)
	t.Logf("held out: events %d incidents %d truth %d compression %.4f purity %.3f top-1 %.3f",
		o.Events, o.Incidents, o.TruthIncidents, o.Compression, o.Purity, o.RootTop1)
	require.GreaterOrEqual(t, o.Compression, 0.9)
	require.GreaterOrEqual(t, o.Purity, loadgen.TargetPurity)
	require.GreaterOrEqual(t, o.RootTop1, loadgen.TargetRootTop1)
}
