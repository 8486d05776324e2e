package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/event"
)

// Limits and defaults of the configuration.
const (
	MaxRules            = 1000
	MaxChecks           = 100
	maxConfigBytes      = 1 << 20
	DefaultHostLabel    = "instance"
	DefaultSeverity     = event.Medium
	DefaultStaleAfter   = 5 * time.Minute
	DefaultCheckEvery   = 30 * time.Second
	DefaultCheckTimeout = 10 * time.Second
	minCheckEvery       = time.Second
)

// Config is the metric-rules file: rules over ingested samples, PromQL
// checks against a Prometheus server, and what the store feeds the anomaly
// detector.
type Config struct {
	Rules  []Rule  `yaml:"rules"`
	Checks []Check `yaml:"checks"`
	// StaleAfter is how long a series may go without a sample before it is
	// forgotten and its firing alerts resolve (default 5m).
	StaleAfter Duration `yaml:"stale_after"`
	// Anomaly says which series feed the anomaly detector.
	Anomaly AnomalyConfig `yaml:"anomaly"`
}

// AnomalyConfig says which samples feed the anomaly detector: by default
// every series but counters (names ending in _total, _count, _sum,
// _bucket or _created, whose raw values only grow).
type AnomalyConfig struct {
	// Disabled stops feeding samples to the anomaly detector.
	Disabled bool `yaml:"disabled"`
	// Metrics, when set, is the only metric names that feed it.
	Metrics []string `yaml:"metrics"`
}

// Condition is a comparison of a value with a threshold.
type Condition struct {
	// Op is one of > >= < <= == != (empty: any value holds, for checks).
	Op string `yaml:"op"`
	// Threshold is the value compared with.
	Threshold *float64 `yaml:"threshold"`
}

// Holds reports whether v meets the condition (never for NaN).
func (c Condition) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if c.Op == "" {
		return true
	}
	t := *c.Threshold
	switch c.Op {
	case ">":
		return v > t
	case ">=":
		return v >= t
	case "<":
		return v < t
	case "<=":
		return v <= t
	case "==":
		return v == t
	case "!=":
		return v != t
	}
	return false
}

func (c Condition) validate() error {
	switch c.Op {
	case "":
		if c.Threshold != nil {
			return errors.New("threshold needs an op")
		}
		return nil
	case ">", ">=", "<", "<=", "==", "!=":
	default:
		return fmt.Errorf("op %q is not one of > >= < <= == !=", c.Op)
	}
	if c.Threshold == nil {
		return errors.New("op needs a threshold")
	}
	if math.IsNaN(*c.Threshold) {
		return errors.New("threshold is NaN")
	}
	return nil
}

// Alerting is what rules and checks share: how long the condition must
// hold, where the host is, and what the event says.
type Alerting struct {
	// For is how long the condition must hold before the alert fires
	// (default 0: at the first sample or run that meets it).
	For Duration `yaml:"for"`
	// HostLabel is the label that names the host (default instance, with
	// its port stripped; a series without it falls back to the host label,
	// as Telegraf sends).
	HostLabel string `yaml:"host_label"`
	// Severity is the firing event's severity (default medium).
	Severity string `yaml:"severity"`
	// Summary is the event's title; {{value}}, {{host}}, {{threshold}},
	// {{name}} and {{labels.NAME}} are replaced.
	Summary string `yaml:"summary"`

	severity event.Severity
}

func (a *Alerting) validate() error {
	if a.For < 0 {
		return errors.New("for must not be negative")
	}
	if a.HostLabel == "" {
		a.HostLabel = DefaultHostLabel
	}
	a.severity = DefaultSeverity
	if a.Severity != "" {
		sev, err := event.ParseSeverity(a.Severity)
		if err != nil {
			return fmt.Errorf("severity: %w", err)
		}
		a.severity = sev
	}
	if len(a.Summary) > 1000 {
		return errors.New("summary is longer than 1000 bytes")
	}
	return nil
}

// Rule is a condition on the samples of a metric, evaluated per series as
// samples arrive.
type Rule struct {
	// Name is the rule's name: the event's event_type.
	Name string `yaml:"name"`
	// Metric is the metric name the rule watches.
	Metric string `yaml:"metric"`
	// Labels are equality matchers the series' labels must meet.
	Labels    map[string]string `yaml:"labels"`
	Condition `yaml:",inline"`
	Alerting  `yaml:",inline"`
}

// Check is a PromQL instant query run on a schedule against a Prometheus
// server's HTTP API; each series of its result is an alert.
type Check struct {
	// Name is the check's name: the event's event_type.
	Name string `yaml:"name"`
	// Prometheus is the server's base URL (http://127.0.0.1:9090); the
	// check queries <Prometheus>/api/v1/query and nothing else.
	Prometheus string `yaml:"prometheus"`
	// Query is the PromQL expression (a vector or a scalar).
	Query string `yaml:"query"`
	// Every is the interval between runs (default 30s, at least 1s).
	Every Duration `yaml:"every"`
	// Timeout bounds one run (default 10s, at most Every).
	Timeout Duration `yaml:"timeout"`
	// Condition is met by a result series' value; without an op, every
	// series of the result holds (a query like up == 0 already filters).
	Condition `yaml:",inline"`
	Alerting  `yaml:",inline"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z_:][A-Za-z0-9_:.\-]{0,99}$`)

// Validate checks c and sets its defaults.
func (c *Config) Validate() error {
	if c.StaleAfter < 0 {
		return errors.New("stale_after must not be negative")
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = Duration(DefaultStaleAfter)
	}
	if len(c.Rules) > MaxRules {
		return fmt.Errorf("%d rules, more than %d", len(c.Rules), MaxRules)
	}
	if len(c.Checks) > MaxChecks {
		return fmt.Errorf("%d checks, more than %d", len(c.Checks), MaxChecks)
	}
	names := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if err := r.validate(); err != nil {
			return fmt.Errorf("rules[%d] (%s): %w", i, r.Name, err)
		}
		if names[r.Name] {
			return fmt.Errorf("rules[%d]: name %q is not unique", i, r.Name)
		}
		names[r.Name] = true
	}
	for i := range c.Checks {
		ch := &c.Checks[i]
		if err := ch.validate(); err != nil {
			return fmt.Errorf("checks[%d] (%s): %w", i, ch.Name, err)
		}
		if names[ch.Name] {
			return fmt.Errorf("checks[%d]: name %q is not unique", i, ch.Name)
		}
		names[ch.Name] = true
	}
	return nil
}

func (r *Rule) validate() error {
	if !nameRE.MatchString(r.Name) {
		return errors.New("name must be 1 to 100 letters, digits, _ : . or -, not starting with a digit")
	}
	if r.Metric == "" {
		return errors.New("metric is required")
	}
	if r.Op == "" {
		return errors.New("op is required")
	}
	if err := r.Condition.validate(); err != nil {
		return err
	}
	return r.Alerting.validate()
}

func (ch *Check) validate() error {
	if !nameRE.MatchString(ch.Name) {
		return errors.New("name must be 1 to 100 letters, digits, _ : . or -, not starting with a digit")
	}
	u, err := url.Parse(ch.Prometheus)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("prometheus %q is not an http(s) base URL without query or credentials", ch.Prometheus)
	}
	if ch.Query == "" || len(ch.Query) > 10000 {
		return errors.New("query must be 1 to 10000 bytes")
	}
	if ch.Every == 0 {
		ch.Every = Duration(DefaultCheckEvery)
	}
	if ch.Every < Duration(minCheckEvery) {
		return fmt.Errorf("every %s is below %s", time.Duration(ch.Every), minCheckEvery)
	}
	if ch.Timeout == 0 {
		ch.Timeout = Duration(min(DefaultCheckTimeout, time.Duration(ch.Every)))
	}
	if ch.Timeout < 0 || ch.Timeout > ch.Every {
		return errors.New("timeout must be above 0 and at most every")
	}
	if err := ch.Condition.validate(); err != nil {
		return err
	}
	return ch.Alerting.validate()
}

// ParseConfig reads a metric-rules YAML document (unknown keys are errors)
// and validates it.
func ParseConfig(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("metrics: config: %w", err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("metrics: config: larger than %d bytes", maxConfigBytes)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("metrics: config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("metrics: config: %w", err)
	}
	return &c, nil
}

// LoadConfig reads the metric-rules file at path.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator's configured file
	if err != nil {
		return nil, fmt.Errorf("metrics: config: %w", err)
	}
	defer func() { _ = f.Close() }() // read only
	return ParseConfig(f)
}

// Duration is a time.Duration written as in Go ("30s", "5m").
type Duration time.Duration

// UnmarshalYAML reads "30s"-style durations.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}
