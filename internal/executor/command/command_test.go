package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

// script is the absolute path of a script in testdata.
func script(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newExecutor(t testing.TB, cfg Config, opts Options) *Executor {
	t.Helper()
	e, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return e
}

// request is a Request of step "diagnose" of execution 42.
func request(data map[string]any) executor.Request {
	return executor.Request{ExecutionID: 42, Step: "diagnose", Data: data}
}

// requireNamed fails unless err names the step and the program.
func requireNamed(t *testing.T, err error, prog string) {
	t.Helper()
	if msg := err.Error(); !strings.Contains(msg, `step "diagnose"`) || !strings.Contains(msg, prog) {
		t.Fatalf("error %q does not name the step and the program %s", msg, prog)
	}
}

func TestExecute(t *testing.T) {
	t.Parallel()
	data := map[string]any{"event": map[string]any{"source_host": "db-1"}}
	for _, tc := range []struct {
		name        string
		argv        []string
		retryable   []int
		code        int // want; 0 means success
		stdout      string
		stderr      string
		outputs     map[string]string // beyond the built-in ones
		isRetryable bool
	}{
		{
			name:    "succeed",
			argv:    []string{script(t, "succeed.sh"), "{{.event.source_host}}"},
			stdout:  "succeeded for db-1\nreflex-output: result=ok\n",
			stderr:  "a note on stderr\n",
			outputs: map[string]string{"result": "ok"},
		},
		{
			name:   "fail",
			argv:   []string{script(t, "fail.sh")},
			code:   3,
			stdout: "partial output\n",
			stderr: "failing on purpose\n",
		},
		{
			name:        "fail with a retryable status",
			argv:        []string{script(t, "fail.sh")},
			retryable:   []int{75, 3},
			code:        3,
			stdout:      "partial output\n",
			stderr:      "failing on purpose\n",
			isRetryable: true,
		},
		{
			name:      "fail with another retryable status",
			argv:      []string{script(t, "fail.sh")},
			retryable: []int{4},
			code:      3,
			stdout:    "partial output\n",
			stderr:    "failing on purpose\n",
		},
		{
			name:   "killed by a signal",
			argv:   []string{"/bin/sh", "-c", "echo before; kill -KILL $$"},
			code:   -1,
			stdout: "before\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newExecutor(t, Config{Argv: tc.argv, RetryableExitCodes: tc.retryable}, Options{})
			res, err := e.Execute(t.Context(), request(data))
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("Execute: %v", err)
				}
			} else {
				var xe *executor.ExitError
				if !errors.As(err, &xe) || xe.Code != tc.code {
					t.Fatalf("Execute error = %v, want an ExitError with code %d", err, tc.code)
				}
				if executor.Retryable(err) != tc.isRetryable {
					t.Fatalf("Retryable(%v) = %v, want %v", err, executor.Retryable(err), tc.isRetryable)
				}
				if errors.Is(err, executor.ErrRefused) || errors.Is(err, executor.ErrTimeout) {
					t.Fatalf("an exit is neither a refusal nor a timeout: %v", err)
				}
				requireNamed(t, err, tc.argv[0])
			}
			if res.ExitCode != tc.code {
				t.Fatalf("ExitCode = %d, want %d", res.ExitCode, tc.code)
			}
			want := map[string]string{
				"exit_code": fmt.Sprint(tc.code),
				"stdout":    tc.stdout,
				"stderr":    tc.stderr,
				"output":    string(res.Output),
			}
			maps.Copy(want, tc.outputs)
			if !maps.Equal(res.Outputs, want) {
				t.Fatalf("Outputs = %q, want %q", res.Outputs, want)
			}
			// The interleaving holds both streams, each in its order.
			if len(res.Output) != len(tc.stdout)+len(tc.stderr) || res.Truncated ||
				!bytes.Contains(res.Output, []byte(strings.Split(tc.stdout, "\n")[0])) {
				t.Fatalf("Output = %q (truncated %v), want stdout %q and stderr %q interleaved", res.Output, res.Truncated, tc.stdout, tc.stderr)
			}
			if res.Started.IsZero() || res.Finished.Before(res.Started) {
				t.Fatalf("Started %v, Finished %v", res.Started, res.Finished)
			}
		})
	}
}

func TestExecuteClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	times := []time.Time{t0, t0.Add(3 * time.Second)}
	now := func() time.Time {
		next := times[0]
		times = times[1:]
		return next
	}
	e := newExecutor(t, Config{Argv: []string{script(t, "succeed.sh")}}, Options{Now: now})
	res, err := e.Execute(t.Context(), request(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Started.Equal(t0) || !res.Finished.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("Started %v, Finished %v; want the injected clock's", res.Started, res.Finished)
	}
}

// Every way of being refused runs nothing: the program given is touch,
// which would create the marker file if it ran.
func TestRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	notExec := filepath.Join(dir, "not-executable.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	touch := func(arg string) []string { return []string{"/usr/bin/touch", marker, arg} }
	data := map[string]any{"event": map[string]any{
		"source_host": "db-1",
		"nul":         "db\x00-1",
		"dash":        "-r",
		"dashdash":    "--reference=/etc/passwd",
	}}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		cfg  Config
		ctx  context.Context
		step string
		want error
		say  string
	}{
		{"program not found", Config{Argv: []string{filepath.Join(dir, "missing.sh")}}, nil, "", executor.ErrRefused, "not found"},
		{"program is a directory", Config{Argv: []string{dir}}, nil, "", executor.ErrRefused, "directory"},
		{"program not executable", Config{Argv: []string{notExec}}, nil, "", executor.ErrRefused, "not executable"},
		{"no working directory", Config{Argv: touch("x"), Dir: filepath.Join(dir, "missing")}, nil, "", executor.ErrRefused, "working directory"},
		{"missing key", Config{Argv: touch("{{.event.source_service}}")}, nil, "", executor.ErrRefused, "argv[2]"},
		{"NUL", Config{Argv: touch("{{.event.nul}}")}, nil, "", executor.ErrRefused, "NUL"},
		{"leading dash", Config{Argv: touch("{{.event.dash}}")}, nil, "", executor.ErrRefused, "option"},
		{"leading dashes", Config{Argv: touch("{{.event.dashdash}}")}, nil, "", executor.ErrRefused, "option"},
		{"NUL in set_env", Config{Argv: touch("x"), SetEnv: map[string]string{"HOST": "{{.event.nul}}"}}, nil, "", executor.ErrRefused, "set_env HOST"},
		{"NUL in the step", Config{Argv: touch("x")}, nil, "a\x00b", executor.ErrRefused, "step"},
		{"cancelled before", Config{Argv: touch("x")}, cancelled, "", context.Canceled, "not started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newExecutor(t, tc.cfg, Options{})
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			req := request(data)
			if tc.step != "" {
				req.Step = tc.step
			}
			res, err := e.Execute(ctx, req)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("Execute = %v, want %v saying %q", err, tc.want, tc.say)
			}
			if executor.Retryable(err) {
				t.Fatalf("a refusal is retryable: %v", err)
			}
			if tc.step == "" {
				requireNamed(t, err, tc.cfg.Argv[0])
			}
			if res.ExitCode != -1 || !res.Started.IsZero() || !res.Finished.IsZero() || len(res.Output) != 0 {
				t.Fatalf("Result = %+v, want one of a run that did not start", res)
			}
			if res.Outputs["exit_code"] != "-1" {
				t.Fatalf("Outputs = %q, want exit_code -1", res.Outputs)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the program ran")
			}
		})
	}
}

// A set_env value may hold a secret: an error about it names the
// variable, never the value or its template.
func TestSetEnvSecretNotInErrors(t *testing.T) {
	t.Parallel()
	for name, tmpl := range map[string]string{
		"missing key": "Bearer hunter2-{{.params.missing}}",
		"NUL":         "Bearer hunter2-{{.params.token}}",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newExecutor(t, Config{Argv: []string{script(t, "succeed.sh")}, SetEnv: map[string]string{"AUTH": tmpl}}, Options{})
			_, err := e.Execute(t.Context(), request(map[string]any{"params": map[string]any{"token": "x\x00"}}))
			if !errors.Is(err, executor.ErrRefused) || !strings.Contains(err.Error(), "AUTH") {
				t.Fatalf("Execute = %v, want a refusal naming AUTH", err)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "Bearer") {
				t.Fatalf("the error leaks the value: %v", err)
			}
		})
	}
}

// Event fields reach the program as one argument each, unchanged: no
// shell sees them, none becomes an option.
func TestInjection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	created := []string{filepath.Join(dir, "dollar"), filepath.Join(dir, "backtick"), filepath.Join(dir, "semi")}
	payloads := []string{
		"; id",
		"; touch " + created[2],
		"$(touch " + created[0] + ")",
		"`touch " + created[1] + "`",
		"line one\nline two\n; id",
		"a b\tc",
		`'quoted' "double" \back\slash`,
		"*",
		"$HOME ${PATH}",
		"&& id || id | id > /dev/null",
		"%s %n {{.event}}",
		"",
		"ünïcødé",
	}
	for _, dash := range []executor.Dash{executor.DashRefuse, executor.DashSeparate} {
		for i, p := range payloads {
			t.Run(fmt.Sprintf("%s/%d", dash, i), func(t *testing.T) {
				t.Parallel()
				e := newExecutor(t, Config{
					Argv:     []string{script(t, "args.sh"), "fixed", "{{.event.title}}", "host={{.event.source_host}}"},
					DashArgs: dash,
				}, Options{})
				data := map[string]any{"event": map[string]any{"title": p, "source_host": p}}
				res, err := e.Execute(t.Context(), request(data))
				if err != nil {
					t.Fatalf("Execute: %v", err)
				}
				want := "[fixed]\n[" + p + "]\n[host=" + p + "]\n"
				if dash == executor.DashSeparate {
					want = "[fixed]\n[--]\n[" + p + "]\n[host=" + p + "]\n"
				}
				if got := res.Outputs["stdout"]; got != want {
					t.Fatalf("the program received\n%q\nwant\n%q", got, want)
				}
			})
		}
	}
	t.Cleanup(func() {
		for _, f := range created {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("%s was created: a payload was interpreted", f)
			}
		}
	})
}

func TestLeadingDash(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"-rf", "--help", "-", "--", "-n\nx"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			data := map[string]any{"event": map[string]any{"title": v, "host": "db-1"}}
			argv := []string{script(t, "args.sh"), "-x", "{{.event.host}}", "{{.event.title}}"}

			refuse := newExecutor(t, Config{Argv: argv}, Options{})
			res, err := refuse.Execute(t.Context(), request(data))
			if !errors.Is(err, executor.ErrRefused) || !res.Started.IsZero() {
				t.Fatalf("dash_args refuse: Execute = %+v, %v; want refused, not started", res, err)
			}

			separate := newExecutor(t, Config{Argv: argv, DashArgs: executor.DashSeparate}, Options{})
			res, err = separate.Execute(t.Context(), request(data))
			if err != nil {
				t.Fatalf("dash_args separate: %v", err)
			}
			// Fixed options stay options; one "--" goes before the first
			// templated argument.
			want := "[-x]\n[--]\n[db-1]\n[" + v + "]\n"
			if got := res.Outputs["stdout"]; got != want {
				t.Fatalf("dash_args separate: the program received\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestOutputBound(t *testing.T) {
	t.Parallel()
	const bound = 4096
	e := newExecutor(t, Config{Argv: []string{script(t, "flood.sh")}, MaxOutput: bound}, Options{})
	res, err := e.Execute(t.Context(), request(nil))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !res.Truncated || len(res.Output) != bound {
		t.Fatalf("Output: %d bytes, truncated %v; want %d, truncated", len(res.Output), res.Truncated, bound)
	}
	for key, fill := range map[string]string{"stdout": "x", "stderr": "y"} {
		if got := res.Outputs[key]; got != strings.Repeat(fill, bound) {
			t.Fatalf("Outputs[%s]: %d bytes, want %d of %q", key, len(got), bound, fill)
		}
	}
	// The output line after the flood is still read.
	if got := res.Outputs["flooded"]; got != "4194304" {
		t.Fatalf("Outputs[flooded] = %q, want 4194304", got)
	}
}

// Only the variables listed pass from the server's environment.
func TestEnvAllowList(t *testing.T) {
	t.Setenv("REFLEX_TEST_LISTED", "passed")
	t.Setenv("REFLEX_TEST_UNLISTED", "leaked")
	t.Setenv("PATH", "/server/only/bin:/usr/bin:/bin")
	e := newExecutor(t, Config{
		Argv:   []string{"/usr/bin/env"},
		Env:    []string{"REFLEX_TEST_LISTED", "REFLEX_TEST_ABSENT"},
		SetEnv: map[string]string{"TARGET": "{{.event.source_host}}", "MODE": "fix"},
	}, Options{})
	res, err := e.Execute(t.Context(), request(map[string]any{"event": map[string]any{"source_host": "db 1; id"}}))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(res.Outputs["stdout"], "\n"), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":                defaultPath,
		"REFLEX_TEST_LISTED":  "passed",
		"TARGET":              "db 1; id",
		"MODE":                "fix",
		"REFLEX_EXECUTION_ID": "42",
		"REFLEX_STEP":         "diagnose",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("the program's environment is\n%q\nwant\n%q", got, want)
	}

	// Listing PATH passes the server's.
	e = newExecutor(t, Config{Argv: []string{"/usr/bin/env"}, Env: []string{"PATH"}}, Options{})
	res, err = e.Execute(t.Context(), request(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(res.Outputs["stdout"], "\n"), "PATH=/server/only/bin:/usr/bin:/bin") {
		t.Fatalf("env [PATH]: the program's environment is %q", res.Outputs["stdout"])
	}
}

func TestWorkingDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newExecutor(t, Config{Argv: []string{"/bin/pwd"}, Dir: dir}, Options{})
	res, err := e.Execute(t.Context(), request(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(res.Outputs["stdout"]); got != dir {
		t.Fatalf("pwd = %q, want %q", got, dir)
	}
}

func TestParseOutputLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", MaxOutputValue)
	for _, tc := range []struct {
		line, key, value string
		ok               bool
	}{
		{"reflex-output: result=ok", "result", "ok", true},
		{"reflex-output:result=ok", "result", "ok", true},
		{"reflex-output: \tload_avg_1=3.5\r", "load_avg_1", "3.5", true},
		{"reflex-output: cmd=a=b c ", "cmd", "a=b c ", true},
		{"reflex-output: empty=", "empty", "", true},
		{"reflex-output: big=" + long, "big", long, true},
		{"reflex-output: big=" + long + "v", "", "", false},
		{"reflex-output: " + strings.Repeat("k", 64) + "=1", strings.Repeat("k", 64), "1", true},
		{"reflex-output: " + strings.Repeat("k", 65) + "=1", "", "", false},
		{"reflex-output: Upper=1", "", "", false},
		{"reflex-output: da-sh=1", "", "", false},
		{"reflex-output: =1", "", "", false},
		{"reflex-output: novalue", "", "", false},
		{"reflex-output: exit_code=0", "", "", false},
		{"reflex-output: stdout=x", "", "", false},
		{" reflex-output: a=1", "", "", false},
		{"REFLEX-OUTPUT: a=1", "", "", false},
		{"output: a=1", "", "", false},
	} {
		k, v, ok := ParseOutputLine(tc.line)
		if k != tc.key || v != tc.value || ok != tc.ok {
			t.Errorf("ParseOutputLine(%.80q) = %q, %.20q, %v; want %q, %.20q, %v", tc.line, k, v, ok, tc.key, tc.value, tc.ok)
		}
	}
}

func TestOutputLines(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	in.WriteString("noise\nreflex-output: a=1\r\nreflex-output: a=2\n")
	// A line longer than any output line is skipped whole; the next is read.
	in.WriteString("reflex-output: hidden=" + strings.Repeat("z", 3*maxLine) + "\nreflex-output: after=1\n")
	for i := range MaxOutputs + 10 {
		fmt.Fprintf(&in, "reflex-output: k%d=%d\n", i, i)
	}
	in.WriteString("reflex-output: a=3\nreflex-output: last=no newline")
	// Written in small pieces, as a pipe delivers it.
	o := &outputLines{}
	b := []byte(in.String())
	for len(b) > 0 {
		n := min(len(b), 7)
		if _, err := o.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	o.flush()
	got := map[string]string{}
	o.into(got)
	if len(got) != MaxOutputs {
		t.Fatalf("%d outputs, want the bound %d", len(got), MaxOutputs)
	}
	if got["a"] != "3" {
		t.Fatalf("a = %q, want the last value 3 (an existing key may change beyond the bound)", got["a"])
	}
	if _, ok := got["hidden"]; ok {
		t.Fatal("a line longer than any output line was read")
	}
	if _, ok := got["last"]; ok {
		t.Fatal("a new key beyond the bound was kept")
	}
	if got["after"] != "1" || got["k0"] != "0" || got["k61"] != "61" {
		t.Fatalf("outputs = %v", got)
	}
	if _, ok := got["k62"]; ok {
		t.Fatal("a new key beyond the bound was kept")
	}
}

func FuzzOutputLines(f *testing.F) {
	f.Add([]byte("reflex-output: a=1\nreflex-output: b=x=y\r\n"), 3)
	f.Add([]byte("x\nreflex-output: stdout=1\nreflex-output: Bad=1\nreflex-output: c="), 1)
	f.Add([]byte(strings.Repeat("reflex-output: k=v\n", 100)), 17)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		whole, pieces := &outputLines{}, &outputLines{}
		_, _ = whole.Write(b)
		for rest := b; len(rest) > 0; {
			n := min(len(rest), chunk)
			_, _ = pieces.Write(rest[:n])
			rest = rest[n:]
		}
		whole.flush()
		pieces.flush()
		a, c := map[string]string{}, map[string]string{}
		whole.into(a)
		pieces.into(c)
		if !maps.Equal(a, c) {
			t.Fatalf("the outputs depend on how the stream is cut: %q vs %q", a, c)
		}
		if len(a) > MaxOutputs {
			t.Fatalf("%d outputs, more than %d", len(a), MaxOutputs)
		}
		for k, v := range a {
			if !outputKey(k) || len(v) > MaxOutputValue || strings.ContainsAny(v, "\r\n") {
				t.Fatalf("output %q=%q breaks the bounds", k, v)
			}
		}
	})
}
