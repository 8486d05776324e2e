package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

// Type is the executor type this package runs: {"type": "command"}.
const Type = "command"

// Defaults and bounds of a Config.
const (
	// DefaultTimeout bounds a run when the definition sets no timeout.
	DefaultTimeout = 30 * time.Second
	// MaxTimeout is the longest timeout a definition (or a Request) may
	// ask for.
	MaxTimeout = time.Hour
	// MaxOutputLimit is the largest max_output a definition may set.
	MaxOutputLimit = 16 << 20

	maxArgs     = 1024 // elements of argv
	maxEnv      = 64   // names in env, and in set_env
	maxEnvName  = 128  // bytes of a variable name
	maxExitCode = 255
)

// Config is a command executor as an action definition writes it:
//
//	{"type": "command", "argv": ["/opt/fix/restart.sh", "{{.event.source_host}}"], "timeout": "30s"}
//
// Parse reads it from an executor.Spec and fills in the defaults; a Config
// built in Go may leave Timeout, MaxOutput and DashArgs zero, which stand
// for their defaults.
type Config struct {
	// Argv is the program and its arguments. Argv[0] is an absolute path,
	// written as it is (no template). Every later element is either fixed
	// or a template (it contains "{{") rendered with executor.Render from
	// the Request's Data into exactly one argument.
	Argv []string
	// Timeout bounds a run (DefaultTimeout when zero, at most MaxTimeout).
	Timeout time.Duration
	// Dir is the working directory, an absolute path ("": the server's).
	Dir string
	// Env names the variables passed through from the server's
	// environment. Nothing else is inherited: the program sees
	// PATH=/usr/local/bin:/usr/bin:/bin (unless Env or SetEnv names PATH),
	// these variables, SetEnv, REFLEX_EXECUTION_ID and REFLEX_STEP.
	Env []string
	// SetEnv sets variables to values, each a template rendered into one
	// value. The values may be secrets: they never appear in an error or
	// a log.
	SetEnv map[string]string
	// MaxOutput bounds each of stdout, stderr and their interleaving, in
	// bytes (executor.DefaultMaxOutput when zero, at most
	// MaxOutputLimit).
	MaxOutput int
	// DashArgs says what a templated argument that renders with a leading
	// "-" does: executor.DashRefuse (the default) refuses the run;
	// executor.DashSeparate passes every templated argument after a "--"
	// (which needs all templated arguments after all fixed ones).
	DashArgs executor.Dash
	// RetryableExitCodes are exit statuses (1-255) that mark a failure as
	// retryable (executor.Retryable).
	RetryableExitCodes []int
	// Idempotent says the command may safely run twice: a timeout is then
	// retryable.
	Idempotent bool
}

// reserved are the variables the executor sets itself.
var reserved = []string{"REFLEX_EXECUTION_ID", "REFLEX_STEP"}

// keys are the keys a command executor object may have.
var keys = []string{
	"type", "argv", "timeout", "dir", "env", "set_env", "max_output",
	"dash_args", "retryable_exit_codes", "idempotent",
}

// Parse decodes a command executor from spec: every key of its object
// but "type" is a Config field, an unknown or repeated key is an error
// naming it, absent fields take their defaults, and the result is
// validated. Errors wrap executor.ErrInvalid.
func Parse(spec executor.Spec) (Config, error) {
	if spec.Type != Type {
		return Config{}, fmt.Errorf("command: %w: executor type %q is not %q", executor.ErrInvalid, spec.Type, Type)
	}
	fields, err := object(spec.Config, keys, len(keys))
	if err != nil {
		return Config{}, fmt.Errorf("command: %w: %w", executor.ErrInvalid, err)
	}
	cfg := Config{Timeout: DefaultTimeout, MaxOutput: executor.DefaultMaxOutput, DashArgs: executor.DashRefuse}
	for _, f := range fields {
		if err := cfg.set(f.key, f.value); err != nil {
			return Config{}, fmt.Errorf("command: %w: %s: %w", executor.ErrInvalid, f.key, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// set decodes one key of the object into cfg.
func (c *Config) set(key string, v json.RawMessage) error {
	if isNull(v) {
		return nil // as if absent
	}
	switch key {
	case "type":
		var s string
		if err := json.Unmarshal(v, &s); err != nil || s != Type {
			return fmt.Errorf("want %q", Type)
		}
	case "argv":
		return strict(v, &c.Argv)
	case "timeout":
		var s string
		if err := strict(v, &s); err != nil {
			return fmt.Errorf("want a duration such as \"30s\": %w", err)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as \"30s\": %w", err)
		}
		if d <= 0 {
			return fmt.Errorf("%q is not positive", s)
		}
		c.Timeout = d
	case "dir":
		return strict(v, &c.Dir)
	case "env":
		return strict(v, &c.Env)
	case "set_env":
		fields, err := object(v, nil, maxEnv)
		if err != nil {
			return err
		}
		c.SetEnv = make(map[string]string, len(fields))
		for _, f := range fields {
			var s string
			if err := strict(f.value, &s); err != nil {
				return fmt.Errorf("%s: want a string", f.key)
			}
			c.SetEnv[f.key] = s
		}
	case "max_output":
		var n int
		if err := strict(v, &n); err != nil {
			return fmt.Errorf("want a number of bytes: %w", err)
		}
		if n <= 0 {
			return fmt.Errorf("%d is not positive", n)
		}
		c.MaxOutput = n
	case "dash_args":
		var s string
		if err := strict(v, &s); err != nil {
			return err
		}
		d, err := executor.ParseDash(s)
		if err != nil {
			return err
		}
		c.DashArgs = d
	case "retryable_exit_codes":
		return strict(v, &c.RetryableExitCodes)
	case "idempotent":
		return strict(v, &c.Idempotent)
	default:
		return errors.New("unknown key") // object refuses these first
	}
	return nil
}

// Validate checks a Config as a whole. Errors wrap executor.ErrInvalid
// and name the field.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("command: %w: %w", executor.ErrInvalid, err)
	}
	return nil
}

func (c Config) validate() error {
	if len(c.Argv) == 0 {
		return errors.New("argv is required: the program and its arguments")
	}
	if len(c.Argv) > maxArgs {
		return fmt.Errorf("argv: %d elements, at most %d", len(c.Argv), maxArgs)
	}
	prog := c.Argv[0]
	switch {
	case templated(prog):
		return fmt.Errorf("argv[0] %s: the program is fixed, not a template", quote(prog))
	case !filepath.IsAbs(prog):
		return fmt.Errorf("argv[0] %s: the program must be an absolute path", quote(prog))
	case strings.ContainsRune(prog, 0):
		return errors.New("argv[0] contains NUL")
	}
	dash := c.DashArgs
	if dash == "" {
		dash = executor.DashRefuse
	}
	if _, err := executor.ParseDash(string(dash)); err != nil {
		return err
	}
	seenTemplate := false
	for i, a := range c.Argv[1:] {
		i++
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("argv[%d] contains NUL", i)
		}
		if !templated(a) {
			if seenTemplate && dash == executor.DashSeparate {
				return fmt.Errorf("argv[%d] %s: with dash_args %q every templated argument must come after every fixed one (they are passed after a \"--\")", i, quote(a), executor.DashSeparate)
			}
			if a == "--" && dash == executor.DashSeparate {
				return fmt.Errorf("argv[%d]: with dash_args %q the executor inserts the \"--\" itself", i, executor.DashSeparate)
			}
			continue
		}
		seenTemplate = true
		if err := executor.Check(a); err != nil {
			return fmt.Errorf("argv[%d]: %w", i, err)
		}
		if strings.HasPrefix(a, "-") && dash == executor.DashRefuse {
			return fmt.Errorf("argv[%d] %s: always renders with a leading \"-\", which dash_args %q refuses; write the option as a fixed argument and its value as the next one", i, quote(a), executor.DashRefuse)
		}
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return fmt.Errorf("timeout %s: want more than 0 and at most %s", c.Timeout, MaxTimeout)
	}
	if c.Dir != "" && (!filepath.IsAbs(c.Dir) || strings.ContainsRune(c.Dir, 0)) {
		return fmt.Errorf("dir %s: want an absolute path", quote(c.Dir))
	}
	if len(c.Env) > maxEnv {
		return fmt.Errorf("env: %d names, at most %d", len(c.Env), maxEnv)
	}
	for i, name := range c.Env {
		if err := checkName(name); err != nil {
			return fmt.Errorf("env[%d]: %w", i, err)
		}
		if slices.Contains(c.Env[:i], name) {
			return fmt.Errorf("env[%d]: %q is listed twice", i, name)
		}
	}
	if len(c.SetEnv) > maxEnv {
		return fmt.Errorf("set_env: %d variables, at most %d", len(c.SetEnv), maxEnv)
	}
	for _, name := range sortedKeys(c.SetEnv) {
		if err := checkName(name); err != nil {
			return fmt.Errorf("set_env: %w", err)
		}
		if slices.Contains(c.Env, name) {
			return fmt.Errorf("set_env: %q is also in env; pass it through or set it, not both", name)
		}
		v := c.SetEnv[name]
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("set_env %s: the value contains NUL", name)
		}
		if templated(v) && executor.Check(v) != nil {
			// The value may be a secret: say where, not what.
			return fmt.Errorf("set_env %s: the value is not a valid template", name)
		}
	}
	if c.MaxOutput < 0 || c.MaxOutput > MaxOutputLimit {
		return fmt.Errorf("max_output %d: want more than 0 and at most %d", c.MaxOutput, MaxOutputLimit)
	}
	for i, code := range c.RetryableExitCodes {
		if code < 1 || code > maxExitCode {
			return fmt.Errorf("retryable_exit_codes[%d] %d: want an exit status from 1 to %d", i, code, maxExitCode)
		}
	}
	return nil
}

// checkName checks an environment variable name: a letter or "_", then
// letters, digits and "_"; not one the executor sets itself.
func checkName(name string) error {
	if name == "" || len(name) > maxEnvName {
		return fmt.Errorf("%s: want a variable name of 1 to %d bytes", quote(name), maxEnvName)
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		letter := ch == '_' || ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z'
		if !letter && (i == 0 || ch < '0' || ch > '9') {
			return fmt.Errorf("%s: want a variable name (letters, digits, \"_\", not starting with a digit)", quote(name))
		}
	}
	if slices.Contains(reserved, name) {
		return fmt.Errorf("%q is set by the executor", name)
	}
	return nil
}

// templated says whether an argv element or a value is a template.
func templated(s string) bool { return strings.Contains(s, "{{") }

// field is one key of a JSON object and its value.
type field struct {
	key   string
	value json.RawMessage
}

// object reads a JSON object's keys and values in order, refusing a
// repeated key, a key not in allowed (unless allowed is nil), more than
// limit keys, and anything after the object.
func object(b []byte, allowed []string, limit int) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("want a JSON object: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("want a JSON object")
	}
	var fields []field
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("want a JSON object: %w", err)
		}
		key, _ := tok.(string) // object keys are strings
		if allowed != nil && !slices.Contains(allowed, key) {
			return nil, fmt.Errorf("unknown key %s (known: %s)", quote(key), strings.Join(allowed, ", "))
		}
		if seen[key] {
			return nil, fmt.Errorf("key %s appears twice", quote(key))
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		fields = append(fields, field{key, v})
		if len(fields) > limit {
			return nil, fmt.Errorf("more than %d keys", limit)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("want a JSON object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the object")
	}
	return fields, nil
}

// strict decodes one value into v, refusing unknown fields.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func isNull(b []byte) bool { return string(bytes.TrimSpace(b)) == "null" }

// quote quotes s for an error message, shortened to 64 bytes. Only for
// values that are not secrets (argv, paths, names).
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
