// Package config holds the configuration of reflex server: defaults, an
// optional YAML file, REFLEX_* environment variables and flags, applied in
// that order, and one Validate for the cross-field checks.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/calendar"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// Config is the whole configuration of reflex server. Its YAML keys are the
// flag names.
type Config struct {
	Services       string   `yaml:"services"`
	DataDir        string   `yaml:"data-dir"`
	EventsAddr     string   `yaml:"events-addr"`
	AutonomousAddr string   `yaml:"autonomous-addr"`
	DatabaseURL    string   `yaml:"database-url"`
	NATSURL        string   `yaml:"nats-url"`
	NATSListen     string   `yaml:"nats-listen"`
	NATSToken      string   `yaml:"nats-token"`
	NATSMaxBytes   ByteSize `yaml:"nats-max-bytes"`
	NATSStream     string   `yaml:"nats-stream"`
	NATSSubject    string   `yaml:"nats-subject-prefix"`
	// NATSPartitions is the partition count of the intake lanes (0: the
	// default of the mode, see Partitions).
	NATSPartitions int `yaml:"nats-partitions"`

	// The processed-event stream (see internal/processed).
	ProcessedStream     string   `yaml:"processed-stream"`
	ProcessedSubject    string   `yaml:"processed-subject-prefix"`
	ProcessedMaxBytes   ByteSize `yaml:"processed-max-bytes"`
	ProcessedPartitions int      `yaml:"processed-partitions"`

	// The stream of decision requests, from the rules to the Autonomous
	// Response Service (see bus.Decisions).
	DecisionsStream   string   `yaml:"decisions-stream"`
	DecisionsSubject  string   `yaml:"decisions-subject"`
	DecisionsMaxBytes ByteSize `yaml:"decisions-max-bytes"`
	DecisionsMaxAge   Duration `yaml:"decisions-max-age"`

	AdminToken     string   `yaml:"admin-token"`
	LogLevel       string   `yaml:"log-level"`
	LogFormat      string   `yaml:"log-format"`
	Retention      Duration `yaml:"retention"`
	MaxBodyBytes   ByteSize `yaml:"max-body-bytes"`
	AssetsFile     string   `yaml:"assets-file"`
	DedupWindow    Duration `yaml:"dedup-window"`
	CorrelationWin Duration `yaml:"correlation-window"`
	CausalWindow   Duration `yaml:"causal-window"`
	RateLimit      float64  `yaml:"rate-limit"`
	RateBurst      int      `yaml:"rate-burst"`
	Workers        int      `yaml:"workers"`
	PipelineDepth  int      `yaml:"pipeline-depth"`
	MaxInFlight    int      `yaml:"max-inflight"`
	NodeID         int      `yaml:"node-id"`
	ShutdownGrace  Duration `yaml:"shutdown-timeout"`
	PprofAddr      string   `yaml:"pprof-addr"`

	// Anomaly detection (internal/anomaly/monitor, docs/intelligence.md).
	AnomalyThreshold float64  `yaml:"anomaly-threshold"`
	AnomalyMaxSeries int      `yaml:"anomaly-max-series"`
	AnomalyInterval  Duration `yaml:"anomaly-interval"`

	// Log templates (internal/templates, docs/intelligence.md).
	Templates         bool     `yaml:"templates"`
	TemplatesLearning Duration `yaml:"templates-learning"`
	// Sequence and frequency patterns (internal/patterns).
	Sequences      bool     `yaml:"sequences"`
	SequenceWindow Duration `yaml:"sequence-window"`

	// Notifications (internal/notify, docs/notifications.md).
	NotificationsFile string `yaml:"notifications-file"`
	OutboundAllow     string `yaml:"outbound-allow"`

	// The context analyzer's calendar (internal/calendar,
	// docs/intelligence.md).
	BusinessHours string `yaml:"business-hours"`
	Timezone      string `yaml:"timezone"`
	Holidays      string `yaml:"holidays"`
	// Incidents (internal/incident, docs/intelligence.md).
	IncidentMinSeverity   string   `yaml:"incident-min-severity"`
	IncidentWindow        Duration `yaml:"incident-window"`
	IncidentGroupWait     Duration `yaml:"incident-group-wait"`
	IncidentGroupInterval Duration `yaml:"incident-group-interval"`
	IncidentResolveAfter  Duration `yaml:"incident-resolve-after"`
	IncidentGroupBy       string   `yaml:"incident-group-by"`

	// The Autonomous Response Service (internal/autonomous,
	// docs/autonomous.md).
	AutonomousPolicy string   `yaml:"autonomous-policy"`
	AuditKeyFile     string   `yaml:"audit-key-file"`
	AIURL            string   `yaml:"ai-url"`
	AIModel          string   `yaml:"ai-model"`
	AIKeyFile        string   `yaml:"ai-key-file"`
	AITimeout        Duration `yaml:"ai-timeout"`

	// The adapters (internal/ingest/...; docs/adapters.md). Every listener
	// is off while its address is empty.
	SyslogUDP         string   `yaml:"syslog-udp"`
	SyslogTCP         string   `yaml:"syslog-tcp"`
	SyslogTLS         string   `yaml:"syslog-tls"`
	SyslogTLSCert     string   `yaml:"syslog-tls-cert"`
	SyslogTLSKey      string   `yaml:"syslog-tls-key"`
	SyslogMaxMessage  ByteSize `yaml:"syslog-max-message-bytes"`
	SyslogMaxConns    int      `yaml:"syslog-max-connections"`
	SyslogIdleTimeout Duration `yaml:"syslog-idle-timeout"`
	SyslogUDPBuffer   ByteSize `yaml:"syslog-udp-buffer"`
	SyslogSource      string   `yaml:"syslog-source"`

	SNMPAddr   string `yaml:"snmp-addr"`
	SNMPConfig string `yaml:"snmp-config"`
	SNMPSource string `yaml:"snmp-source"`

	SMTPAddr       string   `yaml:"smtp-addr"`
	SMTPDomain     string   `yaml:"smtp-domain"`
	SMTPTLSCert    string   `yaml:"smtp-tls-cert"`
	SMTPTLSKey     string   `yaml:"smtp-tls-key"`
	SMTPMaxBytes   ByteSize `yaml:"smtp-max-bytes"`
	SMTPMaxConns   int      `yaml:"smtp-max-connections"`
	SMTPRecipients string   `yaml:"smtp-recipients"`
	SMTPAuthFile   string   `yaml:"smtp-auth-file"`
	SMTPRules      string   `yaml:"smtp-rules"`
	SMTPSource     string   `yaml:"smtp-source"`

	MetricRules     string `yaml:"metric-rules"`
	MetricMaxSeries int    `yaml:"metric-max-series"`

	DBChecks string `yaml:"db-checks"`
}

// Default returns the embedded defaults: both services, SQLite and an
// embedded NATS JetStream in ./reflex-data.
func Default() Config {
	return Config{
		Services:       "all",
		DataDir:        "./reflex-data",
		EventsAddr:     ":3009",
		AutonomousAddr: ":3011",
		NATSMaxBytes:   1 << 30,
		NATSStream:     "REFLEX_INTAKE",
		NATSSubject:    "reflex.intake",

		ProcessedStream:     "REFLEX_PROCESSED",
		ProcessedSubject:    "reflex.processed",
		ProcessedMaxBytes:   1 << 30,
		ProcessedPartitions: 0, // as the intake's

		DecisionsStream:   "REFLEX_DECISIONS",
		DecisionsSubject:  "reflex.decisions",
		DecisionsMaxBytes: 256 << 20,
		DecisionsMaxAge:   Duration(7 * 24 * time.Hour),

		LogLevel:       "info",
		LogFormat:      "text",
		Retention:      Duration(90 * 24 * time.Hour),
		MaxBodyBytes:   1 << 20,
		DedupWindow:    Duration(5 * time.Minute),
		CorrelationWin: Duration(5 * time.Minute),
		CausalWindow:   Duration(15 * time.Minute),
		RateLimit:      10000,
		RateBurst:      20000,
		MaxInFlight:    64,
		PipelineDepth:  1,
		ShutdownGrace:  Duration(30 * time.Second),

		AnomalyThreshold:      0.8,
		AnomalyMaxSeries:      10000,
		AnomalyInterval:       Duration(time.Minute),
		BusinessHours:         "Mon-Fri 09:00-18:00",
		Timezone:              "UTC",
		IncidentMinSeverity:   "medium",
		IncidentWindow:        Duration(15 * time.Minute),
		IncidentGroupWait:     Duration(30 * time.Second),
		IncidentGroupInterval: Duration(5 * time.Minute),
		IncidentResolveAfter:  Duration(time.Hour),
		IncidentGroupBy:       "event_type,template",
		AITimeout:             Duration(20 * time.Second),

		SyslogMaxMessage:  64 << 10,
		SyslogMaxConns:    2000,
		SyslogIdleTimeout: Duration(5 * time.Minute),
		SyslogSource:      "syslog",
		SNMPSource:        "snmp",
		SMTPDomain:        "reflex",
		SMTPMaxBytes:      10 << 20,
		SMTPMaxConns:      100,
		SMTPSource:        "email",
		MetricMaxSeries:   100000,

		Templates:         true,
		TemplatesLearning: 0, // every template new on a host is an event, rate limited
		Sequences:         true,
		SequenceWindow:    Duration(5 * time.Minute),
	}
}

// option binds one setting to its flag, environment variable and field.
type option struct {
	name  string
	usage string
	bind  func(c *Config) flag.Value
}

// EnvName is the environment twin of a flag: --data-dir is REFLEX_DATA_DIR.
func EnvName(flagName string) string {
	return "REFLEX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

var options = []option{
	{"services", "which services to run: all, events or autonomous", func(c *Config) flag.Value { return (*stringValue)(&c.Services) }},
	{"data-dir", "directory of the embedded SQLite database and NATS store", func(c *Config) flag.Value { return (*stringValue)(&c.DataDir) }},
	{"events-addr", "listen address of the Event Processing Service", func(c *Config) flag.Value { return (*stringValue)(&c.EventsAddr) }},
	{"autonomous-addr", "listen address of the Autonomous Response Service", func(c *Config) flag.Value { return (*stringValue)(&c.AutonomousAddr) }},
	{"database-url", "PostgreSQL URL (postgres://...); empty: SQLite in the data dir", func(c *Config) flag.Value { return (*stringValue)(&c.DatabaseURL) }},
	{"nats-url", "external NATS JetStream URL (nats://...); empty: embedded NATS in the data dir", func(c *Config) flag.Value { return (*stringValue)(&c.NATSURL) }},
	{"nats-listen", "embedded NATS: also listen for NATS clients on this address (empty: in-process only)", func(c *Config) flag.Value { return (*stringValue)(&c.NATSListen) }},
	{"nats-token", "token NATS clients must present to the embedded server's listener (required with nats-listen)", func(c *Config) flag.Value { return (*stringValue)(&c.NATSToken) }},
	{"nats-max-bytes", "size bound of the intake log (e.g. 1GiB); when full, intake answers 503", func(c *Config) flag.Value { return &c.NATSMaxBytes }},
	{"nats-stream", "JetStream stream of the intake log", func(c *Config) flag.Value { return (*stringValue)(&c.NATSStream) }},
	{"nats-subject-prefix", "subject prefix of the intake log's lanes (<prefix>.hi.<partition>, <prefix>.lo.<partition>)", func(c *Config) flag.Value { return (*stringValue)(&c.NATSSubject) }},
	{"nats-partitions", "partitions of each intake lane, hosts mapped to them by hash; 0: 1 on the embedded server (each message costs an fsync there), 16 on an external NATS", func(c *Config) flag.Value { return (*intValue)(&c.NATSPartitions) }},
	{"processed-stream", "JetStream stream of processed events, read by the components after the store", func(c *Config) flag.Value { return (*stringValue)(&c.ProcessedStream) }},
	{"processed-subject-prefix", "subject prefix of the processed stream (<prefix>.<partition>)", func(c *Config) flag.Value { return (*stringValue)(&c.ProcessedSubject) }},
	{"processed-max-bytes", "size bound of the processed stream (e.g. 1GiB); when a consumer's backlog fills it, the pipeline waits", func(c *Config) flag.Value { return &c.ProcessedMaxBytes }},
	{"processed-partitions", "partitions of the processed stream, hosts mapped to them by hash; 0: as nats-partitions", func(c *Config) flag.Value { return (*intValue)(&c.ProcessedPartitions) }},
	{"decisions-stream", "JetStream stream of decision requests for the Autonomous Response Service; requests wait here until it takes them", func(c *Config) flag.Value { return (*stringValue)(&c.DecisionsStream) }},
	{"decisions-subject", "subject of the decisions stream (one subject, no wildcards, outside the intake and processed subjects)", func(c *Config) flag.Value { return (*stringValue)(&c.DecisionsSubject) }},
	{"decisions-max-bytes", "size bound of the decisions stream (e.g. 256MiB); when full, the oldest requests are dropped, so the rules never wait for the Autonomous Response Service", func(c *Config) flag.Value { return &c.DecisionsMaxBytes }},
	{"decisions-max-age", "how long a decision request waits at most for the Autonomous Response Service before it is dropped (e.g. 7d, 12h)", func(c *Config) flag.Value { return &c.DecisionsMaxAge }},
	{"admin-token", "admin API token; empty: one is generated at first start and printed once", func(c *Config) flag.Value { return (*stringValue)(&c.AdminToken) }},
	{"log-level", "log level: debug, info, warn or error", func(c *Config) flag.Value { return (*stringValue)(&c.LogLevel) }},
	{"log-format", "log format: text or json", func(c *Config) flag.Value { return (*stringValue)(&c.LogFormat) }},
	{"retention", "how long events are kept (e.g. 90d, 36h)", func(c *Config) flag.Value { return &c.Retention }},
	{"max-body-bytes", "largest accepted request body (e.g. 1MiB); larger gets 413", func(c *Config) flag.Value { return &c.MaxBodyBytes }},
	{"assets-file", "YAML asset inventory loaded into the store at start", func(c *Config) flag.Value { return (*stringValue)(&c.AssetsFile) }},
	{"dedup-window", "window within which repeats of an event are folded into it", func(c *Config) flag.Value { return &c.DedupWindow }},
	{"correlation-window", "window within which events of one host share a correlation", func(c *Config) flag.Value { return &c.CorrelationWin }},
	{"causal-window", "how long a critical event stays open as a cause for its dependents", func(c *Config) flag.Value { return &c.CausalWindow }},
	{"rate-limit", "events per second accepted into processing per source system (0: no limit); critical events are never limited", func(c *Config) flag.Value { return (*floatValue)(&c.RateLimit) }},
	{"rate-burst", "burst of the per-source rate limit", func(c *Config) flag.Value { return (*intValue)(&c.RateBurst) }},
	{"workers", "pipeline partitions processed in parallel (0: number of CPUs)", func(c *Config) flag.Value { return (*intValue)(&c.Workers) }},
	{"pipeline-depth", "low-lane batches in flight past their stages (1: one at a time; more overlaps the stages with the store, at a cost to the critical lane's latency on few cores: docs/benchmarks.md)", func(c *Config) flag.Value { return (*intValue)(&c.PipelineDepth) }},
	{"max-inflight", "concurrent intake submissions; beyond it intake answers 429", func(c *Config) flag.Value { return (*intValue)(&c.MaxInFlight) }},
	{"node-id", "instance number 0-15, part of every event id; unique per instance sharing one database", func(c *Config) flag.Value { return (*intValue)(&c.NodeID) }},
	{"pprof-addr", "serve Go's net/http/pprof profiles on this address (empty: off; bind it to localhost)", func(c *Config) flag.Value { return (*stringValue)(&c.PprofAddr) }},
	{"templates", "mine the log text of events into templates (event_data.template) and raise new_log_pattern events (false: the stage is off)", func(c *Config) flag.Value { return (*boolValue)(&c.Templates) }},
	{"templates-learning", "how long after a host's first log template its new templates are learned without a new_log_pattern event (e.g. 1h, to quiet a new deployment; 0: none, every template new on a host is an event, rate limited)", func(c *Config) flag.Value { return &c.TemplatesLearning }},
	{"sequences", "learn sequence and frequency patterns (events.event_patterns) and link events that follow a sequence (false: off)", func(c *Config) flag.Value { return (*boolValue)(&c.Sequences) }},
	{"sequence-window", "how soon after an event another counts as following it, for learned sequence patterns", func(c *Config) flag.Value { return &c.SequenceWindow }},
	{"notifications-file", "notification policy (YAML, or JSON when named *.json) loaded at start; it replaces the stored one", func(c *Config) flag.Value { return (*stringValue)(&c.NotificationsFile) }},
	{"outbound-allow", "comma-separated CIDRs that notifications may reach although private, loopback or link-local (e.g. 10.0.0.0/8)", func(c *Config) flag.Value { return (*stringValue)(&c.OutboundAllow) }},
	{"anomaly-threshold", "anomaly score (0-1] at which a point of an event-rate or metadata series raises an anomaly event", func(c *Config) flag.Value { return (*floatValue)(&c.AnomalyThreshold) }},
	{"anomaly-max-series", "series the anomaly monitor tracks at most (event rates per host, service and type; metadata numbers per host and key); the least recently seen go first", func(c *Config) flag.Value { return (*intValue)(&c.AnomalyMaxSeries) }},
	{"anomaly-interval", "width of a point of the event-rate series (e.g. 1m)", func(c *Config) flag.Value { return &c.AnomalyInterval }},
	{"business-hours", "business hours of the context analyzer: comma-separated spans 'DAYS HH:MM-HH:MM' (e.g. 'Mon-Fri 09:00-18:00, Sat 10:00-14:00'); empty: none configured", func(c *Config) flag.Value { return (*stringValue)(&c.BusinessHours) }},
	{"timezone", "IANA time zone of business hours and holidays (e.g. Europe/Paris)", func(c *Config) flag.Value { return (*stringValue)(&c.Timezone) }},
	{"holidays", "comma-separated dates outside business hours all day (e.g. 2026-12-25,2027-01-01)", func(c *Config) flag.Value { return (*stringValue)(&c.Holidays) }},
	{"incident-min-severity", "severity floor of incidents: an event at or above it may open an incident and join one through the asset dependencies or its labels; below it, it only joins an incident of its own host", func(c *Config) flag.Value { return (*stringValue)(&c.IncidentMinSeverity) }},
	{"incident-window", "how far in event time an event may be from an incident's events to join it", func(c *Config) flag.Value { return &c.IncidentWindow }},
	{"incident-group-wait", "how long a new incident waits for company before it is announced (its root's parent links and correlation row written)", func(c *Config) flag.Value { return &c.IncidentGroupWait }},
	{"incident-group-interval", "how often an announced incident's parent links and correlation row are rewritten while it grows", func(c *Config) flag.Value { return &c.IncidentGroupInterval }},
	{"incident-resolve-after", "an incident without a new event for this long is resolved", func(c *Config) flag.Value { return &c.IncidentResolveAfter }},
	{"incident-group-by", "comma-separated labels that group events of hosts the asset inventory does not relate: event_type, service, source, template, tags", func(c *Config) flag.Value { return (*stringValue)(&c.IncidentGroupBy) }},
	{"autonomous-policy", "automation policy file (YAML, or JSON when named *.json) loaded at start; it replaces the stored one (docs/autonomous.md)", func(c *Config) flag.Value { return (*stringValue)(&c.AutonomousPolicy) }},
	{"audit-key-file", "file of the audit log's HMAC key (32 bytes, hex); empty: audit.key in the data dir, created at first start. Every instance writing one database needs the same key", func(c *Config) flag.Value { return (*stringValue)(&c.AuditKeyFile) }},
	{"ai-url", "base URL of an OpenAI-compatible chat-completions API (e.g. http://127.0.0.1:11434/v1 for Ollama) consulted by the decision engine; empty: the built-in engine alone", func(c *Config) flag.Value { return (*stringValue)(&c.AIURL) }},
	{"ai-model", "model name sent to --ai-url", func(c *Config) flag.Value { return (*stringValue)(&c.AIModel) }},
	{"ai-key-file", "file holding the API key for --ai-url (sent as a bearer token; never logged)", func(c *Config) flag.Value { return (*stringValue)(&c.AIKeyFile) }},
	{"ai-timeout", "how long the decision engine waits for --ai-url before the built-in decision stands", func(c *Config) flag.Value { return &c.AITimeout }},
	{"shutdown-timeout", "how long SIGTERM waits for intake to stop and the pipeline to drain", func(c *Config) flag.Value { return &c.ShutdownGrace }},

	{"syslog-udp", "syslog: listen for RFC 5424 / RFC 3164 datagrams on this UDP address (e.g. :5514; empty: off)", func(c *Config) flag.Value { return (*stringValue)(&c.SyslogUDP) }},
	{"syslog-tcp", "syslog: listen on this TCP address, octet-counted (RFC 6587) or newline framing detected per connection (empty: off)", func(c *Config) flag.Value { return (*stringValue)(&c.SyslogTCP) }},
	{"syslog-tls", "syslog: listen for TLS (RFC 5425) on this address; needs syslog-tls-cert and syslog-tls-key (empty: off)", func(c *Config) flag.Value { return (*stringValue)(&c.SyslogTLS) }},
	{"syslog-tls-cert", "syslog: PEM certificate (chain) of the TLS listener", func(c *Config) flag.Value { return (*stringValue)(&c.SyslogTLSCert) }},
	{"syslog-tls-key", "syslog: PEM private key of the TLS listener", func(c *Config) flag.Value { return (*stringValue)(&c.SyslogTLSKey) }},
	{"syslog-max-message-bytes", "syslog: largest message; longer frames are rejected and counted", func(c *Config) flag.Value { return &c.SyslogMaxMessage }},
	{"syslog-max-connections", "syslog: concurrent TCP and TLS connections at most; more are refused", func(c *Config) flag.Value { return (*intValue)(&c.SyslogMaxConns) }},
	{"syslog-idle-timeout", "syslog: a TCP connection that sends nothing for this long is closed", func(c *Config) flag.Value { return &c.SyslogIdleTimeout }},
	{"syslog-udp-buffer", "syslog: the UDP socket's receive buffer (e.g. 8MiB; 0: the kernel's default; the kernel caps it at net.core.rmem_max)", func(c *Config) flag.Value { return &c.SyslogUDPBuffer }},
	{"syslog-source", "syslog: source system of its events (raw_events.source_system)", func(c *Config) flag.Value { return (*stringValue)(&c.SyslogSource) }},
	{"snmp-addr", "SNMP traps: listen on this UDP address (e.g. :1162, above 1024 to run without root; empty: off)", func(c *Config) flag.Value { return (*stringValue)(&c.SNMPAddr) }},
	{"snmp-config", "SNMP traps: YAML of communities allowed, v3 users and OID names and severities (docs/adapters.md)", func(c *Config) flag.Value { return (*stringValue)(&c.SNMPConfig) }},
	{"snmp-source", "SNMP traps: source system of their events", func(c *Config) flag.Value { return (*stringValue)(&c.SNMPSource) }},
	{"smtp-addr", "email: listen for SMTP on this address (e.g. :2525; empty: off)", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPAddr) }},
	{"smtp-domain", "email: the domain the SMTP server greets with", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPDomain) }},
	{"smtp-tls-cert", "email: PEM certificate for STARTTLS (with smtp-tls-key; empty: no STARTTLS)", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPTLSCert) }},
	{"smtp-tls-key", "email: PEM private key for STARTTLS", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPTLSKey) }},
	{"smtp-max-bytes", "email: largest message; larger is refused with 552", func(c *Config) flag.Value { return &c.SMTPMaxBytes }},
	{"smtp-max-connections", "email: concurrent SMTP sessions at most", func(c *Config) flag.Value { return (*intValue)(&c.SMTPMaxConns) }},
	{"smtp-recipients", "email: comma-separated recipients accepted (addresses, or @domain for a whole domain; empty: any)", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPRecipients) }},
	{"smtp-auth-file", "email: file of 'user:bcrypt-hash' lines; when set, senders must AUTH PLAIN before MAIL (over STARTTLS, or from a loopback address)", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPAuthFile) }},
	{"smtp-rules", "email: YAML of the rules that extract severity, host and event type from subject and body (empty: the built-in defaults)", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPRules) }},
	{"smtp-source", "email: source system of its events", func(c *Config) flag.Value { return (*stringValue)(&c.SMTPSource) }},
	{"metric-rules", "metrics: YAML of metric rules over ingested samples and PromQL checks against a Prometheus server (docs/adapters.md)", func(c *Config) flag.Value { return (*stringValue)(&c.MetricRules) }},
	{"metric-max-series", "metrics: series the metric rules track at most; samples of new series beyond it are dropped and counted", func(c *Config) flag.Value { return (*intValue)(&c.MetricMaxSeries) }},
	{"db-checks", "database: YAML of scheduled checks against PostgreSQL and MySQL/MariaDB and LISTEN/NOTIFY channels (docs/adapters.md)", func(c *Config) flag.Value { return (*stringValue)(&c.DBChecks) }},
}

// commandOptions lists, for a command that uses only some settings, the
// options it takes: its --help shows those alone and it reads only their
// environment twins. A command not listed takes every option.
var commandOptions = map[string][]string{
	"migrate": {"data-dir", "database-url", "log-level", "log-format"},
	"audit":   {"data-dir", "database-url", "audit-key-file", "log-level", "log-format"},
}

// optionsOf returns the options command name takes.
func optionsOf(name string) []option {
	names, ok := commandOptions[name]
	if !ok {
		return options
	}
	var out []option
	for _, o := range options {
		if slices.Contains(names, o.name) {
			out = append(out, o)
		}
	}
	return out
}

// Flags describes how Load was called.
type Flags struct {
	// ConfigFile is the --config path (or REFLEX_CONFIG).
	ConfigFile string
	// CheckOnly is --check-config: validate and exit.
	CheckOnly bool
}

// Load builds the configuration from args (without the subcommand name)
// and the environment: defaults, then the YAML file named by --config or
// REFLEX_CONFIG, then REFLEX_* variables, then flags. It returns
// flag.ErrHelp after printing usage for -h. A command that uses only some
// settings (migrate) takes only their flags and environment variables; the
// others keep their defaults or the file's values.
func Load(name string, args []string, getenv func(string) string, usage io.Writer) (Config, Flags, error) {
	var fl Flags
	var scratch Config
	opts := optionsOf(name)
	_, subset := commandOptions[name]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&fl.ConfigFile, "config", "", "YAML configuration file (env REFLEX_CONFIG); its keys are the flag names")
	if !subset {
		fs.BoolVar(&fl.CheckOnly, "check-config", false, "validate the configuration and exit")
	}
	def := Default()
	for _, o := range opts {
		v := o.bind(&scratch)
		_ = v.Set(o.bind(&def).String())
		fs.Var(v, o.name, fmt.Sprintf("%s (env %s)", o.usage, EnvName(o.name)))
	}
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: reflex %s [flags]\n\nEvery flag has an environment twin; precedence: defaults, --config file, environment, flags.\n\nFlags:\n", name)
		fs.PrintDefaults()
		if name == "server" {
			fmt.Fprint(usage, adapterExamples)
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, fl, err
	}
	if fs.NArg() > 0 {
		return Config{}, fl, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	if fl.ConfigFile == "" {
		fl.ConfigFile = getenv("REFLEX_CONFIG")
	}
	cfg := Default()
	if fl.ConfigFile != "" {
		data, err := os.ReadFile(fl.ConfigFile)
		if err != nil {
			return Config{}, fl, fmt.Errorf("config: %w", err)
		}
		if err := Parse(data, &cfg); err != nil {
			return Config{}, fl, fmt.Errorf("config: %s: %w", fl.ConfigFile, err)
		}
	}
	for _, o := range opts {
		if s := getenv(EnvName(o.name)); s != "" {
			if err := o.bind(&cfg).Set(s); err != nil {
				return Config{}, fl, fmt.Errorf("config: %s: %w", EnvName(o.name), err)
			}
		}
	}
	var ferr error
	fs.Visit(func(f *flag.Flag) {
		for _, o := range opts {
			if o.name == f.Name && ferr == nil {
				ferr = o.bind(&cfg).Set(f.Value.String())
			}
		}
	})
	if ferr != nil {
		return Config{}, fl, fmt.Errorf("config: %w", ferr)
	}
	return cfg, fl, cfg.Validate()
}

// Calendar is the business-hours calendar of BusinessHours, Timezone and
// Holidays.
func (c Config) Calendar() (*calendar.Calendar, error) {
	return calendar.Parse(c.BusinessHours, c.Timezone, strings.Split(c.Holidays, ","))
}

// Parse decodes a YAML configuration over c. Unknown keys are errors.
func Parse(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Validate checks every field and the relations between them.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !slices.Contains([]string{"all", "events", "autonomous"}, c.Services) {
		bad("services", "%q is not all, events or autonomous", c.Services)
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if c.AIURL != "" {
		if u, err := url.Parse(c.AIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("ai-url", "%q is not an http:// or https:// URL", c.AIURL)
		}
		if c.AIModel == "" {
			bad("ai-model", "required with ai-url")
		}
	}
	if c.AIModel != "" && c.AIURL == "" {
		bad("ai-url", "required with ai-model")
	}
	if c.AIKeyFile != "" && c.AIURL == "" {
		bad("ai-url", "required with ai-key-file")
	}
	if c.AITimeout <= 0 || time.Duration(c.AITimeout) > 10*time.Minute {
		bad("ai-timeout", "must be above 0 and at most 10m")
	}
	for _, a := range []struct{ name, addr string }{{"events-addr", c.EventsAddr}, {"autonomous-addr", c.AutonomousAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad(a.name, "%q is not host:port: %v", a.addr, err)
		}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("database-url", "must start with postgres:// or postgresql://")
	}
	if _, err := c.Calendar(); err != nil {
		field := "business-hours"
		switch {
		case strings.Contains(err.Error(), "time zone"):
			field = "timezone"
		case strings.Contains(err.Error(), "holiday"):
			field = "holidays"
		}
		bad(field, "%s", strings.TrimPrefix(err.Error(), "calendar: "))
	}
	if _, err := outbound.ParseAllow(c.OutboundAllow); err != nil {
		bad("outbound-allow", "%s", strings.TrimPrefix(err.Error(), "outbound: "))
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			bad("pprof-addr", "%q is not host:port: %v", c.PprofAddr, err)
		}
	}
	if c.AnomalyThreshold <= 0 || c.AnomalyThreshold > 1 {
		bad("anomaly-threshold", "%v must be in (0, 1]", c.AnomalyThreshold)
	}
	if c.AnomalyMaxSeries < 1 || c.AnomalyMaxSeries > 10_000_000 {
		bad("anomaly-max-series", "%d must be between 1 and 10000000", c.AnomalyMaxSeries)
	}
	if time.Duration(c.AnomalyInterval) < time.Millisecond {
		bad("anomaly-interval", "%v is below the minimum of 1ms", time.Duration(c.AnomalyInterval))
	}
	if c.NATSListen != "" && len(c.NATSToken) < 16 {
		bad("nats-token", "a token of at least 16 characters is required with nats-listen: nothing listens without authentication")
	}
	if c.NATSURL != "" && c.NATSListen != "" {
		bad("nats-listen", "only applies to the embedded NATS server, but nats-url is set")
	}
	if c.NATSMaxBytes < 1<<20 {
		bad("nats-max-bytes", "%d is below the minimum of 1MiB", c.NATSMaxBytes)
	}
	if c.NATSStream == "" || strings.ContainsAny(c.NATSStream, " .*>") {
		bad("nats-stream", "%q must be non-empty without spaces, '.', '*' or '>'", c.NATSStream)
	}
	if c.NATSSubject == "" || strings.ContainsAny(c.NATSSubject, " *>") {
		bad("nats-subject-prefix", "%q must be non-empty without spaces, '*' or '>'", c.NATSSubject)
	}
	if c.ProcessedStream == "" || strings.ContainsAny(c.ProcessedStream, " .*>") || c.ProcessedStream == c.NATSStream {
		bad("processed-stream", "%q must be non-empty without spaces, '.', '*' or '>', and differ from nats-stream", c.ProcessedStream)
	}
	if c.ProcessedSubject == "" || strings.ContainsAny(c.ProcessedSubject, " *>") || c.ProcessedSubject == c.NATSSubject {
		bad("processed-subject-prefix", "%q must be non-empty without spaces, '*' or '>', and differ from nats-subject-prefix", c.ProcessedSubject)
	}
	if c.ProcessedMaxBytes < 1<<20 {
		bad("processed-max-bytes", "%d is below the minimum of 1MiB", c.ProcessedMaxBytes)
	}
	if c.ProcessedPartitions < 0 || c.ProcessedPartitions > 1024 {
		bad("processed-partitions", "%d is not between 0 (as nats-partitions) and 1024", c.ProcessedPartitions)
	}
	if c.DecisionsStream == "" || strings.ContainsAny(c.DecisionsStream, " .*>") ||
		c.DecisionsStream == c.NATSStream || c.DecisionsStream == c.ProcessedStream {
		bad("decisions-stream", "%q must be non-empty without spaces, '.', '*' or '>', and differ from nats-stream and processed-stream", c.DecisionsStream)
	}
	// Streams may not share subjects: the decisions subject stays outside
	// the intake's and the processed stream's.
	within := func(prefix string) bool {
		return c.DecisionsSubject == prefix || strings.HasPrefix(c.DecisionsSubject, prefix+".")
	}
	if c.DecisionsSubject == "" || strings.ContainsAny(c.DecisionsSubject, " *>") ||
		within(c.NATSSubject) || within(c.ProcessedSubject) {
		bad("decisions-subject", "%q must be non-empty without spaces, '*' or '>', and outside nats-subject-prefix and processed-subject-prefix (neither one of them nor starting with one and a '.')", c.DecisionsSubject)
	}
	if c.DecisionsMaxBytes < 1<<20 {
		bad("decisions-max-bytes", "%d is below the minimum of 1MiB", c.DecisionsMaxBytes)
	}
	if c.DecisionsMaxAge < Duration(time.Minute) {
		bad("decisions-max-age", "%s is shorter than the minimum of 1m", c.DecisionsMaxAge)
	}
	if c.NATSPartitions < 0 || c.NATSPartitions > 1024 {
		bad("nats-partitions", "%d is not between 0 (the default of the mode) and 1024", c.NATSPartitions)
	}
	if strings.IndexFunc(c.AdminToken, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		bad("admin-token", "must not contain spaces or control characters")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log-level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q is not text or json", c.LogFormat)
	}
	if c.Retention < Duration(24*time.Hour) {
		bad("retention", "%s is shorter than the minimum of 1d (partitions are daily)", c.Retention)
	}
	if c.MaxBodyBytes < 1024 {
		bad("max-body-bytes", "%d is below the minimum of 1KiB", c.MaxBodyBytes)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"dedup-window", c.DedupWindow}, {"correlation-window", c.CorrelationWin}, {"causal-window", c.CausalWindow}, {"sequence-window", c.SequenceWindow}, {"shutdown-timeout", c.ShutdownGrace},
		{"incident-window", c.IncidentWindow}, {"incident-group-wait", c.IncidentGroupWait}, {"incident-group-interval", c.IncidentGroupInterval},
		{"incident-resolve-after", c.IncidentResolveAfter}} {
		if d.v <= 0 {
			bad(d.name, "must be positive")
		}
	}
	if c.TemplatesLearning < 0 {
		bad("templates-learning", "must not be negative")
	}
	if c.RateLimit < 0 {
		bad("rate-limit", "must not be negative")
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		bad("rate-burst", "must be at least 1 when rate-limit is set")
	}
	if c.Workers < 0 || c.Workers > 256 {
		bad("workers", "%d is not between 0 and 256", c.Workers)
	}
	if c.PipelineDepth < 1 || c.PipelineDepth > 8 {
		bad("pipeline-depth", "%d is not between 1 and 8", c.PipelineDepth)
	}
	if c.MaxInFlight < 1 {
		bad("max-inflight", "must be at least 1")
	}
	if !event.Severity(c.IncidentMinSeverity).Valid() {
		bad("incident-min-severity", "%q is not critical, high, medium, low or info", c.IncidentMinSeverity)
	}
	for _, l := range c.IncidentLabels() {
		if !slices.Contains([]string{"event_type", "service", "source", "template", "tags"}, l) {
			bad("incident-group-by", "unknown label %q: want event_type, service, source, template or tags", l)
		}
	}
	if c.NodeID < 0 || c.NodeID > 15 {
		bad("node-id", "%d is not between 0 and 15", c.NodeID)
	}
	c.validateAdapters(bad)
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// IncidentLabels is IncidentGroupBy as a list.
func (c Config) IncidentLabels() []string {
	out := []string{}
	for _, l := range strings.Split(c.IncidentGroupBy, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// RunsEvents reports whether the Event Processing Service runs.
func (c Config) RunsEvents() bool { return c.Services == "all" || c.Services == "events" }

// Partitions is the partition count of the intake lanes: NATSPartitions
// when set, else 1 on the embedded server and event.DefaultPartitions on an
// external NATS. On the embedded server every intake message costs one
// fsync, and an envelope holds the events of one partition, so partitions
// there divide the events per fsync (docs/benchmarks.md); on an external
// cluster they are what later lets partitions move between instances.
func (c Config) Partitions() int {
	switch {
	case c.NATSPartitions > 0:
		return c.NATSPartitions
	case c.NATSURL == "":
		return 1
	}
	return event.DefaultPartitions
}

// ProcessedPartitionCount is the partition count of the processed stream:
// ProcessedPartitions when set, else Partitions.
func (c Config) ProcessedPartitionCount() int {
	if c.ProcessedPartitions > 0 {
		return c.ProcessedPartitions
	}
	return c.Partitions()
}

// RunsAutonomous reports whether the Autonomous Response Service runs.
func (c Config) RunsAutonomous() bool { return c.Services == "all" || c.Services == "autonomous" }

// Redacted returns a copy safe to log: secrets replaced.
func (c Config) Redacted() Config {
	if c.AdminToken != "" {
		c.AdminToken = "<redacted>"
	}
	if c.NATSToken != "" {
		c.NATSToken = "<redacted>"
	}
	c.DatabaseURL = redactURL(c.DatabaseURL)
	c.NATSURL = redactURL(c.NATSURL)
	return c
}

// redactURL hides the credentials of a URL: its user info (user:password,
// or a NATS token) and any password or token query parameter (libpq reads
// ?password=). What cannot be parsed is hidden whole.
func redactURL(u string) string {
	if u == "" {
		return ""
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "<redacted>"
	}
	if pu.User != nil {
		pu.User = url.User("<redacted>")
	}
	if pu.RawQuery != "" {
		q := pu.Query()
		for k := range q {
			switch strings.ToLower(k) {
			case "password", "sslpassword", "token", "pass", "auth_token":
				q.Set(k, "<redacted>")
			}
		}
		pu.RawQuery = q.Encode()
	}
	// Keep the placeholder readable rather than percent-encoded.
	return strings.NewReplacer("%3Credacted%3E", "<redacted>").Replace(pu.String())
}

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

type intValue int

func (i *intValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not an integer", v)
	}
	*i = intValue(n)
	return nil
}
func (i *intValue) String() string { return strconv.Itoa(int(*i)) }

type boolValue bool

func (b *boolValue) Set(v string) error {
	n, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not true or false", v)
	}
	*b = boolValue(n)
	return nil
}
func (b *boolValue) String() string   { return strconv.FormatBool(bool(*b)) }
func (b *boolValue) IsBoolFlag() bool { return true }

type floatValue float64

func (f *floatValue) Set(v string) error {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", v)
	}
	*f = floatValue(n)
	return nil
}
func (f *floatValue) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }
