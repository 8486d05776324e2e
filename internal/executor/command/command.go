// Package command is the executor of an action that runs a local
// program: {"type": "command", "argv": ["/opt/fix/restart.sh",
// "{{.event.source_host}}"], "timeout": "30s"}.
//
// The program runs from its argv, never through a shell: argv[0] is a
// fixed absolute path, and every later element is fixed or a template
// that renders (executor.Render, from the Request's Data) into exactly
// one argument, whatever it contains (spaces, quotes, ";", "$(...)",
// backticks, newlines). A rendered argument beginning with "-" would be
// taken for an option: it is refused (dash_args "refuse", the default),
// or every templated argument is passed after a "--" (dash_args
// "separate"). A rendered value containing NUL is refused. A refusal
// wraps executor.ErrRefused and means nothing ran.
//
// The program starts with stdin from /dev/null, in the working directory
// the definition names, with an environment built from nothing: a fixed
// PATH, the variables the definition passes through by name (env), those
// it sets (set_env, templated), REFLEX_EXECUTION_ID and REFLEX_STEP. It
// runs in a process group of its own; when the timeout or the context
// ends the run, the whole group gets SIGTERM, then SIGKILL once the
// program has exited or the grace has passed, so that no child outlives
// the step. A child that keeps the output pipes open after the program
// exited (or escaped the group) cannot hold Execute for longer than the
// grace either.
//
// Stdout and stderr are captured, each to the definition's bound, and
// interleaved (to the same bound) into Result.Output. Result.Outputs has
// "exit_code", "stdout", "stderr", "output", and a value for every
// stdout line "reflex-output: key=value" (see ParseOutputLine).
//
// Failures: a non-zero exit is an *executor.ExitError (retryable when its
// status is in retryable_exit_codes), a timeout executor.ErrTimeout
// (retryable when the definition is idempotent), a cancelled context the
// context's error. Every error names the step and the program, never a
// set_env value.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

// DefaultKillGrace is how long a process group has between SIGTERM and
// SIGKILL unless Options say otherwise.
const DefaultKillGrace = 2 * time.Second

// defaultPath is the PATH a program sees unless its definition passes
// one.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// Options are an Executor's dependencies. The zero value is usable.
type Options struct {
	// Logger receives a record when a run starts and ends (program, step,
	// execution; never arguments or environment). Default: discard.
	Logger *slog.Logger
	// Now is the clock of Result.Started and Finished. Default: time.Now.
	Now func() time.Time
	// KillGrace is the time between SIGTERM and SIGKILL of a process
	// group ended by a timeout or the context, and the longest Execute
	// waits for output pipes that a leftover child holds open after the
	// program exited. Default: DefaultKillGrace.
	KillGrace time.Duration
}

// Executor runs one command definition. It is safe for concurrent use;
// each Execute is a process of its own.
type Executor struct {
	cfg       Config
	retryable map[int]bool
	logger    *slog.Logger
	now       func() time.Time
	grace     time.Duration
}

var _ executor.Executor = (*Executor)(nil)

// New returns an Executor for cfg, which it validates (errors wrap
// executor.ErrInvalid). Zero Timeout, MaxOutput and DashArgs take their
// defaults. The program is looked at only when a run starts: a definition
// may name a program that is installed later.
func New(cfg Config, opts Options) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Argv = slices.Clone(cfg.Argv)
	cfg.Env = slices.Clone(cfg.Env)
	cfg.SetEnv = maps.Clone(cfg.SetEnv)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxOutput == 0 {
		cfg.MaxOutput = executor.DefaultMaxOutput
	}
	if cfg.DashArgs == "" {
		cfg.DashArgs = executor.DashRefuse
	}
	e := &Executor{
		cfg:       cfg,
		retryable: map[int]bool{},
		logger:    opts.Logger,
		now:       opts.Now,
		grace:     opts.KillGrace,
	}
	for _, c := range cfg.RetryableExitCodes {
		e.retryable[c] = true
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	e.logger = e.logger.With("component", "executor.command")
	if e.now == nil {
		e.now = time.Now
	}
	if e.grace <= 0 {
		e.grace = DefaultKillGrace
	}
	return e, nil
}

// Config returns the executor's configuration, defaults filled in.
func (e *Executor) Config() Config {
	c := e.cfg
	c.Argv = slices.Clone(c.Argv)
	c.Env = slices.Clone(c.Env)
	c.SetEnv = maps.Clone(c.SetEnv)
	c.RetryableExitCodes = slices.Clone(c.RetryableExitCodes)
	return c
}

// Execute runs the program once for req and waits for it to end: its
// exit, its timeout (req.Timeout when set, at most MaxTimeout, else the
// definition's), or the end of ctx. The Result describes the run also
// when it failed; see the package documentation for the errors.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	prog := e.cfg.Argv[0]
	fail := func(format string, args ...any) error {
		return fmt.Errorf("command: step %q: %s: "+format, append([]any{req.Step, prog}, args...)...)
	}
	res := executor.Result{ExitCode: -1}
	res.Outputs = outputs(-1, nil, nil, nil)

	args, err := e.args(req.Data)
	if err != nil {
		return res, fail("%w", err)
	}
	env, err := e.env(req)
	if err != nil {
		return res, fail("%w", err)
	}
	if err := runnable(prog, e.cfg.Dir); err != nil {
		return res, fail("%w", err)
	}
	if err := ctx.Err(); err != nil {
		return res, fail("not started: %w", err)
	}
	timeout := e.cfg.Timeout
	if req.Timeout > 0 {
		timeout = min(req.Timeout, MaxTimeout)
	}

	var (
		bound    = e.cfg.MaxOutput
		stdout   = &executor.Limited{Max: bound}
		stderr   = &executor.Limited{Max: bound}
		combined = &executor.Limited{Max: bound}
		lines    = &outputLines{}
	)
	cmd := exec.Command(prog, args...) // #nosec G204 -- argv from a validated definition, no shell
	cmd.Env = env
	cmd.Dir = e.cfg.Dir
	cmd.Stdout = io.MultiWriter(stdout, combined, lines)
	cmd.Stderr = io.MultiWriter(stderr, combined)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = e.grace

	log := e.logger.With("execution_id", req.ExecutionID, "step", req.Step, "program", prog)
	res.Started = e.now()
	if err := cmd.Start(); err != nil {
		res.Started = time.Time{}
		return res, fail("%w: cannot start: %w", executor.ErrRefused, startError(err))
	}
	log.Debug("command started", "pid", cmd.Process.Pid, "timeout", timeout)
	ended, waitErr := e.wait(ctx, cmd, timeout)
	res.Finished = e.now()
	lines.flush()

	out, _ := stdout.Bytes()
	errOut, _ := stderr.Bytes()
	res.Output, res.Truncated = combined.Bytes()
	if ended == nil {
		res.ExitCode = exitCode(waitErr)
	}
	res.Outputs = outputs(res.ExitCode, out, errOut, res.Output)
	if n := lines.into(res.Outputs); n > 0 {
		log.Warn("command set more named outputs than allowed; the later ones were ignored", "ignored", n, "max", MaxOutputs)
	}
	log = log.With("exit_code", res.ExitCode, "duration", res.Finished.Sub(res.Started))

	timedOut := executor.ErrTimeout
	if e.cfg.Idempotent {
		timedOut = executor.MarkRetryable(timedOut)
	}
	switch {
	case errors.Is(ended, executor.ErrTimeout):
		log.Info("command timed out; its process group was killed", "timeout", timeout)
		return res, fail("%w after %s", timedOut, timeout)
	case errors.Is(ended, context.DeadlineExceeded):
		log.Info("command reached the context's deadline; its process group was killed")
		return res, fail("%w: %w", timedOut, ended)
	case ended != nil:
		log.Debug("command cancelled; its process group was killed", "err", ended)
		return res, fail("%w", ended)
	case waitErr == nil:
		log.Debug("command finished")
		return res, nil
	case errors.Is(waitErr, exec.ErrWaitDelay):
		log.Warn("command exited, but a process it left kept its output open; output after the exit is lost")
		return res, nil
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) {
		log.Warn("command wait failed", "err", waitErr)
		return res, fail("wait: %w", waitErr)
	}
	log.Debug("command failed")
	var xerr error = &executor.ExitError{Code: res.ExitCode}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return res, fail("killed by signal %s: %w", ws.Signal(), xerr)
	}
	if e.retryable[res.ExitCode] {
		xerr = executor.MarkRetryable(xerr)
	}
	return res, fail("%w", xerr)
}

// wait waits for cmd to end, or ends it: when the timeout passes or ctx
// ends, the process group gets SIGTERM, then SIGKILL once the program has
// exited or the grace has passed. It returns why it ended the run
// (executor.ErrTimeout or ctx's error; nil when the program ended by
// itself) and Wait's error.
func (e *Executor) wait(ctx context.Context, cmd *exec.Cmd, timeout time.Duration) (ended, waitErr error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return nil, err
	case <-timer.C:
		ended = executor.ErrTimeout
	case <-ctx.Done():
		ended = ctx.Err()
	}
	pgid := cmd.Process.Pid // Setpgid: the program leads its own group
	signalGroup(pgid, syscall.SIGTERM)
	grace := time.NewTimer(e.grace)
	defer grace.Stop()
	exited := false
	select {
	case waitErr = <-done:
		exited = true
	case <-grace.C:
	}
	signalGroup(pgid, syscall.SIGKILL)
	if !exited {
		waitErr = <-done // bounded: the group is killed, and WaitDelay closes the pipes
	}
	return ended, waitErr
}

// signalGroup signals every process of the group. A group already gone
// is not an error.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// args renders argv[1:]: each templated element into one argument,
// refused when it holds NUL or (dash_args refuse) begins with "-"; with
// dash_args separate, a "--" goes before the first templated argument.
func (e *Executor) args(data map[string]any) ([]string, error) {
	args := make([]string, 0, len(e.cfg.Argv))
	separated := false
	for i, a := range e.cfg.Argv[1:] {
		i++
		if !templated(a) {
			args = append(args, a)
			continue
		}
		v, err := executor.Render(a, data)
		if err != nil {
			return nil, fmt.Errorf("argv[%d]: %w", i, err)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: argv[%d] renders a value containing NUL", executor.ErrRefused, i)
		}
		if e.cfg.DashArgs == executor.DashSeparate {
			if !separated {
				args = append(args, "--")
				separated = true
			}
		} else if strings.HasPrefix(v, "-") {
			return nil, fmt.Errorf("%w: argv[%d] renders %s, which begins with \"-\" and would be read as an option (dash_args %q)", executor.ErrRefused, i, quote(v), executor.DashSeparate)
		}
		args = append(args, v)
	}
	return args, nil
}

// env builds the program's environment from nothing.
func (e *Executor) env(req executor.Request) ([]string, error) {
	if strings.ContainsRune(req.Step, 0) {
		return nil, fmt.Errorf("%w: the step name contains NUL", executor.ErrRefused)
	}
	vars := map[string]string{"PATH": defaultPath}
	for _, name := range e.cfg.Env {
		if v, ok := os.LookupEnv(name); ok {
			vars[name] = v
		} else if name == "PATH" {
			delete(vars, name) // passed through as the server has it: absent
		}
	}
	for _, name := range sortedKeys(e.cfg.SetEnv) {
		v, err := executor.Render(e.cfg.SetEnv[name], req.Data)
		if err != nil {
			// Render's error quotes the template, which may hold a secret.
			return nil, fmt.Errorf("%w: set_env %s: the value does not render (a key the data does not have?)", executor.ErrRefused, name)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: set_env %s renders a value containing NUL", executor.ErrRefused, name)
		}
		vars[name] = v
	}
	vars["REFLEX_EXECUTION_ID"] = strconv.FormatInt(req.ExecutionID, 10)
	vars["REFLEX_STEP"] = req.Step
	env := make([]string, 0, len(vars))
	for _, name := range sortedKeys(vars) {
		env = append(env, name+"="+vars[name])
	}
	return env, nil
}

// runnable checks that prog is a file someone may execute and that dir
// (when set) is a directory, for a clear refusal before anything starts.
func runnable(prog, dir string) error {
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("%w: working directory %s is not a directory", executor.ErrRefused, quote(dir))
		}
	}
	fi, err := os.Stat(prog)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: program not found", executor.ErrRefused)
	case err != nil:
		return fmt.Errorf("%w: program cannot be run: %w", executor.ErrRefused, err)
	case fi.IsDir():
		return fmt.Errorf("%w: program is a directory", executor.ErrRefused)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%w: program is not executable", executor.ErrRefused)
	}
	return nil
}

// startError reduces Start's error to its cause: the program is already
// named in the message around it.
func startError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// exitCode is the program's exit status from Wait's error, -1 when it
// died of a signal.
func exitCode(err error) int {
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// outputs are the built-in named outputs of a run.
func outputs(code int, stdout, stderr, combined []byte) map[string]string {
	return map[string]string{
		"exit_code": strconv.Itoa(code),
		"stdout":    string(stdout),
		"stderr":    string(stderr),
		"output":    string(combined),
	}
}

// The stdout lines that set a named output: "reflex-output: key=value".
const (
	// OutputPrefix begins a line that sets a named output.
	OutputPrefix = "reflex-output:"
	// MaxOutputs is how many named outputs a run may set; later new keys
	// are ignored.
	MaxOutputs = 64
	// MaxOutputValue is the longest value of a named output, in bytes; a
	// longer one is ignored, not cut.
	MaxOutputValue = 4 << 10

	maxOutputKey = 64
	maxLine      = 8 << 10 // longer stdout lines cannot be output lines
)

// ParseOutputLine reads one stdout line (without its newline; a trailing
// "\r" is dropped) of the form "reflex-output: key=value": the prefix,
// optional blanks, a key of 1 to 64 bytes of [a-z0-9_], "=", and the
// rest of the line as the value (at most MaxOutputValue bytes, kept as it
// is). The keys of the built-in outputs (exit_code, stdout, stderr,
// output) are not accepted.
func ParseOutputLine(line string) (key, value string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r"), OutputPrefix)
	if !ok {
		return "", "", false
	}
	key, value, ok = strings.Cut(strings.TrimLeft(rest, " \t"), "=")
	if !ok || !outputKey(key) || len(value) > MaxOutputValue || strings.ContainsAny(value, "\n\r") {
		return "", "", false
	}
	switch key {
	case "exit_code", "stdout", "stderr", "output":
		return "", "", false
	}
	return key, value, true
}

func outputKey(k string) bool {
	if k == "" || len(k) > maxOutputKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c != '_' && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// outputLines is a writer that picks the output lines out of a stream
// (all of stdout, not only what fits the capture bound), bounded: it
// buffers one line of at most maxLine bytes and keeps at most MaxOutputs
// values.
type outputLines struct {
	mu      sync.Mutex
	line    []byte
	long    bool // the current line is longer than maxLine: skipped
	vals    map[string]string
	ignored int // new keys beyond MaxOutputs
}

// Write takes the lines in p; it never fails.
func (o *outputLines) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !o.long {
			if len(o.line)+len(part) > maxLine {
				o.long, o.line = true, o.line[:0]
			} else {
				o.line = append(o.line, part...)
			}
		}
		if i < 0 {
			break
		}
		o.end()
		p = p[i+1:]
	}
	return n, nil
}

// flush takes a last line that has no newline.
func (o *outputLines) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.line) > 0 {
		o.end()
	}
}

func (o *outputLines) end() {
	if !o.long {
		o.take(string(o.line))
	}
	o.line, o.long = o.line[:0], false
}

func (o *outputLines) take(line string) {
	k, v, ok := ParseOutputLine(line)
	if !ok {
		return
	}
	if _, seen := o.vals[k]; !seen && len(o.vals) >= MaxOutputs {
		o.ignored++
		return
	}
	if o.vals == nil {
		o.vals = map[string]string{}
	}
	o.vals[k] = v
}

// into adds the values to m and says how many new keys beyond
// MaxOutputs were ignored.
func (o *outputLines) into(m map[string]string) (ignored int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	maps.Copy(m, o.vals)
	return o.ignored
}
