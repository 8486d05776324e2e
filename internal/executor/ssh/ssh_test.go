package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/reflex-ops/reflex/internal/executor"
)

// The tests in this file run against a real sshd (see startSSHD): the
// remote host is this machine, the remote account the current user.

func newExec(t *testing.T, cfg Config, opts Options) *Executor {
	t.Helper()
	e, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// bracketed is what testdata/args.sh prints for args.
func bracketed(args ...string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString("[" + a + "]\n")
	}
	return b.String()
}

func TestExecuteOutputAndExitCode(t *testing.T) {
	s := startSSHD(t)
	var dialed []string
	var mu sync.Mutex
	opts := Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	cfg := s.config("/bin/sh", "-c", `echo hello; echo "reflex-output: restarted=yes"; echo "reflex-output: stdout=spoofed"; echo warn >&2`)
	cfg.Host = "{{.event.source_host}}"
	e := newExec(t, cfg, opts)
	res, err := e.Execute(context.Background(), executor.Request{Data: map[string]any{"event": map[string]any{"source_host": "127.0.0.1"}}})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if res.ExitCode != 0 || res.Started.IsZero() || res.Finished.Before(res.Started) {
		t.Fatalf("result %+v", res)
	}
	wantOut := "hello\nreflex-output: restarted=yes\nreflex-output: stdout=spoofed\n"
	if got := res.Outputs; got["stdout"] != wantOut || got["stderr"] != "warn\n" || got["exit_code"] != "0" ||
		got["restarted"] != "yes" || got["output"] != string(res.Output) {
		t.Fatalf("outputs %q", got)
	}
	if !strings.Contains(string(res.Output), "hello\n") || !strings.Contains(string(res.Output), "warn\n") || res.Truncated {
		t.Fatalf("output %q truncated %v", res.Output, res.Truncated)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) != 1 || dialed[0] != s.addr {
		t.Fatalf("Options.Dial called with %q, want [%s]", dialed, s.addr)
	}
}

func TestExecuteConcurrent(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, s.config("/bin/sh", s.script(t, "args.sh"), "{{.params.n}}"), Options{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			n := strconv.Itoa(i)
			res, err := e.Execute(context.Background(), executor.Request{Data: map[string]any{"params": map[string]any{"n": n}}})
			if err != nil || res.Outputs["stdout"] != bracketed(n) {
				t.Errorf("run %d: %q, %v", i, res.Outputs["stdout"], err)
			}
		})
	}
	wg.Wait()
}

func TestExecuteFailingCommand(t *testing.T) {
	s := startSSHD(t)
	for _, tc := range []struct {
		name      string
		retryable []int
	}{
		{"not retryable", nil},
		{"retryable exit code", []int{1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config("/bin/sh", "-c", "echo failing >&2; exit 3")
			cfg.RetryableExitCodes = tc.retryable
			res, err := newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{})
			var xe *executor.ExitError
			if !errors.As(err, &xe) || xe.Code != 3 || res.ExitCode != 3 {
				t.Fatalf("Execute = %+v, %v; want exit status 3", res, err)
			}
			if executor.Retryable(err) != (tc.retryable != nil) {
				t.Fatalf("Retryable(%v) = %v", err, executor.Retryable(err))
			}
			if res.Outputs["stderr"] != "failing\n" || res.Outputs["exit_code"] != "3" {
				t.Fatalf("outputs %q", res.Outputs)
			}
		})
	}
}

func TestExecuteMaxOutput(t *testing.T) {
	s := startSSHD(t)
	cfg := s.config("/bin/sh", "-c", "head -c 100000 /dev/zero")
	cfg.MaxOutput = 1000
	res, err := newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) != 1000 || !res.Truncated || len(res.Outputs["stdout"]) != 1000 {
		t.Fatalf("output of %d bytes, truncated %v; want 1000, true", len(res.Output), res.Truncated)
	}
}

// marker is a unique argument to find a test's remote processes by; the
// processes that still carry it when the test ends are killed.
func marker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	m := "reflex-ssh-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		out, _ := exec.Command("pgrep", "-f", m).Output()
		for f := range strings.FieldsSeq(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return m
}

// running reports whether a process with m in its command line runs.
func running(t *testing.T, m string) bool {
	t.Helper()
	err := exec.Command("pgrep", "-f", m).Run()
	var xe *exec.ExitError
	if errors.As(err, &xe) && xe.ExitCode() == 1 {
		return false
	}
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	return true
}

// waitFor polls cond (the state of processes on the "remote" host, which
// this test does not control) until it holds, failing after a bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecuteTimeoutKillsRemoteCommand(t *testing.T) {
	s := startSSHD(t)
	for _, idempotent := range []bool{false, true} {
		m := marker(t)
		cfg := s.config("/bin/sh", s.script(t, "hang.sh"), "{{.params.marker}}")
		cfg.Idempotent = idempotent
		e := newExec(t, cfg, Options{})
		res, err := e.Execute(context.Background(), executor.Request{
			Timeout: 3 * time.Second,
			Data:    map[string]any{"params": map[string]any{"marker": m}},
		})
		if !errors.Is(err, executor.ErrTimeout) || res.ExitCode != -1 {
			t.Fatalf("Execute = %+v, %v; want a timeout, exit code -1", res, err)
		}
		if executor.Retryable(err) != idempotent {
			t.Fatalf("idempotent %v: Retryable(%v) = %v", idempotent, err, executor.Retryable(err))
		}
		if !strings.Contains(res.Outputs["stdout"], "started") {
			t.Fatalf("the remote command did not start within the timeout: stdout %q", res.Outputs["stdout"])
		}
		waitFor(t, "killed", func() bool { return !running(t, m) })
	}
}

func TestExecuteCancelKillsRemoteCommand(t *testing.T) {
	s := startSSHD(t)
	m := marker(t)
	e := newExec(t, s.config("/bin/sh", s.script(t, "hang.sh"), m), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		res executor.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := e.Execute(ctx, executor.Request{})
		done <- result{res, err}
	}()
	waitFor(t, "running", func() bool { return running(t, m) })
	cancel()
	r := <-done
	if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, executor.ErrTimeout) || r.res.ExitCode != -1 {
		t.Fatalf("Execute = %+v, %v; want cancelled, exit code -1", r.res, r.err)
	}
	waitFor(t, "killed", func() bool { return !running(t, m) })
}

// injections are event fields that a shell would interpret.
func injections(pwned string) []string {
	return []string{
		"; id",
		"$(touch " + pwned + ")",
		"`touch " + pwned + "`",
		"a\ntouch " + pwned,
		"' ; touch " + pwned + " ; '",
		`"; touch ` + pwned + `; "`,
		"| touch " + pwned,
		"&& touch " + pwned,
		"> " + pwned,
		"*",
		"~",
		"$HOME",
		"",
		"two words",
		"\\",
		"x=1",
	}
}

func TestExecuteInjection(t *testing.T) {
	s := startSSHD(t)
	pwned := filepath.Join(s.writableDir(t), "pwned") // an injection could create it
	args := injections(pwned)
	argv := []string{"/bin/sh", s.script(t, "args.sh")}
	fields := map[string]any{}
	for i, a := range args {
		k := "f" + string(rune('a'+i))
		fields[k] = a
		argv = append(argv, "{{.event."+k+"}}")
	}
	e := newExec(t, s.config(argv...), Options{})
	res, err := e.Execute(context.Background(), executor.Request{Data: map[string]any{"event": fields}})
	if _, err := os.Stat(pwned); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists: an argument reached a shell (%v)", pwned, err)
	}
	if err != nil {
		t.Fatalf("Execute: %v (stderr %q)", err, res.Outputs["stderr"])
	}
	if got, want := res.Outputs["stdout"], bracketed(args...); got != want {
		t.Fatalf("the remote program got\n%s\nwant\n%s", got, want)
	}
}

func TestExecuteLeadingDash(t *testing.T) {
	s := startSSHD(t)
	data := map[string]any{"event": map[string]any{"title": "-rf", "host": "db-1"}}
	script := s.script(t, "args.sh")

	refuse := newExec(t, s.config("/bin/sh", script, "{{.event.host}}", "{{.event.title}}"), Options{})
	res, err := refuse.Execute(context.Background(), executor.Request{Data: data})
	if !errors.Is(err, executor.ErrRefused) || executor.Retryable(err) || !res.Started.IsZero() {
		t.Fatalf("dash_args refuse: %+v, %v; want refused before anything ran", res, err)
	}
	if strings.Contains(err.Error(), "-rf") {
		t.Fatalf("the error shows the rendered value: %v", err)
	}

	cfg := s.config("/bin/sh", script, "--fixed-option", "{{.event.host}}", "{{.event.title}}")
	cfg.DashArgs = executor.DashSeparate
	res, err = newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Outputs["stdout"], bracketed("--fixed-option", "--", "db-1", "-rf"); got != want {
		t.Fatalf("dash_args separate: got\n%s\nwant\n%s", got, want)
	}
}

// TestExecuteRefused: what renders to a host that is not one, an option
// or a NUL, or does not render, connects to nothing.
func TestExecuteRefused(t *testing.T) {
	dir := t.TempDir()
	_, key := writeKey(t, dir, "id", "")
	kh := filepath.Join(dir, "known_hosts")
	writeFile(t, kh, "")
	e := newExec(t, Config{
		Host: "{{.event.source_host}}", User: "u", KeyFile: key, KnownHosts: kh,
		Argv: []string{"/bin/x", "{{.event.arg}}"},
	}, Options{Dial: func(context.Context, string, string) (net.Conn, error) {
		t.Error("dialed for a refused run")
		return nil, errors.New("no")
	}})
	for _, h := range []string{"-oProxyCommand=touch x", "root@127.0.0.1", "127.0.0.1; id", "$(id)", "a b", "127.0.0.1:22", ""} {
		res, err := e.Execute(context.Background(), executor.Request{Data: map[string]any{"event": map[string]any{"source_host": h, "arg": "a"}}})
		if !errors.Is(err, executor.ErrRefused) || executor.Retryable(err) || res.ExitCode != -1 || !res.Started.IsZero() {
			t.Fatalf("host %q: %+v, %v; want refused", h, res, err)
		}
	}
	for name, event := range map[string]map[string]any{
		"missing key":  {"source_host": "db-1"},
		"leading dash": {"source_host": "db-1", "arg": "--help"},
		"NUL":          {"source_host": "db-1", "arg": "a\x00b"},
		"missing host": {"arg": "a"},
	} {
		if _, err := e.Execute(context.Background(), executor.Request{Data: map[string]any{"event": event}}); !errors.Is(err, executor.ErrRefused) {
			t.Fatalf("%s: %v, want refused", name, err)
		}
	}
}

func TestExecuteHostKey(t *testing.T) {
	s := startSSHD(t)
	other, _ := writeKey(t, s.dir, "other_host_key", "")
	wrong := s.writeKnownHosts(t, "known_hosts_wrong", other)
	unknown := filepath.Join(s.dir, "known_hosts_unknown")
	writeFile(t, unknown, "db-9.example.com "+strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.hostKey)))+"\n")

	for _, tc := range []struct {
		name, knownHosts, want string
	}{
		{"wrong host key", wrong, "does not match"},
		{"unknown host", unknown, "is not in known_hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config("/bin/true")
			cfg.KnownHosts = tc.knownHosts
			res, err := newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{})
			if !errors.Is(err, ErrHostKey) || executor.Retryable(err) || !res.Started.IsZero() {
				t.Fatalf("Execute = %+v, %v; want ErrHostKey, not retryable, nothing run", res, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, s.addr) || !strings.Contains(msg, tc.knownHosts) {
				t.Fatalf("error %q does not say %q, name %s and %s", msg, tc.want, s.addr, tc.knownHosts)
			}
		})
	}
}

func TestExecuteInsecureIgnoreHostKey(t *testing.T) {
	s := startSSHD(t)
	var logs lockedBuffer
	cfg := s.config("/bin/sh", "-c", "echo ok")
	cfg.KnownHosts = ""
	cfg.InsecureIgnoreHostKey = true
	e := newExec(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 2 {
		res, err := e.Execute(context.Background(), executor.Request{})
		if err != nil || res.Outputs["stdout"] != "ok\n" {
			t.Fatalf("Execute = %q, %v", res.Outputs, err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "insecure_ignore_host_key") {
		t.Fatalf("want one warning about insecure_ignore_host_key, got %d:\n%s", n, logs.String())
	}
}

func TestExecuteAuthFailure(t *testing.T) {
	s := startSSHD(t)
	_, stranger := writeKey(t, s.dir, "stranger_key", "")
	cfg := s.config("/bin/true")
	cfg.KeyFile = stranger
	_, err := newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{})
	if !errors.Is(err, ErrAuth) || executor.Retryable(err) {
		t.Fatalf("Execute = %v; want ErrAuth, not retryable", err)
	}
	if !strings.Contains(err.Error(), s.user+"@"+s.addr) || !strings.Contains(err.Error(), stranger) {
		t.Fatalf("error %q does not name %s@%s and the key file", err, s.user, s.addr)
	}
}

func TestExecutePassphraseKey(t *testing.T) {
	s := startSSHD(t)
	pub, keyFile := writeKey(t, s.dir, "id_encrypted", "correct horse")
	f, err := os.OpenFile(filepath.Join(s.dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(gossh.MarshalAuthorizedKey(pub)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	pass := filepath.Join(s.dir, "passphrase")
	writeFile(t, pass, "correct horse\n")
	cfg := s.config("/bin/sh", "-c", "echo in")
	cfg.KeyFile, cfg.PassphraseFile = keyFile, pass
	res, err := newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{})
	if err != nil || res.Outputs["stdout"] != "in\n" {
		t.Fatalf("Execute = %q, %v", res.Outputs, err)
	}
}

func TestExecuteConnectionFailures(t *testing.T) {
	s := startSSHD(t)

	t.Run("refused", func(t *testing.T) {
		cfg := s.config("/bin/true")
		cfg.Port = freePort(t) // nothing listens there any more
		res, err := newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{})
		if err == nil || !executor.Retryable(err) || !res.Started.IsZero() {
			t.Fatalf("Execute = %+v, %v; want a retryable failure, nothing run", res, err)
		}
	})

	t.Run("no handshake within connect_timeout", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() { // accepts and says nothing
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		cfg := s.config("/bin/true")
		cfg.Port = l.Addr().(*net.TCPAddr).Port
		cfg.ConnectTimeout = 200 * time.Millisecond
		_, err = newExec(t, cfg, Options{}).Execute(context.Background(), executor.Request{})
		if !executor.Retryable(err) || !strings.Contains(err.Error(), "connect_timeout") {
			t.Fatalf("Execute = %v; want a retryable connect timeout", err)
		}
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	_, key := writeKey(t, dir, "id", "")
	_, encrypted := writeKey(t, dir, "id_encrypted", "s3cret-passphrase")
	pass := filepath.Join(dir, "pass")
	writeFile(t, pass, "s3cret-passphrase\n")
	wrongPass := filepath.Join(dir, "wrong")
	writeFile(t, wrongPass, "not-it")
	kh := filepath.Join(dir, "known_hosts")
	writeFile(t, kh, "")
	badKH := filepath.Join(dir, "bad_known_hosts")
	writeFile(t, badKH, "db-1 ssh-ed25519 not-base64!\n")
	garbage := filepath.Join(dir, "garbage")
	writeFile(t, garbage, "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n")
	keyBytes, err := os.ReadFile(encrypted)
	if err != nil {
		t.Fatal(err)
	}

	base := Config{Host: "db-1", User: "u", KeyFile: key, KnownHosts: kh, Argv: []string{"/bin/true"}}
	if _, err := New(base, Options{}); err != nil {
		t.Fatalf("New: %v", err)
	}
	ok := base
	ok.KeyFile, ok.PassphraseFile = encrypted, pass
	if _, err := New(ok, Options{}); err != nil {
		t.Fatalf("New with passphrase_file: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"invalid", func(c *Config) { c.User = "" }, "user is required"},
		{"missing key", func(c *Config) { c.KeyFile = filepath.Join(dir, "nope") }, "no such file"},
		{"not a key", func(c *Config) { c.KeyFile = garbage }, "not a private key"},
		{"encrypted without passphrase", func(c *Config) { c.KeyFile = encrypted }, "set passphrase_file"},
		{"wrong passphrase", func(c *Config) { c.KeyFile, c.PassphraseFile = encrypted, wrongPass }, "wrong passphrase"},
		{"missing passphrase file", func(c *Config) { c.KeyFile, c.PassphraseFile = encrypted, filepath.Join(dir, "nope") }, "passphrase_file"},
		{"missing known_hosts", func(c *Config) { c.KnownHosts = filepath.Join(dir, "nope") }, "known_hosts"},
		{"broken known_hosts", func(c *Config) { c.KnownHosts = badKH }, "known_hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.change(&c)
			_, err := New(c, Options{})
			if !errors.Is(err, executor.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v; want ErrInvalid saying %q", err, tc.want)
			}
			msg := err.Error()
			for _, secret := range []string{"s3cret-passphrase", "not-it", "c2VjcmV0", "secret-key-material", string(keyBytes[40:80])} {
				if strings.Contains(msg, secret) {
					t.Fatalf("error %q shows a secret", msg)
				}
			}
		})
	}
}
