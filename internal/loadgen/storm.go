package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StormOptions configure posting and scoring scenarios.
type StormOptions struct {
	URL   string // default http://127.0.0.1:3009
	Token string // an API key with admin (assets) and events:write and events:read
	// Wait bounds how long to wait for the server to catch up after
	// posting (default 2m).
	Wait time.Duration
	// Settle is how long the incidents must stay unchanged to count as
	// caught up (default 3s).
	Settle   time.Duration
	Progress io.Writer // nil: none
	Client   *http.Client
}

func (o *StormOptions) defaults() {
	if o.URL == "" {
		o.URL = "http://127.0.0.1:3009"
	}
	o.URL = strings.TrimRight(o.URL, "/")
	if o.Wait <= 0 {
		o.Wait = 2 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 3 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
}

// Posted is a scenario as posted: the event id the server gave each event
// (in the order of Scenario.Events).
type Posted struct {
	Scenario Scenario
	IDs      []int64
	Start    time.Time // the wall clock when posting began
}

// PostScenario loads the scenario's inventory through the assets API and
// posts its events, timestamped from base, in batches.
func PostScenario(ctx context.Context, o StormOptions, sc Scenario, base time.Time) (Posted, error) {
	o.defaults()
	p := Posted{Scenario: sc, Start: time.Now()}
	for _, a := range sc.Assets {
		body, _ := json.Marshal(a)
		if _, err := o.do(ctx, http.MethodPut, "/api/v1/assets/"+url.PathEscape(a.Host), body); err != nil {
			return p, fmt.Errorf("loadgen: asset %s: %w", a.Host, err)
		}
	}
	const batch = 100
	for start := 0; start < len(sc.Events); start += batch {
		evs := sc.Events[start:min(start+batch, len(sc.Events))]
		items := make([]map[string]any, len(evs))
		for i, e := range evs {
			item := map[string]any{"source": "storm-" + sc.Name, "event_type": e.EventType, "severity": e.Severity,
				"host": e.Host, "message": e.Message, "timestamp": base.Add(e.Offset).UTC().Format(time.RFC3339Nano)}
			if e.Service != "" {
				item["service"] = e.Service
			}
			items[i] = item
		}
		body, _ := json.Marshal(items)
		resp, err := o.do(ctx, http.MethodPost, "/api/v1/events/webhook", body)
		if err != nil {
			return p, fmt.Errorf("loadgen: post events: %w", err)
		}
		var ans struct {
			IDs []int64 `json:"ids"`
		}
		if err := json.Unmarshal(resp, &ans); err != nil {
			return p, fmt.Errorf("loadgen: post events: %w", err)
		}
		if len(ans.IDs) != len(evs) {
			return p, fmt.Errorf("loadgen: post events: %d ids for %d events", len(ans.IDs), len(evs))
		}
		p.IDs = append(p.IDs, ans.IDs...)
	}
	return p, nil
}

// errNotFound is a 404 of the server.
var errNotFound = errors.New("not found")

// do runs one request and returns the body of a 2xx answer.
func (o *StormOptions) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, o.URL+path, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+o.Token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := o.Client.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode/100 == 2:
			return b, nil
		case resp.StatusCode == http.StatusNotFound:
			return nil, errNotFound
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < 20:
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
}

// StormResult is the score of one scenario (or of all, Scenario "all").
type StormResult struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed,omitempty"`
	// Events is how many events were posted; Incidents how many distinct
	// incidents the server put them in; TruthIncidents how many the
	// ground truth has.
	Events         int `json:"events"`
	Incidents      int `json:"incidents"`
	TruthIncidents int `json:"truth_incidents"`
	// Compression is 1 - Incidents/Events.
	Compression float64 `json:"compression"`
	// Purity is the share of the truth incidents' events whose server
	// incident's majority truth is their own (an event in no incident
	// counts as wrong).
	Purity float64 `json:"purity"`
	// RootTop1 is the share of truth incidents whose server incident (the
	// one holding most of their events) has their root as root_event_id.
	RootTop1 float64 `json:"root_top1"`
	// Missing counts posted events the server did not return.
	Missing int `json:"missing,omitempty"`

	pure, truthEvents, rootsRight int
}

// Observed is what the server answered about a posted scenario: for
// each posted event id, the processed event it became (or was folded
// into) and that event's incident (0: none), and each incident's root.
type Observed struct {
	Processed map[int64]int64
	Incident  map[int64]int64
	Roots     map[int64]int64
}

// Score scores what the server made of a posted scenario.
func Score(p Posted, obs Observed) StormResult {
	sc := p.Scenario
	r := StormResult{Scenario: sc.Name, Seed: sc.Seed, Events: len(p.IDs)}
	incidents := map[int64]bool{}
	votes := map[int64]map[string]int{} // incident -> truth -> events
	for i, id := range p.IDs {
		if _, ok := obs.Processed[id]; !ok {
			r.Missing++
			continue
		}
		in := obs.Incident[id]
		if in == 0 {
			continue
		}
		incidents[in] = true
		if votes[in] == nil {
			votes[in] = map[string]int{}
		}
		votes[in][sc.Events[i].Truth]++
	}
	majority := map[int64]string{}
	for in, v := range votes {
		best, n := "", -1
		for _, t := range slices.Sorted(mapsKeys(v)) {
			if v[t] > n {
				best, n = t, v[t]
			}
		}
		majority[in] = best
	}
	r.Incidents = len(incidents)
	holds := map[string]map[int64]int{} // truth -> incident -> events
	for i, id := range p.IDs {
		t := sc.Events[i].Truth
		if t == "" {
			continue
		}
		r.truthEvents++
		in := obs.Incident[id]
		if in != 0 && majority[in] == t {
			r.pure++
		}
		if in != 0 {
			if holds[t] == nil {
				holds[t] = map[int64]int{}
			}
			holds[t][in]++
		}
	}
	truths := sc.Truths()
	r.TruthIncidents = len(truths)
	for t, rootIdx := range truths {
		var best int64
		n := 0
		for _, in := range slices.Sorted(mapsKeys(holds[t])) {
			if holds[t][in] > n {
				best, n = in, holds[t][in]
			}
		}
		if best != 0 && obs.Roots[best] != 0 && obs.Roots[best] == obs.Processed[p.IDs[rootIdx]] {
			r.rootsRight++
		}
	}
	r.finish()
	return r
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (r *StormResult) finish() {
	if r.Events > 0 {
		r.Compression = 1 - float64(r.Incidents)/float64(r.Events)
	}
	if r.truthEvents > 0 {
		r.Purity = float64(r.pure) / float64(r.truthEvents)
	}
	if r.TruthIncidents > 0 {
		r.RootTop1 = float64(r.rootsRight) / float64(r.TruthIncidents)
	}
}

// Overall adds up results into one (Scenario "all").
func Overall(rs []StormResult) StormResult {
	all := StormResult{Scenario: "all"}
	for _, r := range rs {
		all.Events += r.Events
		all.Incidents += r.Incidents
		all.TruthIncidents += r.TruthIncidents
		all.Missing += r.Missing
		all.pure += r.pure
		all.truthEvents += r.truthEvents
		all.rootsRight += r.rootsRight
	}
	all.finish()
	return all
}

// Observe waits until the server has processed the posted events and
// its incidents have settled, then reads what it made of them.
func Observe(ctx context.Context, o StormOptions, p Posted) (Observed, error) {
	o.defaults()
	deadline := time.Now().Add(o.Wait)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	obs := Observed{Processed: map[int64]int64{}, Incident: map[int64]int64{}, Roots: map[int64]int64{}}
	if len(p.IDs) == 0 {
		return obs, nil
	}
	// Processed: the last events posted are stored.
	for _, id := range p.IDs[max(0, len(p.IDs)-3):] {
		for {
			_, err := o.do(ctx, http.MethodGet, "/api/v1/events/"+strconv.FormatInt(id, 10), nil)
			if err == nil {
				break
			}
			if !errors.Is(err, errNotFound) {
				return obs, fmt.Errorf("loadgen: wait for event %d: %w", id, err)
			}
			if err := pause(ctx, 200*time.Millisecond); err != nil {
				return obs, fmt.Errorf("loadgen: event %d was not processed within %s", id, o.Wait)
			}
		}
	}
	// Settled: the incidents touched since the start stop changing.
	since := p.Start.Add(-time.Second).UTC().Format(time.RFC3339Nano)
	var last string
	stable := time.Now()
	for {
		b, err := o.do(ctx, http.MethodGet, "/api/v1/incidents?limit=1000&since="+url.QueryEscape(since), nil)
		if err != nil {
			return obs, fmt.Errorf("loadgen: read incidents: %w", err)
		}
		var list struct {
			Incidents []struct {
				ID          int64  `json:"id"`
				RootEventID *int64 `json:"root_event_id"`
				EventCount  int    `json:"event_count"`
			} `json:"incidents"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return obs, fmt.Errorf("loadgen: read incidents: %w", err)
		}
		var sig strings.Builder
		for _, in := range list.Incidents {
			root := int64(0)
			if in.RootEventID != nil {
				root = *in.RootEventID
			}
			fmt.Fprintf(&sig, "%d:%d:%d,", in.ID, in.EventCount, root)
		}
		if s := sig.String(); s != last {
			last, stable = s, time.Now()
		} else if time.Since(stable) >= o.Settle {
			break
		}
		if err := pause(ctx, 500*time.Millisecond); err != nil {
			return obs, fmt.Errorf("loadgen: incidents did not settle within %s", o.Wait)
		}
	}
	// Every posted event, a few at a time.
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, id := range p.IDs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, err := o.do(ctx, http.MethodGet, "/api/v1/events/"+strconv.FormatInt(id, 10), nil)
			var ev struct {
				ID         int64  `json:"id"`
				IncidentID *int64 `json:"incident_id"`
			}
			if err == nil {
				err = json.Unmarshal(b, &ev)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, errNotFound):
			case err != nil:
				if firstErr == nil {
					firstErr = err
				}
			default:
				obs.Processed[id] = ev.ID
				if ev.IncidentID != nil {
					obs.Incident[id] = *ev.IncidentID
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return obs, fmt.Errorf("loadgen: read events: %w", firstErr)
	}
	seen := map[int64]bool{}
	for _, in := range obs.Incident {
		if seen[in] {
			continue
		}
		seen[in] = true
		b, err := o.do(ctx, http.MethodGet, "/api/v1/incidents/"+strconv.FormatInt(in, 10), nil)
		if errors.Is(err, errNotFound) {
			continue // merged away meanwhile
		}
		if err != nil {
			return obs, fmt.Errorf("loadgen: read incident %d: %w", in, err)
		}
		var row struct {
			RootEventID *int64 `json:"root_event_id"`
		}
		if err := json.Unmarshal(b, &row); err != nil {
			return obs, fmt.Errorf("loadgen: read incident %d: %w", in, err)
		}
		if row.RootEventID != nil {
			obs.Roots[in] = *row.RootEventID
		}
	}
	return obs, nil
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RunStorms posts each scenario (generated from seed) to the server,
// each in an hour of event time of its own (the last ending a minute
// ago), waits for the server and scores it.
func RunStorms(ctx context.Context, o StormOptions, names []string, seed uint64) ([]StormResult, error) {
	o.defaults()
	var out []StormResult
	now := time.Now()
	for i, name := range names {
		sc, err := NewScenario(name, seed+uint64(i)) //nolint:gosec // i is small
		if err != nil {
			return out, err
		}
		base := now.Add(-time.Minute - sc.Span() - time.Duration(len(names)-1-i)*time.Hour)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "scenario %s (seed %d): %d assets, %d events\n", name, sc.Seed, len(sc.Assets), len(sc.Events))
		}
		p, err := PostScenario(ctx, o, sc, base)
		if err != nil {
			return out, err
		}
		obs, err := Observe(ctx, o, p)
		if err != nil {
			return out, err
		}
		out = append(out, Score(p, obs))
	}
	return out, nil
}

// ReportStorms prints the results and the overall figures.
func ReportStorms(w io.Writer, rs []StormResult) {
	fmt.Fprintf(w, "%-18s %7s %9s %6s %11s %7s %8s\n", "scenario", "events", "incidents", "truth", "compression", "purity", "top-1")
	for _, r := range append(slices.Clone(rs), Overall(rs)) {
		fmt.Fprintf(w, "%-18s %7d %9d %6d %10.2f%% %7.3f %8.3f\n", r.Scenario, r.Events, r.Incidents, r.TruthIncidents,
			100*r.Compression, r.Purity, r.RootTop1)
	}
}

// Targets of the storm evaluation (issue 7).
const (
	TargetCompression = 0.95
	TargetPurity      = 0.95
	TargetRootTop1    = 0.8
)
