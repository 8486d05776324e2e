// Package loadgen is reflex's load generator: it posts webhook events to a
// running Event Processing Service at a set rate (or as fast as they are
// accepted) and reports accepted and processed events per second and the
// intake-to-processed latency the server measured.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a run. Zero values take the defaults noted.
type Options struct {
	// Mode is what is loaded: webhook (the default) posts batches to
	// URL; a listener mode (Modes: syslog-tcp, syslog-udp, snmp, smtp ...)
	// sends messages to the adapter's listener at Target, Concurrency
	// connections at Rate in all, and reads the adapter's counters from
	// URL's /metrics.
	Mode   string
	Target string // listener address of a listener mode (host:port)

	URL         string        // base URL of the Event Processing Service; default http://127.0.0.1:3009
	Token       string        // API key with events:write
	Rate        float64       // events per second; 0: as fast as accepted
	Batch       int           // events per request; default 100
	Concurrency int           // concurrent requests; default 8
	Duration    time.Duration // default 60s
	Hosts       int           // distinct hosts; default 1000
	Sources     int           // distinct source systems; default 20
	Critical    float64       // fraction of events that are critical; default 0.01
	DupRatio    float64       // fraction of events repeating an earlier one of their host; default 0.1
	// Backlog posts this many low-severity events as fast as they are
	// accepted while critical events are posted at Rate, and ends the timed
	// phase once the server has processed the backlog (or at Duration): it
	// measures the critical lane while the low lane works off a backlog.
	Backlog int
	// Drain is how long to wait after the timed phase for processing (and
	// the rules engine) to catch up; default 2m.
	Drain time.Duration
	// Rules, above 0, makes sure the first Rules trigger rules of
	// Rules(n, 1) exist on the server (creating those missing) before the
	// load starts, so that a run measures the pipeline and the rules
	// engine with them loaded. The token needs rules:write.
	Rules    int
	Progress io.Writer // progress lines; nil for none
	// OnAccepted, if set, is called with the ids of every accepted batch
	// (concurrently, from the posting goroutines).
	OnAccepted func(ids []int64)
	Client     *http.Client
}

func (o *Options) defaults() {
	if o.URL == "" {
		o.URL = "http://127.0.0.1:3009"
	}
	o.URL = strings.TrimRight(o.URL, "/")
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Duration <= 0 {
		o.Duration = 60 * time.Second
	}
	if o.Hosts <= 0 {
		o.Hosts = 1000
	}
	if o.Sources <= 0 {
		o.Sources = 20
	}
	if o.Critical == 0 {
		o.Critical = 0.01
	}
	if o.DupRatio == 0 {
		o.DupRatio = 0.1
	}
	if o.Drain <= 0 {
		o.Drain = 2 * time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	}
}

// Quantiles are latency quantiles in seconds.
type Quantiles struct {
	Count         float64
	P50, P95, P99 float64
}

// Result is what a run measured.
type Result struct {
	Elapsed       time.Duration // timed phase
	Sent          int64         // events posted
	Accepted      int64         // events answered 202
	Rejected      int64         // events in 4xx/5xx answers other than 429/503
	Throttled     int64         // events answered 429 or 503 (retried)
	Errors        int64         // requests that failed outright
	Dropped       int64         // listener modes: messages the adapter dropped for want of room
	AcceptedRate  float64       // accepted events/s over the timed phase
	Processed     float64       // events the server processed during the run
	ProcessedRate float64       // processed events/s over the timed phase
	DrainTime     time.Duration // after the timed phase, until processed caught up
	Caught        bool          // processed caught up with accepted within Drain
	PeakBacklog   float64       // Backlog mode: the most events accepted but not yet processed
	Latency       map[string]Quantiles
	// The rules engine, when the server runs it: records it evaluated
	// during the run, per second over the timed phase and drain, whether
	// it caught up with the processed events within Drain, and its
	// firings and suppressed firings.
	RulesRecords, RulesRate float64
	RulesCaught             bool
	Firings, Suppressed     float64
	RulesCreated            int // rules created before the run (Options.Rules)
}

// Run posts events until the duration ends or ctx is done, then waits for
// the server to process what it accepted.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	if o.Mode != "" && o.Mode != "webhook" {
		dial, ok := listenerModes[o.Mode]
		if !ok {
			return Result{}, fmt.Errorf("loadgen: unknown mode %q: want one of %s", o.Mode, strings.Join(Modes(), ", "))
		}
		return runListener(ctx, o, dial)
	}
	var res Result
	if o.Rules > 0 {
		n, err := ensureRules(ctx, o)
		if err != nil {
			return res, err
		}
		res.RulesCreated = n
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%d trigger rules in place (%d created)\n", o.Rules, n)
		}
	}
	metricsURL := o.URL + "/metrics"
	before, err := scrape(ctx, o.Client, metricsURL)
	if err != nil {
		return Result{}, err
	}
	g := &generator{o: o, seq: new(atomic.Int64), c: &counters{}}

	start := time.Now()
	phase, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	done := make(chan struct{})
	go g.progress(phase, start, before, metricsURL, done) //nolint:gosec // scrapes with their own short deadline
	if o.Backlog > 0 {
		// Critical events at Rate from the start, while a backlog of low
		// events is posted as fast as it is accepted; the phase ends when
		// the server has worked the backlog off.
		var crit sync.WaitGroup
		crit.Add(1)
		// Critical events go one per request, as an alerting tool sends them.
		cg := &generator{o: o, seq: g.seq, c: g.c}
		cg.o.Batch, cg.o.Concurrency = 1, 2
		go func() { defer crit.Done(); cg.post(phase, -1, o.Rate, "critical") }()
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "posting a backlog of %d low events while posting critical events at %.0f/s\n", o.Backlog, o.Rate)
		}
		g.post(phase, o.Backlog, 0, "low")
		for phase.Err() == nil {
			s, err := scrape(phase, o.Client, metricsURL)
			if err == nil {
				backlog := float64(g.c.accepted.Load()) - (s.processed - before.processed)
				res.PeakBacklog = max(res.PeakBacklog, backlog)
				if backlog <= 0 {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		crit.Wait()
	} else {
		g.post(phase, -1, o.Rate, "")
	}
	res.Elapsed = time.Since(start)
	<-done
	g.c.fill(&res)

	// Wait for the server to catch up with what it accepted.
	drainStart := time.Now()
	deadline := drainStart.Add(o.Drain)
	var after snapshot
	for {
		after, err = scrape(ctx, o.Client, metricsURL)
		if err != nil {
			return res, err
		}
		processed := after.processed - before.processed
		res.Caught = processed >= float64(res.Accepted)
		res.RulesCaught = res.Caught && (!after.hasRules || after.rules-before.rules >= processed)
		if res.Caught && res.RulesCaught {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.DrainTime = time.Since(drainStart)
	res.finish(before, after)
	return res, nil
}

// generator makes and posts events.
type generator struct {
	o   Options
	seq *atomic.Int64
	c   *counters
}

type counters struct {
	sent, accepted, rejected, throttled, errors atomic.Int64
}

func (c *counters) fill(r *Result) {
	r.Sent, r.Accepted, r.Rejected = c.sent.Load(), c.accepted.Load(), c.rejected.Load()
	r.Throttled, r.Errors = c.throttled.Load(), c.errors.Load()
}

func (r *Result) finish(before, after snapshot) {
	secs := r.Elapsed.Seconds()
	r.AcceptedRate = float64(r.Accepted) / secs
	r.Processed = after.processed - before.processed
	r.ProcessedRate = r.Processed / (secs + r.DrainTime.Seconds())
	if after.hasRules {
		r.RulesRecords = after.rules - before.rules
		r.RulesRate = r.RulesRecords / (secs + r.DrainTime.Seconds())
		r.Firings, r.Suppressed = after.fired-before.fired, after.suppressed-before.suppressed
	}
	r.Latency = map[string]Quantiles{}
	for lane, h := range after.latency {
		d := h.sub(before.latency[lane])
		if d.count == 0 {
			continue
		}
		r.Latency[lane] = Quantiles{Count: d.count, P50: d.quantile(0.5), P95: d.quantile(0.95), P99: d.quantile(0.99)}
	}
}

// post sends events with Concurrency workers: total events (or until ctx
// ends when total < 0), at rate events/s (0: unpaced), of severity sev
// ("" for the mix).
func (g *generator) post(ctx context.Context, total int, rate float64, sev string) {
	var remaining atomic.Int64
	remaining.Store(int64(total))
	var wg sync.WaitGroup
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(g.o.Batch*g.o.Concurrency) / rate)
	}
	for w := 0; w < g.o.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG( //nolint:gosec // load, not secrets
				uint64(w), uint64(time.Now().UnixNano())))
			next := time.Now().Add(time.Duration(w) * interval / time.Duration(g.o.Concurrency))
			var buf bytes.Buffer
			for ctx.Err() == nil {
				n := g.o.Batch
				if total >= 0 {
					left := remaining.Add(-int64(n))
					if left+int64(n) <= 0 {
						return
					}
					if left < 0 {
						n += int(left)
					}
				}
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					}
					next = next.Add(interval)
				}
				buf.Reset()
				g.body(&buf, rng, n, sev)
				g.send(ctx, buf.Bytes(), n)
			}
		}(w)
	}
	wg.Wait()
}

// send posts one batch, retrying on 429 and 503 as a well-behaved client
// would (after Retry-After, capped at 1s).
func (g *generator) send(ctx context.Context, body []byte, n int) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.o.URL+"/api/v1/events/webhook", bytes.NewReader(body))
		if err != nil {
			g.c.errors.Add(1)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.o.Token)
		g.c.sent.Add(int64(n))
		resp, err := g.o.Client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				g.c.errors.Add(1)
				// The server is down or restarting: do not spin.
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
			return
		}
		var out struct {
			Accepted int     `json:"accepted"`
			IDs      []int64 `json:"ids"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			g.c.accepted.Add(int64(out.Accepted))
			if g.o.OnAccepted != nil {
				g.o.OnAccepted(out.IDs)
			}
			g.c.rejected.Add(int64(n - out.Accepted))
			return
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			g.c.throttled.Add(int64(n))
			wait := time.Duration(math.Min(float64(time.Second), float64(10*time.Millisecond)*math.Pow(2, float64(attempt))))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		default:
			g.c.rejected.Add(int64(n))
			return
		}
	}
}

var (
	services   = []string{"nginx", "postgres", "redis", "kafka", "api", "worker", "haproxy", "etcd"}
	eventTypes = []string{"threshold_breach", "service_down", "error_rate", "latency", "disk_full", "oom_kill"}
	lowSevs    = []string{"info", "low", "medium", "warning"}
)

// body writes a JSON array of n events.
func (g *generator) body(buf *bytes.Buffer, rng *rand.Rand, n int, sev string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	buf.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		host := rng.IntN(g.o.Hosts)
		s := sev
		switch {
		case s == "low":
			s = lowSevs[rng.IntN(len(lowSevs))]
		case s != "":
		case rng.Float64() < g.o.Critical:
			s = "critical"
		case rng.Float64() < 0.1:
			s = "high"
		default:
			s = lowSevs[rng.IntN(len(lowSevs))]
		}
		// Digits are masked by the fingerprint, so a unique event needs a
		// unique word: the sequence number spelled in letters. A repeat
		// keeps everything the fingerprint reads (source, host, service,
		// type, severity, masked title) the same for its host, so that it
		// is deduplicated; the severity it keeps is the host's own (or the
		// one the caller fixed).
		word := "repeat"
		source := rng.IntN(g.o.Sources)
		if rng.Float64() >= g.o.DupRatio {
			word = letters(g.seq.Add(1))
		} else {
			source = host % g.o.Sources
			if sev == "" || sev == "low" {
				s = lowSevs[host%len(lowSevs)]
			}
		}
		fmt.Fprintf(buf, `{"source":"loadgen-%02d","event_type":%q,"severity":%q,"host":"host-%04d","service":%q,"message":"%s on host-%04d: value %d above threshold (%s)","timestamp":%q,"metadata":{"value":%d,"threshold":90,"region":"eu-west-%d"}}`,
			source, eventTypes[host%len(eventTypes)], s, host, services[host%len(services)],
			eventTypes[host%len(eventTypes)], host, 90+rng.IntN(10), word, now, 90+rng.IntN(10), host%3)
	}
	buf.WriteByte(']')
}

// letters spells n in base 26 with the letters a-z.
func letters(n int64) string {
	var b [16]byte
	i := len(b)
	for {
		i--
		b[i] = byte('a' + n%26)
		n /= 26
		if n == 0 {
			return string(b[i:])
		}
	}
}

// progress prints a line every 5s until ctx ends, then closes done.
func (g *generator) progress(ctx context.Context, start time.Time, before snapshot, metricsURL string, done chan<- struct{}) {
	defer close(done)
	if g.o.Progress == nil {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		secs := time.Since(start).Seconds()
		acc := g.c.accepted.Load()
		line := fmt.Sprintf("t=%3.0fs accepted=%d (%.0f/s) throttled=%d rejected=%d errors=%d",
			secs, acc, float64(acc)/secs, g.c.throttled.Load(), g.c.rejected.Load(), g.c.errors.Load())
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if s, err := scrape(sctx, g.o.Client, metricsURL); err == nil {
			p := s.processed - before.processed
			line += fmt.Sprintf(" processed=%.0f (%.0f/s) backlog=%.0f", p, p/secs, float64(acc)-p)
		}
		cancel()
		fmt.Fprintln(g.o.Progress, line)
	}
}

// Report writes a human summary of r.
func (r Result) Report(w io.Writer) {
	fmt.Fprintf(w, "timed phase: %s, sent %d, accepted %d (%.0f events/s), throttled %d, rejected %d, errors %d\n",
		r.Elapsed.Round(time.Millisecond), r.Sent, r.Accepted, r.AcceptedRate, r.Throttled, r.Rejected, r.Errors)
	if r.Dropped > 0 || (r.Sent > 0 && r.Accepted < r.Sent) {
		fmt.Fprintf(w, "lost: %d of %d sent (%.2f%%), of which the adapter counted %d dropped\n",
			r.Sent-r.Accepted, r.Sent, 100*float64(r.Sent-r.Accepted)/float64(r.Sent), r.Dropped)
	}
	state := "caught up"
	if !r.Caught {
		state = "did NOT catch up"
	}
	fmt.Fprintf(w, "processed %.0f events (%.0f events/s over timed phase + drain); %s %s after the timed phase\n",
		r.Processed, r.ProcessedRate, state, r.DrainTime.Round(time.Millisecond))
	if r.PeakBacklog > 0 {
		fmt.Fprintf(w, "peak backlog (accepted, not yet processed): %.0f events\n", r.PeakBacklog)
	}
	if r.RulesRecords > 0 || r.Firings > 0 {
		state := "caught up"
		if !r.RulesCaught {
			state = "did NOT catch up"
		}
		fmt.Fprintf(w, "rules engine: evaluated %.0f records (%.0f/s over timed phase + drain), %s; %.0f firings, %.0f suppressed\n",
			r.RulesRecords, r.RulesRate, state, r.Firings, r.Suppressed)
	}
	for _, lane := range []string{"hi", "lo"} {
		q, ok := r.Latency[lane]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "intake-to-processed latency, lane %s (%0.f events): p50 %s p95 %s p99 %s\n", lane, q.Count,
			secs(q.P50), secs(q.P95), secs(q.P99))
	}
}

func secs(s float64) string {
	if math.IsNaN(s) {
		return "n/a"
	}
	return time.Duration(s * float64(time.Second)).Round(100 * time.Microsecond).String()
}

var errNoToken = errors.New("loadgen: a token with events:write is required")

// Validate checks the options before a run.
func (o Options) Validate() error {
	if o.Token == "" && (o.Mode == "" || o.Mode == "webhook") {
		return errNoToken
	}
	if o.Rate < 0 || o.Critical < 0 || o.Critical > 1 || o.DupRatio < 0 || o.DupRatio > 1 {
		return fmt.Errorf("loadgen: rate must be >= 0, critical and dup-ratio in [0,1]")
	}
	if o.Rules < 0 || o.Rules > 100000 {
		return fmt.Errorf("loadgen: rules must be in [0, 100000]")
	}
	return nil
}
