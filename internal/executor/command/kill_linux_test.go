package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

// sysPidfdOpen is pidfd_open(2), the same number on every Linux
// architecture.
const sysPidfdOpen = 434

// requireGone fails the test unless the process pid has exited (a zombie
// counts: it runs nothing). It waits on a pidfd, which becomes readable
// when the process exits, so the check needs no polling; the bound only
// limits how long a failing test takes.
func requireGone(t *testing.T, pid int) {
	t.Helper()
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	switch {
	case errno == syscall.ESRCH:
		return // exited and reaped
	case errno != 0:
		t.Fatalf("pidfd_open(%d): %v", pid, errno)
	}
	defer syscall.Close(int(fd))
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(ep)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		t.Fatal(err)
	}
	evs := make([]syscall.EpollEvent, 1)
	for {
		n, err := syscall.EpollWait(ep, evs, 5000)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("process %d is still running after Execute returned", pid)
		}
		return
	}
}

// pids reads "<leader pid> <child pid>" as hang.sh writes it.
func pids(t *testing.T, b []byte) (leader, child int) {
	t.Helper()
	if _, err := fmt.Sscan(string(b), &leader, &child); err != nil {
		t.Fatalf("hang.sh wrote %q: %v", b, err)
	}
	return leader, child
}

// A timeout kills the whole process group: the program and the child it
// left in the background, also when they ignore SIGTERM.
func TestTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		cfgTimeout time.Duration
		reqTimeout time.Duration
		ignoreTerm bool
		idempotent bool
	}{
		{name: "definition timeout", cfgTimeout: time.Second},
		{name: "request timeout", cfgTimeout: time.Hour, reqTimeout: time.Second},
		{name: "SIGTERM ignored", cfgTimeout: time.Second, ignoreTerm: true},
		{name: "idempotent", cfgTimeout: time.Second, idempotent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pidfile := filepath.Join(t.TempDir(), "pids")
			argv := []string{script(t, "hang.sh"), pidfile}
			if tc.ignoreTerm {
				argv = append(argv, "ignore-term")
			}
			e := newExecutor(t, Config{Argv: argv, Timeout: tc.cfgTimeout, Idempotent: tc.idempotent}, Options{KillGrace: 200 * time.Millisecond})
			req := request(nil)
			req.Timeout = tc.reqTimeout
			res, err := e.Execute(t.Context(), req)
			if !errors.Is(err, executor.ErrTimeout) {
				t.Fatalf("Execute = %v, want ErrTimeout", err)
			}
			if executor.Retryable(err) != tc.idempotent {
				t.Fatalf("Retryable(%v) = %v; want it only for an idempotent command", err, executor.Retryable(err))
			}
			var xe *executor.ExitError
			if errors.As(err, &xe) || errors.Is(err, executor.ErrRefused) {
				t.Fatalf("a timeout is neither an exit nor a refusal: %v", err)
			}
			requireNamed(t, err, argv[0])
			if !strings.Contains(err.Error(), "after 1s") {
				t.Fatalf("error %q does not say the timeout", err)
			}
			if res.ExitCode != -1 || res.Outputs["exit_code"] != "-1" || res.Outputs["stdout"] != "hanging\n" {
				t.Fatalf("Result = %+v", res)
			}
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatalf("hang.sh did not get to write its pids before the timeout: %v", err)
			}
			leader, child := pids(t, b)
			requireGone(t, leader)
			requireGone(t, child)
		})
	}
}

// Ending the context kills the whole process group too.
func TestCancelKillsGroup(t *testing.T) {
	t.Parallel()
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		fifo := filepath.Join(t.TempDir(), "pids")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		e := newExecutor(t, Config{Argv: []string{script(t, "hang.sh"), fifo}}, Options{KillGrace: 200 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		type result struct {
			res executor.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := e.Execute(ctx, request(nil))
			done <- result{res, err}
		}()
		// hang.sh writes its pids into the FIFO once it runs: reading them
		// is the sign that it is running, with no polling.
		got := make(chan []byte, 1)
		go func() {
			b, _ := os.ReadFile(fifo)
			got <- b
		}()
		var b []byte
		select {
		case b = <-got:
		case r := <-done:
			t.Fatalf("Execute returned before hang.sh ran: %+v, %v", r.res, r.err)
		}
		leader, child := pids(t, b)
		cancel()
		r := <-done
		if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, executor.ErrTimeout) || executor.Retryable(r.err) {
			t.Fatalf("Execute = %v, want context.Canceled, not a timeout, not retryable", r.err)
		}
		if r.res.ExitCode != -1 || r.res.Started.IsZero() {
			t.Fatalf("Result = %+v", r.res)
		}
		requireGone(t, leader)
		requireGone(t, child)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		pidfile := filepath.Join(t.TempDir(), "pids")
		e := newExecutor(t, Config{Argv: []string{script(t, "hang.sh"), pidfile}, Idempotent: true}, Options{KillGrace: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := e.Execute(ctx, request(nil))
		if !errors.Is(err, executor.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !executor.Retryable(err) {
			t.Fatalf("Execute = %v, want ErrTimeout and DeadlineExceeded, retryable (idempotent)", err)
		}
		b, err := os.ReadFile(pidfile)
		if err != nil {
			t.Fatalf("hang.sh did not get to write its pids before the deadline: %v", err)
		}
		leader, child := pids(t, b)
		requireGone(t, leader)
		requireGone(t, child)
	})
}

// A child that the program leaves behind with the output pipes open
// cannot hold Execute after the program exited: it returns within the
// grace, with the program's success, instead of waiting for the timeout.
func TestLingeringChild(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pid")
	e := newExecutor(t, Config{Argv: []string{script(t, "linger.sh"), pidfile}, Timeout: 20 * time.Second}, Options{KillGrace: 200 * time.Millisecond})
	res, err := e.Execute(t.Context(), request(nil))
	if b, rerr := os.ReadFile(pidfile); rerr == nil {
		var pid int
		if _, serr := fmt.Sscan(string(b), &pid); serr == nil && pid > 0 {
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		}
	}
	if err != nil {
		t.Fatalf("Execute = %v, want the program's success", err)
	}
	if res.ExitCode != 0 || res.Outputs["stdout"] != "left a child behind\n" {
		t.Fatalf("Result = %+v", res)
	}
}
