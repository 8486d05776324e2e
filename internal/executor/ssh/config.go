package ssh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

// Type is the executor type this package runs ({"type": "ssh", ...}).
const Type = "ssh"

// Defaults and bounds of a Config.
const (
	DefaultPort           = 22
	DefaultTimeout        = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	// MaxTimeout is the longest timeout a definition may set.
	MaxTimeout = time.Hour
	// MaxConnectTimeout is the longest connect_timeout a definition may
	// set.
	MaxConnectTimeout = 10 * time.Minute
	// MaxOutputLimit is the largest max_output a definition may set.
	MaxOutputLimit = 16 << 20
	// MaxArgs is the most elements argv may have.
	MaxArgs = 256
	// MaxCommand is the longest command line (every argument quoted,
	// separated by spaces) that is sent to the remote host; a run whose
	// rendered arguments make it longer is refused.
	MaxCommand = 128 << 10
	maxHostLen = 253
)

// Config is an ssh executor as an action definition writes it:
//
//	{"type": "ssh", "host": "{{.event.source_host}}", "user": "reflex",
//	 "key_file": "/etc/reflex/ssh/id_ed25519",
//	 "known_hosts": "/etc/reflex/ssh/known_hosts",
//	 "argv": ["/opt/fix/restart.sh", "{{.params.service}}"], "timeout": "30s"}
//
// Zero values of the optional fields mean their defaults (New applies
// them, Parse shows them).
type Config struct {
	// Host is the host to connect to: a hostname or an IP literal, or a
	// template ("{{.event.source_host}}") that must render to one.
	Host string
	// Port is the SSH port (default 22).
	Port int
	// User is the remote account (fixed, never a template). Its login
	// shell must be a POSIX shell: it parses the command line. It should
	// not be root: OpenSSH does not let a timeout's signal KILL reach the
	// commands of a root session.
	User string
	// KeyFile is the private key (OpenSSH, PKCS#1/8 or SEC1 PEM) to
	// authenticate with; PassphraseFile, when set, holds its passphrase.
	// Both are read once, by New.
	KeyFile        string
	PassphraseFile string
	// KnownHosts is the OpenSSH known_hosts file the host key is
	// verified against. Required unless InsecureIgnoreHostKey is set.
	KnownHosts string
	// InsecureIgnoreHostKey accepts any host key (a man in the middle
	// too). Only when set explicitly, and never with KnownHosts; New logs
	// a warning.
	InsecureIgnoreHostKey bool
	// Argv is the remote program and its arguments. Argv[0] is fixed;
	// later elements may be templates, each rendered into exactly one
	// argument.
	Argv []string
	// Timeout bounds a run (default 30s, at most 1h) unless the request
	// sets its own; ConnectTimeout bounds the connection and the SSH
	// handshake (default 10s).
	Timeout        time.Duration
	ConnectTimeout time.Duration
	// MaxOutput bounds each of stdout, stderr and the interleaved output
	// (default executor.DefaultMaxOutput).
	MaxOutput int
	// DashArgs is what happens to a templated argument that renders to a
	// value beginning with "-": refused (the default) or, with
	// "separate", passed after a "--" placed before the first templated
	// argument.
	DashArgs executor.Dash
	// RetryableExitCodes are the exit statuses after which the run may
	// be tried again.
	RetryableExitCodes []int
	// Idempotent says a run may be repeated safely: a timeout or a
	// connection lost during the run is then retryable.
	Idempotent bool
}

// fields are the keys of an ssh executor object, each with the decoder of
// its value; "type" is the Spec's.
var fields = map[string]func(c *Config, raw json.RawMessage) error{
	"type":            func(*Config, json.RawMessage) error { return nil },
	"host":            func(c *Config, raw json.RawMessage) error { return decodeString(raw, &c.Host) },
	"port":            func(c *Config, raw json.RawMessage) error { return decodeInt(raw, &c.Port) },
	"user":            func(c *Config, raw json.RawMessage) error { return decodeString(raw, &c.User) },
	"key_file":        func(c *Config, raw json.RawMessage) error { return decodeString(raw, &c.KeyFile) },
	"passphrase_file": func(c *Config, raw json.RawMessage) error { return decodeString(raw, &c.PassphraseFile) },
	"known_hosts":     func(c *Config, raw json.RawMessage) error { return decodeString(raw, &c.KnownHosts) },
	"insecure_ignore_host_key": func(c *Config, raw json.RawMessage) error {
		return decode(raw, &c.InsecureIgnoreHostKey, "true or false")
	},
	"argv":            func(c *Config, raw json.RawMessage) error { return decode(raw, &c.Argv, "a list of strings") },
	"timeout":         func(c *Config, raw json.RawMessage) error { return decodeDuration(raw, &c.Timeout) },
	"connect_timeout": func(c *Config, raw json.RawMessage) error { return decodeDuration(raw, &c.ConnectTimeout) },
	"max_output":      func(c *Config, raw json.RawMessage) error { return decodeInt(raw, &c.MaxOutput) },
	"dash_args": func(c *Config, raw json.RawMessage) error {
		var s string
		if err := decodeString(raw, &s); err != nil {
			return err
		}
		c.DashArgs = executor.Dash(s)
		return nil
	},
	"retryable_exit_codes": func(c *Config, raw json.RawMessage) error {
		return decode(raw, &c.RetryableExitCodes, "a list of exit statuses")
	},
	"idempotent": func(c *Config, raw json.RawMessage) error { return decode(raw, &c.Idempotent, "true or false") },
}

// Parse decodes an ssh executor object strictly (every key other than
// those of Config, spelled as documented, is an error naming it), applies
// the defaults and validates the result.
func Parse(spec executor.Spec) (Config, error) {
	if spec.Type != Type {
		return Config{}, invalid("executor type %q is not %q", spec.Type, Type)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(spec.Config, &obj); err != nil || obj == nil {
		return Config{}, invalid("executor must be a JSON object")
	}
	var c Config
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error is the same every time
	for _, k := range keys {
		dec, ok := fields[k]
		if !ok {
			return Config{}, invalid("unknown key %s", quote(k))
		}
		if err := dec(&c, obj[k]); err != nil {
			return Config{}, invalid("%s: %v", k, err)
		}
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// withDefaults returns c with its zero optional fields set to their
// defaults.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = executor.DefaultMaxOutput
	}
	if c.DashArgs == "" {
		c.DashArgs = executor.DashRefuse
	}
	return c
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`)

// Validate checks c as a whole; zero optional fields stand for their
// defaults. Its errors wrap executor.ErrInvalid and name the field.
func (c Config) Validate() error {
	if c.Host == "" {
		return invalid("host is required")
	}
	if isTemplate(c.Host) {
		if err := executor.Check(c.Host); err != nil {
			return fmt.Errorf("ssh: host: %w", err)
		}
	} else if err := CheckHost(c.Host); err != nil {
		return invalid("host: %v", err)
	}
	if c.Port < 0 || c.Port > 65535 {
		return invalid("port %d: want 1 to 65535", c.Port)
	}
	switch {
	case c.User == "":
		return invalid("user is required")
	case isTemplate(c.User):
		return invalid("user must be fixed, not a template")
	case !userRE.MatchString(c.User):
		return invalid("user %s: want letters, digits, '.', '_' and '-' (at most 64)", quote(c.User))
	}
	if c.KeyFile == "" {
		return invalid("key_file is required (authentication is by key only)")
	}
	switch {
	case c.InsecureIgnoreHostKey && c.KnownHosts != "":
		return invalid("known_hosts and insecure_ignore_host_key exclude each other")
	case !c.InsecureIgnoreHostKey && c.KnownHosts == "":
		return invalid("known_hosts is required (or insecure_ignore_host_key: true, which accepts any host key)")
	}
	if err := c.validateArgv(); err != nil {
		return err
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return invalid("timeout %s: want more than 0 and at most %s", c.Timeout, MaxTimeout)
	}
	if c.ConnectTimeout < 0 || c.ConnectTimeout > MaxConnectTimeout {
		return invalid("connect_timeout %s: want more than 0 and at most %s", c.ConnectTimeout, MaxConnectTimeout)
	}
	if c.MaxOutput < 0 || c.MaxOutput > MaxOutputLimit {
		return invalid("max_output %d: want 1 to %d bytes", c.MaxOutput, MaxOutputLimit)
	}
	for _, code := range c.RetryableExitCodes {
		if code < 1 || code > 255 {
			return invalid("retryable_exit_codes: %d is not an exit status (1 to 255)", code)
		}
	}
	return nil
}

func (c Config) validateArgv() error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return invalid("argv needs the remote program")
	}
	if len(c.Argv) > MaxArgs {
		return invalid("argv has %d elements, at most %d", len(c.Argv), MaxArgs)
	}
	if isTemplate(c.Argv[0]) {
		return invalid("argv[0] (the program) must be fixed, not a template")
	}
	if strings.HasPrefix(c.Argv[0], "-") {
		return invalid("argv[0] (the program) must not begin with \"-\"")
	}
	dash, err := executor.ParseDash(string(c.DashArgs))
	if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	fixedLen, templated := 0, false
	for i, a := range c.Argv {
		if strings.ContainsRune(a, 0) {
			return invalid("argv[%d] contains a NUL byte", i)
		}
		if isTemplate(a) {
			if err := executor.Check(a); err != nil {
				return fmt.Errorf("ssh: argv[%d]: %w", i, err)
			}
			templated = true
			continue
		}
		if templated && dash == executor.DashSeparate {
			return invalid("argv[%d]: with dash_args %q, templated arguments come after every fixed one", i, dash)
		}
		fixedLen += len(quoteArg(a)) + 1
	}
	if fixedLen > MaxCommand {
		return invalid("argv is %d bytes quoted, at most %d", fixedLen, MaxCommand)
	}
	return nil
}

// CheckHost reports whether host, as rendered, is a hostname or an IP
// literal that may be connected to: letters, digits, '-' and '_' in
// dot-separated labels of at most 63 bytes, no label beginning or ending
// with '-', at most 253 bytes; or an IPv4 or IPv6 address without a zone
// or brackets. Anything else (a space, a leading "-", "@", a shell
// metacharacter, a port) is refused.
func CheckHost(host string) error {
	if host == "" {
		return fmt.Errorf("empty host")
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%s is neither a hostname nor an IP address", quote(host))
		}
		return nil
	}
	if len(host) > maxHostLen {
		return fmt.Errorf("hostname of %d bytes, at most %d", len(host), maxHostLen)
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%s is not a hostname (empty or long label)", quote(host))
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%s is not a hostname (a label begins or ends with \"-\")", quote(host))
		}
		for i := 0; i < len(label); i++ {
			if !hostByte(label[i]) {
				return fmt.Errorf("%s is not a hostname (byte %q)", quote(host), label[i])
			}
		}
	}
	return nil
}

// hostByte reports whether b may be part of a hostname's label.
func hostByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

func isTemplate(s string) bool { return strings.Contains(s, "{{") }

func invalid(format string, args ...any) error {
	return fmt.Errorf("ssh: %w: %s", executor.ErrInvalid, fmt.Sprintf(format, args...))
}

// quote quotes s for a message, shortened to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

func decode(raw json.RawMessage, v any, want string) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return fmt.Errorf("want %s, not null", want)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("want %s", want)
	}
	return nil
}

func decodeString(raw json.RawMessage, s *string) error { return decode(raw, s, "a string") }

func decodeInt(raw json.RawMessage, n *int) error { return decode(raw, n, "an integer") }

// decodeDuration reads a Go duration string ("30s", "5m").
func decodeDuration(raw json.RawMessage, d *time.Duration) error {
	var s string
	if err := decode(raw, &s, `a duration such as "30s"`); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%s: want a positive duration such as \"30s\"", quote(s))
	}
	*d = v
	return nil
}
