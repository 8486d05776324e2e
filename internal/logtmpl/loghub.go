package logtmpl

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// SystemResult is the grouping accuracy of one loghub system.
type SystemResult struct {
	System    string  `json:"system"`
	Lines     int     `json:"lines"`
	Templates int     `json:"templates"` // live ones (not folded)
	Accuracy  float64 `json:"accuracy"`
	// LinesPerSecond is the miner's rate on the system's lines, one core.
	LinesPerSecond float64 `json:"lines_per_second"`
	// Assigned is each line's template (LineId order), for --out.
	Assigned []Template `json:"-"`
	LineIDs  []string   `json:"-"`
}

// EvalLoghub mines each system of a directory laid out like loghub
// (<dir>/<System>/<System>_2k.log_structured.csv with the columns LineId,
// Content and EventId) with a fresh Miner of opts, on the Content column
// only, and scores its grouping accuracy: a line is right when the lines
// of its template are exactly the lines of its ground-truth EventId.
func EvalLoghub(dir string, opts Options) ([]SystemResult, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("logtmpl: %w", err)
	}
	var out []SystemResult
	for _, e := range entries {
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err != nil || !st.IsDir() {
			continue // not a system (a symbolic link to one is)
		}
		path := filepath.Join(dir, e.Name(), e.Name()+"_2k.log_structured.csv")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		r, err := evalSystem(e.Name(), path, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("logtmpl: no <System>/<System>_2k.log_structured.csv under %s", dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].System < out[j].System })
	return out, nil
}

func evalSystem(name, path string, opts Options) (SystemResult, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the benchmark directory the operator named
	if err != nil {
		return SystemResult{}, fmt.Errorf("logtmpl: %w", err)
	}
	defer func() { _ = f.Close() }() // read only
	rd := csv.NewReader(f)
	rd.FieldsPerRecord = -1
	header, err := rd.Read()
	if err != nil {
		return SystemResult{}, fmt.Errorf("logtmpl: %s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, c := range []string{"LineId", "Content", "EventId"} {
		if _, ok := col[c]; !ok {
			return SystemResult{}, fmt.Errorf("logtmpl: %s: no %s column", path, c)
		}
	}
	var ids, contents, truth []string
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return SystemResult{}, fmt.Errorf("logtmpl: %s: %w", path, err)
		}
		ids = append(ids, rec[col["LineId"]])
		contents = append(contents, rec[col["Content"]])
		truth = append(truth, rec[col["EventId"]])
	}
	m := New(opts)
	assigned := make([]Template, len(contents))
	start := time.Now()
	for i, c := range contents {
		assigned[i], _ = m.Add(c)
	}
	elapsed := time.Since(start)
	// Final templates: a line's group is its template id.
	groups := make([]int64, len(assigned))
	final := m.Templates()
	for i, a := range assigned {
		id := m.Resolve(a.ID) // a template folded later: the lines join the live one
		groups[i] = id
		assigned[i] = final[id-1]
	}
	live := 0
	for _, t := range final {
		if t.FoldedInto == 0 {
			live++
		}
	}
	res := SystemResult{System: name, Lines: len(contents), Templates: live,
		Accuracy: GroupingAccuracy(groups, truth), Assigned: assigned, LineIDs: ids}
	if elapsed > 0 {
		res.LinesPerSecond = float64(len(contents)) / elapsed.Seconds()
	}
	return res, nil
}

// GroupingAccuracy is the share of lines whose group (parsed[i]) holds
// exactly the lines of their ground-truth group (truth[i]).
func GroupingAccuracy(parsed []int64, truth []string) float64 {
	if len(parsed) == 0 {
		return 0
	}
	byParsed := map[int64][]int{}
	for i, p := range parsed {
		byParsed[p] = append(byParsed[p], i)
	}
	truthSize := map[string]int{}
	for _, t := range truth {
		truthSize[t]++
	}
	correct := 0
	for _, lines := range byParsed {
		t := truth[lines[0]]
		same := true
		for _, i := range lines[1:] {
			if truth[i] != t {
				same = false
				break
			}
		}
		if same && truthSize[t] == len(lines) {
			correct += len(lines)
		}
	}
	return float64(correct) / float64(len(parsed))
}
