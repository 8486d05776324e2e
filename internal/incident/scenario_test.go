package incident

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/loadgen"
)

// runScenario feeds a generated storm through a fresh engine, in batches
// of 50 events in arrival order (each event its own processed event: no
// deduplication), and scores the result as reflex eval storms does.
func runScenario(t testing.TB, name string, seed uint64) loadgen.StormResult {
	sc, err := loadgen.NewScenario(name, seed)
	require.NoError(t, err)
	return runStorm(t, sc)
}

// runStorm feeds sc through a fresh engine as runScenario does.
func runStorm(t testing.TB, sc loadgen.Scenario) loadgen.StormResult {
	e := newEnv(t.(*testing.T), Options{}, sc.Assets...)
	p := loadgen.Posted{Scenario: sc}
	var batch []event.Event
	flush := func() {
		if len(batch) > 0 {
			e.handle(batch...)
			batch = batch[:0]
		}
	}
	for _, se := range sc.Events {
		ev := e.ev(se.Host, se.Offset, event.Severity(se.Severity), se.EventType, se.Message)
		ev.SourceService = se.Service
		p.IDs = append(p.IDs, ev.ID)
		batch = append(batch, ev)
		if len(batch) == 50 {
			flush()
		}
	}
	flush()
	of, err := e.store.IncidentsOfEvents(e.ctx, p.IDs)
	require.NoError(t, err)
	obs := loadgen.Observed{Processed: map[int64]int64{}, Incident: of, Roots: map[int64]int64{}}
	for _, id := range p.IDs {
		obs.Processed[id] = id
	}
	for _, in := range e.incidents() {
		obs.Roots[in.ID] = in.RootEventID
	}
	return loadgen.Score(p, obs)
}

// TestScenariosAcrossSeeds runs every storm scenario with 8 seeds each
// through the engine and requires the targets for each scenario
// over its seeds: the method, not one draw, meets them.
func TestScenariosAcrossSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("many storms")
	}
	var all []loadgen.StormResult
	var report strings.Builder
	for _, name := range loadgen.ScenarioNames() {
		var rs []loadgen.StormResult
		for seed := uint64(1); seed <= 8; seed++ {
			rs = append(rs, runScenario(t, name, seed*7919))
		}
		o := loadgen.Overall(rs)
		fmt.Fprintf(&report, "%-18s events %5d incidents %3d truth %3d compression %.4f purity %.3f top-1 %.3f\n",
			name, o.Events, o.Incidents, o.TruthIncidents, o.Compression, o.Purity, o.RootTop1)
		require.GreaterOrEqual(t, o.Compression, loadgen.TargetCompression, name)
		require.GreaterOrEqual(t, o.Purity, loadgen.TargetPurity, name)
		require.GreaterOrEqual(t, o.RootTop1, loadgen.TargetRootTop1, name)
		all = append(all, rs...)
	}
	o := loadgen.Overall(all)
	fmt.Fprintf(&report, "%-18s events %5d incidents %3d truth %3d compression %.4f purity %.3f top-1 %.3f\n",
		"all", o.Events, o.Incidents, o.TruthIncidents, o.Compression, o.Purity, o.RootTop1)
	t.Log("\n" + report.String())
}
