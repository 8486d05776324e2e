package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/loadgen"
)

// scenarioList resolves --scenario: a name, a comma-separated list or
// all.
func scenarioList(s string) ([]string, error) {
	if s == "" || s == "all" {
		return loadgen.ScenarioNames(), nil
	}
	var out []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if _, err := loadgen.NewScenario(n, 1); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// evalStorms posts generated storms to a running server and prints the
// compression, purity and root-cause accuracy of its incidents.
func evalStorms(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval storms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	scenario := fs.String("scenario", "all", "scenario name, comma-separated names or all ("+strings.Join(loadgen.ScenarioNames(), ", ")+")")
	seed := fs.Uint64("seed", 1, "seed of the first scenario (host names, counts, timings); the next ones take seed+1 ...")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait per scenario for the server to catch up")
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	quiet := fs.Bool("quiet", false, "no progress lines")
	minComp := fs.Float64("min-compression", 0, "fail (exit status 1) when the overall compression is below this (0: never)")
	minPurity := fs.Float64("min-purity", 0, "fail when the overall incident purity is below this (0: never)")
	minTop1 := fs.Float64("min-top1", 0, "fail when the overall root-cause top-1 accuracy is below this (0: never)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex eval storms [--url URL] [--scenario NAME|all] [--seed N] [--json]\n\n"+
			"Posts each scenario (its asset inventory through the assets API, then its events, in an hour\n"+
			"of event time of its own) to a running server, waits until the incident engine has caught up,\n"+
			"reads the incidents and the events' incident_id and prints per scenario and overall: compression\n"+
			"(1 - incidents/events), purity (share of the truth incidents' events whose incident's majority\n"+
			"truth is their own) and root-cause top-1 (truth incidents whose incident has their root as\n"+
			"root_event_id). The token (REFLEX_TOKEN) needs admin, for the assets.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("eval storms: unexpected argument %q", fs.Arg(0))
	}
	names, err := scenarioList(*scenario)
	if err != nil {
		return err
	}
	cf.resolve()
	o := loadgen.StormOptions{URL: cf.url, Token: cf.token, Wait: *wait}
	if !*quiet {
		o.Progress = stderr
	}
	rs, err := loadgen.RunStorms(ctx, o, names, *seed)
	if err != nil {
		return err
	}
	all := loadgen.Overall(rs)
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Scenarios []loadgen.StormResult `json:"scenarios"`
			Overall   loadgen.StormResult   `json:"overall"`
		}{rs, all}); err != nil {
			return err
		}
	} else {
		loadgen.ReportStorms(stdout, rs)
	}
	return floors("eval storms", floor{"compression", "min-compression", all.Compression, *minComp},
		floor{"purity", "min-purity", all.Purity, *minPurity}, floor{"root-cause top-1", "min-top1", all.RootTop1, *minTop1})
}

// runScenario is loadgen --scenario: it posts one storm and prints what
// it posted, and with --truth writes the ground truth.
func runScenario(ctx context.Context, cf clientFlags, name string, seed uint64, truth string, stdout io.Writer) error {
	sc, err := loadgen.NewScenario(name, seed)
	if err != nil {
		return err
	}
	o := loadgen.StormOptions{URL: cf.url, Token: cf.token}
	p, err := loadgen.PostScenario(ctx, o, sc, time.Now().Add(-time.Minute-sc.Span()))
	if err != nil {
		return err
	}
	if truth != "" {
		type row struct {
			ID int64 `json:"id"`
			loadgen.ScenarioEvent
		}
		rows := make([]row, len(p.IDs))
		for i, id := range p.IDs {
			rows[i] = row{ID: id, ScenarioEvent: sc.Events[i]}
		}
		b, err := json.MarshalIndent(struct {
			Scenario string `json:"scenario"`
			Seed     uint64 `json:"seed"`
			Assets   any    `json:"assets"`
			Events   []row  `json:"events"`
		}{sc.Name, sc.Seed, sc.Assets, rows}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(truth, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("loadgen: write truth: %w", err)
		}
	}
	fmt.Fprintf(stdout, "scenario %s (seed %d): %d assets loaded, %d events posted, %d true incidents\n",
		sc.Name, sc.Seed, len(sc.Assets), len(p.IDs), len(sc.Truths()))
	return nil
}
