// Package nab loads data laid out like the Numenta Anomaly Benchmark
// (data/<category>/<name>.csv, labels/combined_windows.json,
// config/profiles.json), runs a detector over every file and scores it the
// way NAB does: probation, scaled sigmoid, first detection per window,
// false positives weighted by their distance after a window, a threshold
// per profile chosen to maximize the corpus score, and the normalized
// score between the null and the perfect detector.
package nab

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// File is one labelled time series of the corpus.
type File struct {
	// Category is the directory under data/ (realTweets, ...).
	Category string
	// Name is the file name without its directory (Twitter_volume_AAPL.csv).
	Name string
	// Times and Values are the rows, in file order.
	Times  []time.Time
	Values []float64
	// Windows are the anomaly windows as inclusive row ranges.
	Windows []Window
}

// Key is the file's key in combined_windows.json: category/name.
func (f *File) Key() string { return f.Category + "/" + f.Name }

// Probation is the number of leading rows that are not scored:
// min(floor(0.15*N), 750).
func (f *File) Probation() int { return min(len(f.Values)*15/100, 750) }

// Window is an anomaly window as an inclusive range of row indices.
type Window struct {
	Start, End int
}

// Profile is one of NAB's scoring profiles: the weights of a true
// positive, a false positive and a false negative.
type Profile struct {
	Name string
	TP   float64
	FP   float64
	FN   float64
}

// Corpus is the files and profiles of a directory laid out like NAB.
type Corpus struct {
	Files    []*File
	Profiles []Profile
}

// Categories answers the categories of the corpus, sorted.
func (c *Corpus) Categories() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range c.Files {
		if !seen[f.Category] {
			seen[f.Category] = true
			out = append(out, f.Category)
		}
	}
	sort.Strings(out)
	return out
}

// Rows answers the number of rows of the corpus.
func (c *Corpus) Rows() int {
	n := 0
	for _, f := range c.Files {
		n += len(f.Values)
	}
	return n
}

// timeLayouts are the timestamp forms of NAB's data and labels.
var timeLayouts = []string{"2006-01-02 15:04:05.000000", "2006-01-02 15:04:05", time.RFC3339Nano}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad timestamp %q", s)
}

// Load reads a directory laid out like NAB: every data/<category>/*.csv
// (columns timestamp,value), its windows from labels/combined_windows.json
// (a file missing there has none) and the profiles from
// config/profiles.json. Files are sorted by category and name.
func Load(dir string) (*Corpus, error) {
	profiles, err := loadProfiles(filepath.Join(dir, "config", "profiles.json"))
	if err != nil {
		return nil, err
	}
	windows := map[string][][2]string{}
	b, err := os.ReadFile(filepath.Join(dir, "labels", "combined_windows.json")) //nolint:gosec // G304: the benchmark directory the operator named
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	if err := json.Unmarshal(b, &windows); err != nil {
		return nil, fmt.Errorf("nab: combined_windows.json: %w", err)
	}
	cats, err := os.ReadDir(filepath.Join(dir, "data"))
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	c := &Corpus{Profiles: profiles}
	for _, cat := range cats {
		if st, err := os.Stat(filepath.Join(dir, "data", cat.Name())); err != nil || !st.IsDir() {
			continue // not a category (a symbolic link to one is)
		}
		names, err := filepath.Glob(filepath.Join(dir, "data", cat.Name(), "*.csv"))
		if err != nil {
			return nil, fmt.Errorf("nab: %w", err)
		}
		sort.Strings(names)
		for _, path := range names {
			f, err := loadFile(path)
			if err != nil {
				return nil, err
			}
			f.Category, f.Name = cat.Name(), filepath.Base(path)
			for _, w := range windows[f.Key()] {
				win, err := f.window(w)
				if err != nil {
					return nil, fmt.Errorf("nab: %s: %w", f.Key(), err)
				}
				if win.End >= win.Start {
					f.Windows = append(f.Windows, win)
				}
			}
			c.Files = append(c.Files, f)
		}
	}
	if len(c.Files) == 0 {
		return nil, fmt.Errorf("nab: no data/<category>/*.csv under %s", dir)
	}
	return c, nil
}

// window maps a [start, end] timestamp pair to the rows inside it.
func (f *File) window(w [2]string) (Window, error) {
	start, err := parseTime(w[0])
	if err != nil {
		return Window{}, err
	}
	end, err := parseTime(w[1])
	if err != nil {
		return Window{}, err
	}
	lo := sort.Search(len(f.Times), func(i int) bool { return !f.Times[i].Before(start) })
	hi := sort.Search(len(f.Times), func(i int) bool { return f.Times[i].After(end) }) - 1
	return Window{Start: lo, End: hi}, nil
}

func loadFile(path string) (*File, error) {
	fh, err := os.Open(path) //nolint:gosec // G304: the benchmark directory the operator named
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	defer func() { _ = fh.Close() }() // read only
	rd := csv.NewReader(fh)
	header, err := rd.Read()
	if err != nil {
		return nil, fmt.Errorf("nab: %s: %w", path, err)
	}
	if len(header) < 2 || header[0] != "timestamp" || header[1] != "value" {
		return nil, fmt.Errorf("nab: %s: want the columns timestamp,value, have %v", path, header)
	}
	f := &File{}
	for line := 2; ; line++ {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("nab: %s: %w", path, err)
		}
		t, err := parseTime(rec[0])
		if err != nil {
			return nil, fmt.Errorf("nab: %s:%d: %w", path, line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("nab: %s:%d: bad value %q", path, line, rec[1])
		}
		f.Times = append(f.Times, t)
		f.Values = append(f.Values, v)
	}
	return f, nil
}

func loadProfiles(path string) ([]Profile, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the benchmark directory the operator named
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	var raw map[string]struct {
		CostMatrix struct {
			TP float64 `json:"tpWeight"`
			FN float64 `json:"fnWeight"`
			FP float64 `json:"fpWeight"`
		} `json:"CostMatrix"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("nab: profiles.json: %w", err)
	}
	var out []Profile
	for name, p := range raw {
		out = append(out, Profile{Name: name, TP: p.CostMatrix.TP, FP: p.CostMatrix.FP, FN: p.CostMatrix.FN})
	}
	if len(out) == 0 {
		return nil, errors.New("nab: profiles.json: no profiles")
	}
	// standard first, then by name, as NAB's scoreboard lists them.
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == "standard") != (out[j].Name == "standard") {
			return out[i].Name == "standard"
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
