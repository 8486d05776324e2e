package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"runtime/debug"
)

// Retryable is implemented by errors that know whether trying again could
// succeed. IsRetryable finds it in an error's chain.
type Retryable interface {
	Retryable() bool
}

// Permanent marks err as a failure that retrying will not fix: the events
// of a stage that returns it are isolated at once rather than redelivered
// (see Runner). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Retryable() bool { return false }

var _ Retryable = (*permanentError)(nil)

// IsRetryable reports whether a stage's err is worth retrying: the first
// Retryable in its chain decides (Permanent and PanicError say no); an
// error without one is retryable. For joined errors (the partitions of one
// batch) it is retryable if any of them is.
func IsRetryable(err error) bool {
	switch x := err.(type) { //nolint:errorlint // walks the chain itself, to see every error of a join
	case nil:
		return false
	case Retryable:
		return x.Retryable()
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if IsRetryable(e) {
				return true
			}
		}
		return false
	case interface{ Unwrap() error }:
		return IsRetryable(x.Unwrap())
	}
	return true
}

// PanicError is a stage's panic, recovered by the runner. It is permanent:
// the events it happened on are isolated and stored unprocessed.
type PanicError struct {
	// Value is what the stage panicked with.
	Value any
	// Stack is the stack of the panicking goroutine.
	Stack []byte
}

// Error says what the stage panicked with.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Retryable is false: a panic is a bug, not a passing failure.
func (e *PanicError) Retryable() bool { return false }

var _ Retryable = (*PanicError)(nil)

// StageError is the error of a named stage; the runner records it in a
// poison event's processing_errors as "stage: error".
type StageError struct {
	// Stage is the stage's name (see StageName).
	Stage string
	// Err is what it returned.
	Err error
}

// Error is "stage: error".
func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }

// Unwrap returns the stage's error.
func (e *StageError) Unwrap() error { return e.Err }

// stageOf is the name of the stage err came from ("" if unknown).
func stageOf(err error) string {
	var se *StageError
	if errors.As(err, &se) {
		return se.Stage
	}
	return ""
}

// StageName is the name of s in logs, metrics and processing_errors: its
// Name() if it has that method, else the name of the package that defines
// its type ("enrich", "correlate").
func StageName(s Stage) string {
	if n, ok := s.(interface{ Name() string }); ok {
		return n.Name()
	}
	t := reflect.TypeOf(s)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.PkgPath() == "" {
		return "stage"
	}
	return path.Base(t.PkgPath())
}

// runStage runs s on b, turning a panic into a *PanicError, and names the
// stage in the error unless a nested stage already did.
func runStage(ctx context.Context, name string, s Stage, b *Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &StageError{Stage: name, Err: &PanicError{Value: p, Stack: debug.Stack()}}
		}
	}()
	err = s.Process(ctx, b)
	if err == nil {
		return nil
	}
	var se *StageError
	if errors.As(err, &se) {
		return err
	}
	return &StageError{Stage: name, Err: err}
}
