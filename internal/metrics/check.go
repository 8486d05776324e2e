package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// Limits of a check's query.
const (
	maxCheckResponse = 16 << 20
	// MaxCheckSeries bounds the series one check tracks; a result with
	// more is cut (and logged).
	MaxCheckSeries = 10000
)

// HTTPDoer runs HTTP requests (*http.Client).
type HTTPDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// newHTTPClient answers the checks' client: it follows no redirect, so
// that a check reaches only its configured server.
func newHTTPClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checker runs one check.
type checker struct {
	s      *Store
	c      *Check
	target string

	mu     sync.Mutex // one run at a time
	states map[string]*checkSeries
	failed bool // the last run failed (logged once per change)
}

type checkSeries struct {
	labels Labels
	st     alertState
	value  float64
}

func newChecker(s *Store, c *Check) *checker {
	return &checker{s: s, c: c, target: strings.TrimRight(c.Prometheus, "/") + "/api/v1/query", states: map[string]*checkSeries{}}
}

// loop runs the check at once and then every Every until ctx ends.
func (k *checker) loop(ctx context.Context) {
	t := time.NewTicker(time.Duration(k.c.Every))
	defer t.Stop()
	for {
		k.run(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// run queries once and steps every series' alert.
func (k *checker) run(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(k.c.Timeout))
	defer cancel()
	result, err := k.query(ctx)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // stopping
	}
	if err != nil {
		k.s.met.checkRuns.WithLabelValues(k.c.Name, "error").Inc()
		if !k.failed {
			k.s.log.Warn("metric check failed", "check", k.c.Name, "err", err)
		}
		k.failed = true
		return // alerts keep their state while the server cannot answer
	}
	k.s.met.checkRuns.WithLabelValues(k.c.Name, "ok").Inc()
	if k.failed {
		k.s.log.Info("metric check recovered", "check", k.c.Name)
	}
	k.failed = false
	k.apply(result, k.s.o.Now())
}

// sample is one series of a query's result.
type sample struct {
	labels Labels
	value  float64
}

// apply steps the alerts by one run's result.
func (k *checker) apply(result []sample, now time.Time) {
	seen := make(map[string]bool, len(result))
	cut := false
	for _, r := range result {
		key := r.labels.key()
		cs := k.states[key]
		if cs == nil {
			if len(k.states) >= MaxCheckSeries {
				cut = true
				continue
			}
			cs = &checkSeries{labels: r.labels}
			k.states[key] = cs
		}
		seen[key] = true
		cs.value = r.value
		k.step(cs, k.c.Holds(r.value), now, ReasonCleared)
	}
	if cut {
		k.s.log.Warn("metric check result cut", "check", k.c.Name, "max_series", MaxCheckSeries)
	}
	for key, cs := range k.states {
		if !seen[key] {
			k.step(cs, false, now, ReasonStopped)
		}
		if cs.st.idle() {
			delete(k.states, key)
		}
	}
}

func (k *checker) step(cs *checkSeries, holds bool, now time.Time, reason string) {
	fire, resolve := cs.st.step(holds, now, time.Duration(k.c.For))
	if !fire && !resolve {
		return
	}
	status := event.AlertFiring
	if resolve {
		status = event.AlertResolved
	}
	n := notice(KindCheck, k.c.Name, &k.c.Alerting, k.c.Condition, cs.labels, status, &cs.st, now, cs.value)
	n.Query = k.c.Query
	if resolve {
		n.Reason = reason
	}
	k.s.send.enqueue(n)
}

// queryResponse is the Prometheus HTTP API's answer.
type queryResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs the instant query.
func (k *checker) query(ctx context.Context) ([]sample, error) {
	form := url.Values{"query": {k.c.Query}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := k.s.o.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckResponse+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxCheckResponse {
		return nil, fmt.Errorf("response larger than %d bytes", maxCheckResponse)
	}
	return parseQueryResponse(resp.StatusCode, body)
}

// parseQueryResponse reads an /api/v1/query answer: a vector (one sample
// per series) or a scalar (one sample without labels).
func parseQueryResponse(code int, body []byte) ([]sample, error) {
	var qr queryResponse
	if err := json.Unmarshal(body, &qr); err != nil {
		if code != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d", code)
		}
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if qr.Status != "success" {
		return nil, fmt.Errorf("HTTP %d: %s: %s", code, qr.ErrorType, clip(qr.Error, 300))
	}
	switch qr.Data.ResultType {
	case "vector":
		var vs []vectorSample
		if err := json.Unmarshal(qr.Data.Result, &vs); err != nil {
			return nil, fmt.Errorf("decode vector: %w", err)
		}
		out := make([]sample, 0, len(vs))
		for _, v := range vs {
			f, err := sampleValue(v.Value)
			if err != nil {
				return nil, err
			}
			ls := make(Labels, 0, len(v.Metric))
			for n, val := range v.Metric {
				ls = append(ls, Label{n, val})
			}
			ls.Sort()
			out = append(out, sample{labels: ls, value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(qr.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		f, err := sampleValue(v)
		if err != nil {
			return nil, err
		}
		return []sample{{labels: Labels{}, value: f}}, nil
	}
	return nil, fmt.Errorf("result type %q is not a vector or a scalar", clip(qr.Data.ResultType, 20))
}

func sampleValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, errors.New("sample value is not a string")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", clip(s, 30), err)
	}
	return f, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
