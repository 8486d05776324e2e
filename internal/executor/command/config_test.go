package command

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

func spec(t testing.TB, js string) executor.Spec {
	t.Helper()
	s, err := executor.ParseSpec([]byte(js))
	if err != nil {
		t.Fatalf("ParseSpec(%s): %v", js, err)
	}
	return s
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, js string
		want     Config
	}{
		{
			name: "defaults",
			js:   `{"type":"command","argv":["/opt/fix/restart.sh","{{.event.source_host}}"]}`,
			want: Config{
				Argv:      []string{"/opt/fix/restart.sh", "{{.event.source_host}}"},
				Timeout:   DefaultTimeout,
				MaxOutput: executor.DefaultMaxOutput,
				DashArgs:  executor.DashRefuse,
			},
		},
		{
			name: "every field",
			js: `{"type":"command","argv":["/usr/bin/systemctl","restart","--","{{.params.unit}}"],
				"timeout":"2m","dir":"/srv","env":["LANG","HOME"],"set_env":{"TOKEN":"{{.params.token}}","MODE":"fix"},
				"max_output":1024,"dash_args":"refuse","retryable_exit_codes":[75,111],"idempotent":true}`,
			want: Config{
				Argv:               []string{"/usr/bin/systemctl", "restart", "--", "{{.params.unit}}"},
				Timeout:            2 * time.Minute,
				Dir:                "/srv",
				Env:                []string{"LANG", "HOME"},
				SetEnv:             map[string]string{"TOKEN": "{{.params.token}}", "MODE": "fix"},
				MaxOutput:          1024,
				DashArgs:           executor.DashRefuse,
				RetryableExitCodes: []int{75, 111},
				Idempotent:         true,
			},
		},
		{
			name: "separate",
			js:   `{"type":"command","argv":["/bin/ping","-c","1","{{.event.source_host}}"],"dash_args":"separate"}`,
			want: Config{
				Argv:      []string{"/bin/ping", "-c", "1", "{{.event.source_host}}"},
				Timeout:   DefaultTimeout,
				MaxOutput: executor.DefaultMaxOutput,
				DashArgs:  executor.DashSeparate,
			},
		},
		{
			name: "null is absent",
			js:   `{"type":"command","argv":["/bin/true"],"timeout":null,"env":null,"max_output":null}`,
			want: Config{Argv: []string{"/bin/true"}, Timeout: DefaultTimeout, MaxOutput: executor.DefaultMaxOutput, DashArgs: executor.DashRefuse},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(spec(t, tc.js))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, js string
		want     string // in the error
	}{
		{"unknown key", `{"type":"command","argv":["/bin/true"],"shell":"sh -c"}`, `unknown key "shell"`},
		{"key case", `{"type":"command","ARGV":["/bin/true"]}`, `unknown key "ARGV"`},
		{"repeated key", `{"type":"command","argv":["/bin/true"],"argv":["/bin/false"]}`, `"argv" appears twice`},
		{"unknown key in set_env value", `{"type":"command","argv":["/bin/true"],"set_env":{"A":{"x":1}}}`, `set_env: A: want a string`},
		{"trailing data", `{"type":"command","argv":["/bin/true"]} {}`, "after the object"},
		{"no argv", `{"type":"command"}`, "argv is required"},
		{"empty argv", `{"type":"command","argv":[]}`, "argv is required"},
		{"argv a string", `{"type":"command","argv":"/bin/true x"}`, "argv"},
		{"relative program", `{"type":"command","argv":["restart.sh"]}`, "absolute path"},
		{"program from PATH", `{"type":"command","argv":["sh","-c","id"]}`, "absolute path"},
		{"templated program", `{"type":"command","argv":["/opt/{{.event.source_host}}"]}`, "not a template"},
		{"bad template", `{"type":"command","argv":["/bin/echo","{{.event.x"]}`, "argv[1]"},
		{"unknown function", `{"type":"command","argv":["/bin/echo","{{exec .x}}"]}`, "argv[1]"},
		{"dash template refused", `{"type":"command","argv":["/bin/echo","--host={{.event.source_host}}"]}`, "leading \"-\""},
		{"separate fixed after templated", `{"type":"command","argv":["/bin/echo","{{.a}}","-n"],"dash_args":"separate"}`, "after every fixed one"},
		{"separate own dashes", `{"type":"command","argv":["/bin/echo","--","{{.a}}"],"dash_args":"separate"}`, "inserts the \"--\" itself"},
		{"dash_args", `{"type":"command","argv":["/bin/true"],"dash_args":"allow"}`, "dash_args"},
		{"zero timeout", `{"type":"command","argv":["/bin/true"],"timeout":"0s"}`, "not positive"},
		{"negative timeout", `{"type":"command","argv":["/bin/true"],"timeout":"-1s"}`, "not positive"},
		{"long timeout", `{"type":"command","argv":["/bin/true"],"timeout":"2h"}`, "at most 1h"},
		{"timeout number", `{"type":"command","argv":["/bin/true"],"timeout":30}`, "duration"},
		{"timeout garbage", `{"type":"command","argv":["/bin/true"],"timeout":"soon"}`, "duration"},
		{"relative dir", `{"type":"command","argv":["/bin/true"],"dir":"tmp"}`, "dir"},
		{"env name", `{"type":"command","argv":["/bin/true"],"env":["A=B"]}`, "variable name"},
		{"env digit", `{"type":"command","argv":["/bin/true"],"env":["1A"]}`, "variable name"},
		{"env twice", `{"type":"command","argv":["/bin/true"],"env":["HOME","HOME"]}`, "twice"},
		{"env reserved", `{"type":"command","argv":["/bin/true"],"env":["REFLEX_STEP"]}`, "set by the executor"},
		{"set_env reserved", `{"type":"command","argv":["/bin/true"],"set_env":{"REFLEX_EXECUTION_ID":"1"}}`, "set by the executor"},
		{"set_env and env", `{"type":"command","argv":["/bin/true"],"env":["HOME"],"set_env":{"HOME":"/"}}`, "also in env"},
		{"set_env not an object", `{"type":"command","argv":["/bin/true"],"set_env":["A"]}`, "set_env"},
		{"max_output zero", `{"type":"command","argv":["/bin/true"],"max_output":0}`, "not positive"},
		{"max_output big", `{"type":"command","argv":["/bin/true"],"max_output":16777217}`, "at most 16777216"},
		{"max_output fraction", `{"type":"command","argv":["/bin/true"],"max_output":1.5}`, "max_output"},
		{"exit code zero", `{"type":"command","argv":["/bin/true"],"retryable_exit_codes":[0]}`, "retryable_exit_codes[0]"},
		{"exit code big", `{"type":"command","argv":["/bin/true"],"retryable_exit_codes":[3,256]}`, "retryable_exit_codes[1]"},
		{"idempotent string", `{"type":"command","argv":["/bin/true"],"idempotent":"yes"}`, "idempotent"},
		{"NUL in fixed argument", `{"type":"command","argv":["/bin/echo","a\u0000b"]}`, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not through ParseSpec: Parse alone refuses all of these.
			_, err := Parse(executor.Spec{Type: Type, Config: []byte(tc.js)})
			if !errors.Is(err, executor.ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestParseType(t *testing.T) {
	if _, err := Parse(executor.Spec{Type: "ssh", Config: []byte(`{"type":"ssh","argv":["/bin/true"]}`)}); !errors.Is(err, executor.ErrInvalid) {
		t.Fatalf("Parse of an ssh spec = %v, want ErrInvalid", err)
	}
	if _, err := Parse(executor.Spec{Type: "command", Config: []byte(`{"type":"http","argv":["/bin/true"]}`)}); !errors.Is(err, executor.ErrInvalid) {
		t.Fatalf("Parse with a mismatched type key = %v, want ErrInvalid", err)
	}
}

// A set_env value may be a secret: a definition error names the
// variable, not the value.
func TestValidateSetEnvSecret(t *testing.T) {
	err := Config{Argv: []string{"/bin/true"}, SetEnv: map[string]string{"TOKEN": "hunter2-{{.params.x"}}.Validate()
	if !errors.Is(err, executor.ErrInvalid) || !strings.Contains(err.Error(), "TOKEN") {
		t.Fatalf("Validate = %v, want ErrInvalid naming TOKEN", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Validate error leaks the value: %v", err)
	}
}

// A Config built in Go may leave the defaults zero.
func TestValidateZeroDefaults(t *testing.T) {
	if err := (Config{Argv: []string{"/bin/true"}}).Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Argv: []string{"/bin/true"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := e.Config()
	if got.Timeout != DefaultTimeout || got.MaxOutput != executor.DefaultMaxOutput || got.DashArgs != executor.DashRefuse {
		t.Fatalf("Config() = %+v, want the defaults filled in", got)
	}
	if _, err := New(Config{}, Options{}); !errors.Is(err, executor.ErrInvalid) {
		t.Fatalf("New(Config{}) = %v, want ErrInvalid", err)
	}
	if _, err := New(Config{Argv: []string{"/bin/true"}, Timeout: -time.Second}, Options{}); !errors.Is(err, executor.ErrInvalid) {
		t.Fatalf("New with a negative timeout = %v, want ErrInvalid", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"type":"command","argv":["/opt/fix/restart.sh","{{.event.source_host}}"],"timeout":"30s"}`,
		`{"type":"command","argv":["/bin/ping","-c","1","{{.event.source_host}}"],"dash_args":"separate"}`,
		`{"type":"command","argv":["/bin/true"],"env":["HOME"],"set_env":{"T":"{{.params.t}}"},"max_output":10}`,
		`{"type":"command","argv":["/bin/true"],"retryable_exit_codes":[1,75],"idempotent":true,"dir":"/tmp"}`,
		`{"type":"command","argv":["/bin/true"],"argv":[]}`,
		`{"type":"command","argv":["x"]}`,
		`{"type":"command","argv":["/bin/echo","-{{.a}}"]}`,
		`{"type":"command","set_env":{"A":"1","A":"2"}}`,
		`{"type":"command"} trailing`,
		`{"type":"command","timeout":"-5m"}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse(executor.Spec{Type: Type, Config: b})
		if err != nil {
			if !errors.Is(err, executor.ErrInvalid) {
				t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a Config that Validate refuses: %v", err)
		}
		if cfg.Timeout <= 0 || cfg.Timeout > MaxTimeout || cfg.MaxOutput <= 0 || cfg.MaxOutput > MaxOutputLimit {
			t.Fatalf("Parse accepted bounds out of range: %+v", cfg)
		}
		if !strings.HasPrefix(cfg.Argv[0], "/") || templated(cfg.Argv[0]) {
			t.Fatalf("Parse accepted program %q", cfg.Argv[0])
		}
		if _, err := New(cfg, Options{}); err != nil {
			t.Fatalf("New refuses what Parse accepted: %v", err)
		}
	})
}
