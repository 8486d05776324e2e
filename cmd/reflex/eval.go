package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/reflex-ops/reflex/internal/logtmpl"
)

// runEval runs `reflex eval <benchmark> DIR`.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "Usage: reflex eval loghub|nab DIR [--out OUT] [--json]\n       reflex eval storms [--url URL] [--scenario NAME|all] [--seed N] [--json]\n\nScores reflex's methods on public benchmark data laid out like ../shared/data,\nand its incidents on generated storms posted to a running server.")
		if len(args) == 0 {
			return errors.New("eval: name a benchmark (loghub, nab, storms)")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "loghub":
		return evalLoghub(args[1:], stdout, stderr)
	case "nab":
		return evalNAB(args[1:], stdout, stderr)
	case "storms":
		return evalStorms(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("eval: unknown benchmark %q (loghub, nab, storms)", args[0])
	}
}

// evalLoghub mines the Content of every system of DIR and prints each
// system's grouping accuracy, the mean and the rate.
func evalLoghub(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval loghub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write OUT/<System>.csv (LineId,TemplateId,Template) for another scorer")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	minAcc := fs.Float64("min-accuracy", 0, "fail (exit status 1) when the mean grouping accuracy is below this (0: never)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex eval loghub DIR [--out OUT] [--json] [--min-accuracy F]\n\nMines log templates from the Content column of DIR/<System>/<System>_2k.log_structured.csv\n(a directory laid out like loghub, any systems in it) and prints each system's grouping\naccuracy against its EventId column, the mean and the lines per second.\n\nFlags:")
		fs.PrintDefaults()
	}
	dir, err := parseDir(fs, args)
	if err != nil {
		return err
	}
	res, err := logtmpl.EvalLoghub(dir, logtmpl.Options{})
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeAssignments(*out, res); err != nil {
			return err
		}
	}
	sum, lines, rate := 0.0, 0, 0.0
	for _, r := range res {
		sum += r.Accuracy
		lines += r.Lines
		rate += float64(r.Lines) / r.LinesPerSecond
	}
	mean := sum / float64(len(res))
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"systems": res, "mean_accuracy": mean, "lines_per_second": float64(lines) / rate}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SYSTEM\tLINES\tTEMPLATES\tACCURACY\tLINES/S")
		for _, r := range res {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.4f\t%.0f\n", r.System, r.Lines, r.Templates, r.Accuracy, r.LinesPerSecond)
		}
		fmt.Fprintf(tw, "mean\t%d\t\t%.4f\t%.0f\n", lines, mean, float64(lines)/rate)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return floors("eval loghub", floor{"mean accuracy", "min-accuracy", mean, *minAcc})
}

// parseDir parses an evaluation's flags and its DIR argument, which may
// come before or after the flags.
func parseDir(fs *flag.FlagSet, args []string) (string, error) {
	var dir string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if dir == "" && fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		fs.Usage()
		return "", fmt.Errorf("%s: DIR is required", fs.Name())
	}
	return dir, nil
}

// floor is a figure of an evaluation and the least it may be.
type floor struct {
	name, flag string
	got, min   float64
}

// floors fails when a figure is below its floor (a floor of 0 is none),
// naming every one that is, so that CI can hold an evaluation to it.
func floors(cmd string, fs ...floor) error {
	var below []string
	for _, f := range fs {
		if f.min > 0 && f.got < f.min {
			below = append(below, fmt.Sprintf("%s %.4g is below --%s %.4g", f.name, f.got, f.flag, f.min))
		}
	}
	if len(below) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", cmd, strings.Join(below, "; "))
}

// writeAssignments writes OUT/<System>.csv with each line's template.
func writeAssignments(dir string, res []logtmpl.SystemResult) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("eval loghub: %w", err)
	}
	for _, r := range res {
		f, err := os.Create(filepath.Join(dir, r.System+".csv")) //nolint:gosec // G304: the --out directory the operator named
		if err != nil {
			return fmt.Errorf("eval loghub: %w", err)
		}
		w := csv.NewWriter(f)
		_ = w.Write([]string{"LineId", "TemplateId", "Template"})
		for i, t := range r.Assigned {
			_ = w.Write([]string{r.LineIDs[i], "T" + strconv.FormatInt(t.ID, 10), t.Text})
		}
		w.Flush()
		err = w.Error()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("eval loghub: write %s: %w", f.Name(), err)
		}
	}
	return nil
}
