package dbcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/event"
)

// Drivers.
const (
	DriverPostgres = "postgres"
	DriverMySQL    = "mysql"
)

// Defaults of the configuration.
const (
	DefaultInterval       = 60 * time.Second
	DefaultTimeout        = 10 * time.Second
	DefaultSeverity       = event.Medium
	DefaultNotifySeverity = event.Medium
	DefaultMaxConcurrent  = 4
	DefaultMaxConns       = 2
	// MinInterval is the shortest interval a check may run at.
	MinInterval = 100 * time.Millisecond
	// maxConfigBytes bounds the YAML file.
	maxConfigBytes = 1 << 20
	// maxDSNBytes bounds a DSN file.
	maxDSNBytes = 8 << 10
)

// Config is the file named by --db-checks:
//
//	max_concurrent: 4        # checks running at once, over all databases
//	databases:
//	  - name: main-pg        # the events' source_system
//	    driver: postgres     # or mysql (MySQL and MariaDB)
//	    dsn_file: /etc/reflex/pg.dsn   # or dsn_env: PG_DSN
//	    host: db-01          # the events' source_host (default: the DSN's host)
//	    max_connections: 2   # the pool's size
//	checks:
//	  - name: orders_backlog
//	    database: main-pg
//	    query: SELECT count(*) FROM orders WHERE state = 'new'
//	    condition: value > 100
//	    interval: 60s
//	    timeout: 10s
//	    severity: high
//	    summary: "{{.Value}} new orders waiting on {{.Database}}"
//	  - name: pg_locks
//	    database: main-pg
//	    builtin: blocked_locks
//	    threshold: 1
//	listen:
//	  - database: main-pg    # PostgreSQL only
//	    channel: reflex_alerts
//	    severity: medium
//	    event_type: app_alert
//
// Unknown keys are errors. A DSN is read when the file is loaded; it is
// never logged, and errors that could quote it are redacted.
type Config struct {
	MaxConcurrent int        `yaml:"max_concurrent"`
	Databases     []Database `yaml:"databases"`
	Checks        []Check    `yaml:"checks"`
	Listen        []Listen   `yaml:"listen"`
}

// Database is a server to check, and how to reach it.
type Database struct {
	Name     string `yaml:"name"`
	Driver   string `yaml:"driver"`
	DSNFile  string `yaml:"dsn_file"`
	DSNEnv   string `yaml:"dsn_env"`
	Host     string `yaml:"host"`
	MaxConns int    `yaml:"max_connections"`

	dsn      string
	redactor redactor
}

// Check is a scheduled query and its condition, or a built-in check.
type Check struct {
	Name      string        `yaml:"name"`
	Database  string        `yaml:"database"`
	Query     string        `yaml:"query"`
	Condition string        `yaml:"condition"`
	Builtin   string        `yaml:"builtin"`
	Threshold *float64      `yaml:"threshold"`
	Interval  time.Duration `yaml:"interval"`
	Timeout   time.Duration `yaml:"timeout"`
	Severity  string        `yaml:"severity"`
	Summary   string        `yaml:"summary"`

	db       *Database
	cond     Condition
	builtin  *builtin
	severity event.Severity
	summary  *template.Template
}

// Listen is a PostgreSQL channel whose notifications become events.
type Listen struct {
	Database  string `yaml:"database"`
	Channel   string `yaml:"channel"`
	Severity  string `yaml:"severity"`
	EventType string `yaml:"event_type"`

	db       *Database
	severity event.Severity
}

// ErrConfig is wrapped by every error of Load and Parse.
var ErrConfig = errors.New("dbcheck: config")

// names are database, check and event type names: they label metrics and
// become event types.
var names = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// defaultSummary is the title of a check's event when it has no summary.
const defaultSummary = `{{.Check}} on {{.Database}}: {{.Condition}}{{if .HasValue}} (value {{.Value}}){{end}}`

// Load reads the file at path and the DSNs it names (see Parse).
func Load(path string) (*Config, error) {
	f, err := os.Open(path) //nolint:gosec // the operator's own configuration file
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrConfig, path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, maxConfigBytes)
	}
	c, err := Parse(data, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a configuration, applies its defaults and
// reads each database's DSN (from its dsn_file, or from the environment
// through getenv).
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.validate(getenv); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) validate(getenv func(string) string) error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrConfig, where, fmt.Sprintf(format, args...)))
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxConcurrent < 0 {
		bad("max_concurrent", "must be above 0")
	}
	if len(c.Checks) == 0 && len(c.Listen) == 0 {
		bad("checks", "no checks and no listen channels")
	}
	dbs := make(map[string]*Database, len(c.Databases))
	for i := range c.Databases {
		d := &c.Databases[i]
		where := fmt.Sprintf("databases[%d]", i)
		if !names.MatchString(d.Name) {
			bad(where+".name", "%q: want 1 to 63 letters, digits, '_', '.' or '-'", d.Name)
		} else if dbs[d.Name] != nil {
			bad(where+".name", "%q is named twice", d.Name)
		} else {
			dbs[d.Name] = d
			where = "database " + d.Name
		}
		if err := d.resolve(getenv); err != nil {
			bad(where, "%v", err)
		}
	}
	checks := make(map[string]bool, len(c.Checks))
	for i := range c.Checks {
		k := &c.Checks[i]
		where := fmt.Sprintf("checks[%d]", i)
		if !names.MatchString(k.Name) {
			bad(where+".name", "%q: want 1 to 63 letters, digits, '_', '.' or '-'", k.Name)
		} else if checks[k.Name] {
			bad(where+".name", "%q is named twice", k.Name)
		} else {
			checks[k.Name] = true
			where = "check " + k.Name
		}
		if err := k.validate(dbs); err != nil {
			bad(where, "%v", err)
		}
	}
	seen := make(map[string]bool, len(c.Listen))
	for i := range c.Listen {
		l := &c.Listen[i]
		where := fmt.Sprintf("listen[%d]", i)
		if err := l.validate(dbs); err != nil {
			bad(where, "%v", err)
		}
		if k := l.Database + "\x00" + l.Channel; seen[k] {
			bad(where, "channel %q of %s is listed twice", l.Channel, l.Database)
		} else {
			seen[k] = true
		}
	}
	return errors.Join(errs...)
}

// resolve checks the database's fields and reads its DSN.
func (d *Database) resolve(getenv func(string) string) error {
	if d.Driver != DriverPostgres && d.Driver != DriverMySQL {
		return fmt.Errorf("driver %q: want postgres or mysql", d.Driver)
	}
	if d.MaxConns == 0 {
		d.MaxConns = DefaultMaxConns
	}
	if d.MaxConns < 0 || d.MaxConns > 100 {
		return fmt.Errorf("max_connections %d: want 1 to 100", d.MaxConns)
	}
	switch {
	case (d.DSNFile == "") == (d.DSNEnv == ""):
		return errors.New("give one of dsn_file and dsn_env")
	case d.DSNFile != "":
		b, err := readSmall(d.DSNFile, maxDSNBytes)
		if err != nil {
			return fmt.Errorf("dsn_file: %w", err)
		}
		d.dsn = strings.TrimSpace(string(b))
		if d.dsn == "" {
			return fmt.Errorf("dsn_file %s is empty", d.DSNFile)
		}
	default:
		d.dsn = strings.TrimSpace(getenv(d.DSNEnv))
		if d.dsn == "" {
			return fmt.Errorf("dsn_env: %s is not set or empty", d.DSNEnv)
		}
	}
	host, password, err := parseDSN(d.Driver, d.dsn)
	d.redactor = newRedactor(d.dsn, password)
	if err != nil {
		return d.redactor.err(fmt.Errorf("dsn: %w", err))
	}
	if d.Host == "" {
		d.Host = host
	}
	d.Host = strings.ToLower(strings.TrimSpace(d.Host))
	return nil
}

// parseDSN returns the host and the password of dsn.
func parseDSN(driver, dsn string) (host, password string, err error) {
	if driver == DriverMySQL {
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", "", err
		}
		host = mc.Addr
		if h, _, err := net.SplitHostPort(mc.Addr); err == nil {
			host = h
		}
		if mc.Net == "unix" {
			host = "localhost"
		}
		return host, mc.Passwd, nil
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return "", "", err
	}
	host = pc.ConnConfig.Host
	if strings.HasPrefix(host, "/") {
		host = "localhost" // a Unix socket
	}
	return host, pc.ConnConfig.Password, nil
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // a path of the operator's configuration
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

func (k *Check) validate(dbs map[string]*Database) error {
	k.db = dbs[k.Database]
	if k.db == nil {
		return fmt.Errorf("database %q is not in databases", k.Database)
	}
	if k.Interval == 0 {
		k.Interval = DefaultInterval
	}
	if k.Timeout == 0 {
		k.Timeout = DefaultTimeout
	}
	if k.Interval < MinInterval {
		return fmt.Errorf("interval %s: at least %s", k.Interval, MinInterval)
	}
	if k.Timeout < 0 {
		return fmt.Errorf("timeout %s: must be above 0", k.Timeout)
	}
	k.severity = DefaultSeverity
	if k.Severity != "" {
		s, err := event.ParseSeverity(k.Severity)
		if err != nil {
			return fmt.Errorf("severity %q: want critical, high, medium, low or info", k.Severity)
		}
		k.severity = s
	}
	if k.Threshold != nil && (math.IsNaN(*k.Threshold) || math.IsInf(*k.Threshold, 0)) {
		return errors.New("threshold must be a finite number")
	}
	cond := k.Condition
	switch {
	case k.Builtin != "" && (k.Query != "" || k.Condition != ""):
		return errors.New("a builtin check takes threshold, not query or condition")
	case k.Builtin != "":
		b := findBuiltin(k.db.Driver, k.Builtin)
		if b == nil {
			return fmt.Errorf("builtin %q: no such check for %s (%s)", k.Builtin, k.db.Driver, strings.Join(builtinNames(k.db.Driver), ", "))
		}
		k.builtin = b
		t := b.threshold
		if k.Threshold != nil {
			t = *k.Threshold
		}
		k.Threshold = &t
		cond = b.condition(t)
	case k.Query == "" || k.Condition == "":
		return errors.New("give query and condition, or builtin")
	case k.Threshold != nil:
		return errors.New("threshold is for builtin checks; write it in the condition")
	}
	c, err := ParseCondition(cond)
	if err != nil {
		return err
	}
	k.cond = c
	src := k.Summary
	if src == "" {
		src = defaultSummary
	}
	tmpl, err := template.New(k.Name).Option("missingkey=error").Parse(src)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := tmpl.Execute(io.Discard, summaryData{Check: k.Name, Database: k.Database, Condition: c.String(), Status: string(event.AlertFiring)}); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	k.summary = tmpl
	return nil
}

func (l *Listen) validate(dbs map[string]*Database) error {
	l.db = dbs[l.Database]
	switch {
	case l.db == nil:
		return fmt.Errorf("database %q is not in databases", l.Database)
	case l.db.Driver != DriverPostgres:
		return fmt.Errorf("database %s: LISTEN is PostgreSQL's; %s is %s", l.Database, l.Database, l.db.Driver)
	case l.Channel == "" || len(l.Channel) > 63:
		return fmt.Errorf("channel %q: want 1 to 63 bytes", l.Channel)
	}
	if l.EventType == "" {
		l.EventType = l.Channel
	}
	if len(l.EventType) > 100 {
		return fmt.Errorf("event_type: longer than 100 bytes")
	}
	l.severity = DefaultNotifySeverity
	if l.Severity != "" {
		s, err := event.ParseSeverity(l.Severity)
		if err != nil {
			return fmt.Errorf("severity %q: want critical, high, medium, low or info", l.Severity)
		}
		l.severity = s
	}
	return nil
}

// summaryData is what a check's summary template sees.
type summaryData struct {
	Check     string
	Database  string
	Host      string
	Condition string
	Status    string // firing or resolved
	HasValue  bool
	Value     float64
	Rows      int
	Threshold float64
}
