package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/loadgen"
)

// defaultURL is the client's server when neither --url nor REFLEX_URL is
// set.
const defaultURL = "http://127.0.0.1:3009"

// clientFlags are the flags every client command shares. Their environment
// twins are read after parsing, not used as the flags' defaults: a default
// is printed by --help and by every usage error, and the token (or a URL
// with credentials) must never be.
type clientFlags struct {
	url, token string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "", "Event Processing Service URL (env REFLEX_URL; default "+defaultURL+")")
	fs.StringVar(&c.token, "token", "", "API key (env REFLEX_TOKEN)")
}

// resolve fills what the flags left empty from the environment, then the
// defaults. Call it after parsing.
func (c *clientFlags) resolve() {
	if c.url == "" {
		c.url = envOr("REFLEX_URL", defaultURL)
	}
	if c.token == "" {
		c.token = os.Getenv("REFLEX_TOKEN")
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// kvFlag collects repeated key=value flags.
type kvFlag map[string]any

func (m kvFlag) String() string { return "" }
func (m kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	var num json.Number
	if err := json.Unmarshal([]byte(v), &num); err == nil {
		m[k] = num
	} else {
		m[k] = v
	}
	return nil
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	file := fs.String("file", "", "post this JSON or NDJSON file as it is ('-' for standard input) instead of building an event from flags")
	p := map[string]any{}
	str := func(name, usage string) *string { return fs.String(name, "", usage) }
	source := str("source", "source system (default reflex-cli)")
	typ := str("type", "event type")
	sev := str("severity", "severity: critical, high, medium, low, info or a synonym")
	host := str("host", "host")
	svc := str("service", "service")
	msg := str("message", "message (required unless --file)")
	meta := kvFlag{}
	fs.Var(meta, "meta", "metadata key=value (repeatable; numbers stay numbers)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex send [flags]\n\nPosts one event (or a file of events) to POST /api/v1/events/webhook.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cf.resolve()
	var body []byte
	contentType := "application/json"
	switch {
	case *file == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		body = b
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		body = b
		if strings.HasSuffix(*file, ".ndjson") || strings.HasSuffix(*file, ".jsonl") {
			contentType = "application/x-ndjson"
		}
	default:
		if *msg == "" {
			return fmt.Errorf("send: --message is required")
		}
		p["source"] = "reflex-cli"
		for k, v := range map[string]string{"source": *source, "event_type": *typ, "severity": *sev, "host": *host, "service": *svc, "message": *msg} {
			if v != "" {
				p[k] = v
			}
		}
		p["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
		if len(meta) > 0 {
			p["metadata"] = meta
		}
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cf.url, "/")+"/api/v1/events/webhook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+cf.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "%s\n%s\n", resp.Status, bytes.TrimSpace(out))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("send: server answered %s", resp.Status)
	}
	return nil
}

func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	var o loadgen.Options
	fs.StringVar(&o.Mode, "mode", "webhook", "what to load: "+strings.Join(loadgen.Modes(), ", ")+" (a listener mode sends to --target and reads the adapter's counters from the server's /metrics)")
	fs.StringVar(&o.Target, "target", "", "listener address (host:port) of a listener mode, e.g. 127.0.0.1:5514")
	fs.Float64Var(&o.Rate, "rate", 0, "events per second (0: as fast as they are accepted)")
	fs.IntVar(&o.Batch, "batch", 100, "events per request")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "concurrent requests (listener modes: connections)")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "length of the timed phase")
	fs.IntVar(&o.Hosts, "hosts", 1000, "distinct hosts")
	fs.IntVar(&o.Sources, "sources", 20, "distinct source systems")
	fs.Float64Var(&o.Critical, "critical", 0.01, "fraction of critical events")
	fs.Float64Var(&o.DupRatio, "dup-ratio", 0.1, "fraction of events that repeat an earlier event of their host")
	fs.IntVar(&o.Backlog, "backlog", 0, "post this many low events as fast as accepted while posting critical events at --rate; the timed phase ends when the backlog is processed")
	fs.DurationVar(&o.Drain, "drain", 2*time.Minute, "how long to wait for processing (and the rules engine) to catch up afterwards")
	fs.IntVar(&o.Rules, "rules", 0, "before the load, create the trigger rules \"loadgen rule 0001\".. up to this many that the server lacks (mixed shapes; the token needs rules:write)")
	scenario := fs.String("scenario", "", "post the storm scenario NAME (its asset inventory, then its events) instead of load: "+strings.Join(loadgen.ScenarioNames(), ", "))
	seed := fs.Uint64("seed", 1, "with --scenario: the seed of host names, counts and timings")
	truth := fs.String("truth", "", "with --scenario: write the ground truth (each event's id, truth incident and root mark) to this JSON file")
	quiet := fs.Bool("quiet", false, "no progress lines")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex loadgen [flags]\n\nPosts webhook events to a running server, then prints accepted and processed\nevents/s and the intake-to-processed latency quantiles the server measured.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cf.resolve()
	if *scenario != "" {
		return runScenario(ctx, cf, *scenario, *seed, *truth, stdout)
	}
	o.URL, o.Token = cf.url, cf.token
	if !*quiet {
		o.Progress = stderr
	}
	if err := o.Validate(); err != nil {
		return err
	}
	res, err := loadgen.Run(ctx, o)
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.Report(stdout)
	return nil
}
