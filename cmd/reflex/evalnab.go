package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/reflex-ops/reflex/internal/anomaly"
	"github.com/reflex-ops/reflex/internal/anomaly/nab"
)

// evalNAB runs the anomaly detector over every file of DIR and prints the
// NAB profile scores, the per-category standard scores beside Windowed
// Gaussian's, the thresholds and the rate.
func evalNAB(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval nab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write OUT/<category>/<name>.csv (timestamp,value,anomaly_score) for another scorer")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	minScore := fs.Float64("min-score", 0, "fail (exit status 1) when the standard profile's score is below this (0: never)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex eval nab DIR [--out OUT] [--json] [--min-score F]\n\nRuns reflex's anomaly detector online over every DIR/data/<category>/<name>.csv (a directory\nlaid out like NAB: labels/combined_windows.json, config/profiles.json) and prints the NAB\nscore of each profile, each category's standard score beside Windowed Gaussian's (NAB's\nbaseline), the thresholds chosen and the rows per second.\n\nFlags:")
		fs.PrintDefaults()
	}
	dir, err := parseDir(fs, args)
	if err != nil {
		return err
	}
	c, err := nab.Load(dir)
	if err != nil {
		return err
	}
	progress := func(done int, f *nab.File) {
		fmt.Fprintf(stderr, "\r%d/%d %s\x1b[K", done, len(c.Files), f.Key())
		if done == len(c.Files) {
			fmt.Fprintln(stderr)
		}
	}
	run, rate := nab.Evaluate(c, func() nab.ScoreFunc {
		d := anomaly.New(anomaly.Options{})
		return func(t time.Time, v float64) float64 { return d.Update(t, v).Score }
	}, progress)
	wgRun, _ := nab.Evaluate(c, func() nab.ScoreFunc {
		w := anomaly.NewWindowedGaussian(0, 0)
		return func(_ time.Time, v float64) float64 { return w.Score(v) }
	}, nil)
	res, wg := nab.Score(c, run), nab.Score(c, wgRun)
	if *out != "" {
		if err := writeNABScores(*out, run); err != nil {
			return err
		}
	}
	standard := floor{"standard score", "min-score", res.Profiles[0].Score, *minScore}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{
			"detector": res, "windowed_gaussian": wg, "files": len(c.Files), "rows": c.Rows(),
			"rows_per_second": rate, "state_bytes": anomaly.StateBytes(),
		}); err != nil {
			return err
		}
		return floors("eval nab", standard)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tSCORE\tTHRESHOLD\tTP\tFP\tFN\tWINDOWED GAUSSIAN")
	for i, p := range res.Profiles {
		fmt.Fprintf(tw, "%s\t%.1f\t%.4f\t%d\t%d\t%d\t%.1f\n", p.Profile, p.Score, p.Threshold, p.TP, p.FP, p.FN, wg.Profiles[i].Score)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CATEGORY\tFILES\tWINDOWS\tSTANDARD\tHELD OUT\tFP\tWINDOWED GAUSSIAN")
	for i, cr := range res.Categories {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%d\t%.1f\n", cr.Category, cr.Files, cr.Windows, cr.Score, cr.HeldOut, cr.FP, wg.Categories[i].Score)
	}
	fmt.Fprintf(tw, "\n%d files, %d rows, %.0f rows/s, %d bytes of state per series\n", len(c.Files), c.Rows(), rate, anomaly.StateBytes())
	if err := tw.Flush(); err != nil {
		return err
	}
	return floors("eval nab", standard)
}

// writeNABScores writes OUT/<category>/<name>.csv with each row's score.
func writeNABScores(dir string, run *nab.Run) error {
	for k, f := range run.Files {
		d := filepath.Join(dir, f.Category)
		if err := os.MkdirAll(d, 0o750); err != nil { //nolint:gosec // G703: the --out directory the operator named and the corpus's categories
			return fmt.Errorf("eval nab: %w", err)
		}
		fh, err := os.Create(filepath.Join(d, f.Name)) //nolint:gosec // G304: the --out directory the operator named
		if err != nil {
			return fmt.Errorf("eval nab: %w", err)
		}
		w := csv.NewWriter(fh)
		_ = w.Write([]string{"timestamp", "value", "anomaly_score"})
		for i, v := range f.Values {
			_ = w.Write([]string{
				f.Times[i].Format("2006-01-02 15:04:05"),
				strconv.FormatFloat(v, 'g', -1, 64),
				strconv.FormatFloat(run.Scores[k][i], 'f', 6, 64),
			})
		}
		w.Flush()
		err = w.Error()
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("eval nab: write %s: %w", fh.Name(), err)
		}
	}
	return nil
}
