// Package executor is what the Autonomous Response Service's orchestrator
// runs a step with: the Executor interface, its Request and Result, how a
// failure says whether it may be retried, the rendering of templated
// parameters (each rendered value one argument, never split or
// re-parsed), and a bounded output buffer. Each kind of executor is a
// subpackage with the same shape (config.go, <name>.go, tests):
// executor/command (a local program, argv only), executor/ssh (a program
// on a remote host over SSH), executor/http (an HTTP request through the
// outbound guard).
//
// The safety rules every executor keeps: no parameter ever passes through
// a shell string; a rendered parameter is one argument and never becomes
// an option (see Dash); output is captured to a bound; a timeout ends the
// work (for a process, its whole process group); secrets given to an
// executor (keys, tokens, headers) never appear in its errors, its logs
// or its Result.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Executor runs one step of an execution. Execute returns when the work
// has ended (or ctx ended it): a Result describing what happened, also
// when it failed, and an error when it did not succeed. Implementations
// are safe for concurrent use.
type Executor interface {
	Execute(ctx context.Context, req Request) (Result, error)
}

// Request is one run of a step.
type Request struct {
	// ExecutionID and Step name the execution and its step, for logs and
	// for executors that pass them on (command: REFLEX_EXECUTION_ID and
	// REFLEX_STEP in the environment).
	ExecutionID int64
	Step        string
	// Data is what templated parameters render from: "event" (the event,
	// as the API shows it), "incident", "params" (the step's parameters),
	// "steps" (each earlier step's outputs by step name:
	// steps.<name>.<output>), "execution" (id, dry_run). See Render.
	Data map[string]any
	// Timeout bounds the run (0: the executor's own default). The
	// executor enforces it even when ctx has no deadline.
	Timeout time.Duration
}

// Result is what a run did. Outputs are what later steps can use by name
// (steps.<name>.<key>): every executor sets "output" (its captured
// output, bounded) and those its own documentation lists (command and
// ssh: "exit_code", "stdout", "stderr"; http: "status", "body").
type Result struct {
	// ExitCode is the process's exit status (command, ssh), the HTTP
	// status (http), -1 when there is none (it did not start, it was
	// killed by a signal or a timeout).
	ExitCode int
	// Output is the captured output: stdout and stderr interleaved for a
	// process, the response body for HTTP; at most the executor's bound.
	Output []byte
	// Truncated says Output was cut at the bound.
	Truncated bool
	// Outputs are the named values later steps render from.
	Outputs map[string]string
	// Started and Finished bound the run (zero when it did not start).
	Started, Finished time.Time
}

// ErrRetryable marks a failure that may succeed when tried again (a
// connection refused, a timeout of a step declared idempotent, a 5xx or
// a 429 of an HTTP request, an exit code the definition lists as
// retryable). The orchestrator retries only errors for which Retryable
// holds; everything else fails the step at once.
var ErrRetryable = errors.New("executor: retryable failure")

// ErrTimeout is the failure of a run that its timeout ended. It is not
// retryable by itself: a step that timed out may have done part of its
// work, and only an executor that knows better (an HTTP GET, a command
// declared idempotent) wraps it in ErrRetryable too.
var ErrTimeout = errors.New("executor: timed out")

// ErrRefused is the failure of a request that was refused before any work
// started: a rendered parameter that would become an option, a template
// that does not render, a program not allowed. It is never retryable and
// means nothing ran.
var ErrRefused = errors.New("executor: refused")

// ErrInvalid is a configuration that cannot run (returned by the
// subpackages' Validate and New).
var ErrInvalid = errors.New("executor: invalid configuration")

// MarkRetryable wraps err so that Retryable(err) holds.
func MarkRetryable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrRetryable, err)
}

// Retryable reports whether err is a failure worth trying again.
func Retryable(err error) bool { return errors.Is(err, ErrRetryable) }

// ExitError is the failure of a process that ran and exited with a status
// other than 0.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string { return fmt.Sprintf("executor: exit status %d", e.Code) }

// Spec is an action definition's executor as written: its type and the
// rest of the object, which the subpackage of that type decodes strictly
// into its Config: {"type": "command", "argv": ["/opt/fix/restart.sh",
// "{{.event.source_host}}"], "timeout": "30s"}.
type Spec struct {
	Type string
	// Config is the whole object, "type" included; a subpackage's
	// decoder ignores "type" and refuses every other unknown key.
	Config json.RawMessage
}

// ParseSpec reads an executor object. It checks only that it is an
// object with a non-empty string "type"; the subpackage validates the
// rest.
func ParseSpec(b []byte) (Spec, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Spec{}, fmt.Errorf("%w: executor must be a JSON object: %w", ErrInvalid, err)
	}
	if head.Type == nil || *head.Type == "" {
		return Spec{}, fmt.Errorf("%w: executor needs a \"type\" (command, ssh, http, notification)", ErrInvalid)
	}
	return Spec{Type: *head.Type, Config: append(json.RawMessage(nil), b...)}, nil
}

// DefaultMaxOutput is the bound of captured output unless a definition
// sets its own.
const DefaultMaxOutput = 64 << 10
