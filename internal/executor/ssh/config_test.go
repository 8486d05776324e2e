package ssh

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

func spec(t *testing.T, js string) executor.Spec {
	t.Helper()
	s, err := executor.ParseSpec([]byte(js))
	if err != nil {
		t.Fatalf("ParseSpec(%s): %v", js, err)
	}
	return s
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(spec(t, `{"type": "ssh", "host": "{{.event.source_host}}", "user": "reflex",
		"key_file": "/etc/reflex/id_ed25519", "known_hosts": "/etc/reflex/known_hosts",
		"argv": ["/opt/fix/restart.sh", "{{.params.service}}"]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Host: "{{.event.source_host}}", Port: 22, User: "reflex",
		KeyFile: "/etc/reflex/id_ed25519", KnownHosts: "/etc/reflex/known_hosts",
		Argv:    []string{"/opt/fix/restart.sh", "{{.params.service}}"},
		Timeout: 30 * time.Second, ConnectTimeout: 10 * time.Second,
		MaxOutput: executor.DefaultMaxOutput, DashArgs: executor.DashRefuse,
	}
	if !equalConfig(c, want) {
		t.Fatalf("Parse = %+v\nwant    %+v", c, want)
	}
}

func TestParseEveryField(t *testing.T) {
	c, err := Parse(spec(t, `{"type": "ssh", "host": "db-1.example.com", "port": 2222, "user": "ops",
		"key_file": "/k", "passphrase_file": "/p", "known_hosts": "/kh",
		"argv": ["/bin/restart", "--now", "{{.event.source_host}}"], "timeout": "5m", "connect_timeout": "3s",
		"max_output": 1024, "dash_args": "separate", "retryable_exit_codes": [75, 111], "idempotent": true}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Host: "db-1.example.com", Port: 2222, User: "ops", KeyFile: "/k", PassphraseFile: "/p", KnownHosts: "/kh",
		Argv:    []string{"/bin/restart", "--now", "{{.event.source_host}}"},
		Timeout: 5 * time.Minute, ConnectTimeout: 3 * time.Second, MaxOutput: 1024,
		DashArgs: executor.DashSeparate, RetryableExitCodes: []int{75, 111}, Idempotent: true,
	}
	if !equalConfig(c, want) {
		t.Fatalf("Parse = %+v\nwant    %+v", c, want)
	}
	c, err = Parse(spec(t, `{"type": "ssh", "host": "10.0.0.5", "user": "ops", "key_file": "/k",
		"insecure_ignore_host_key": true, "argv": ["/bin/true"]}`))
	if err != nil || !c.InsecureIgnoreHostKey {
		t.Fatalf("insecure_ignore_host_key: %+v, %v", c, err)
	}
}

func equalConfig(a, b Config) bool {
	return a.Host == b.Host && a.Port == b.Port && a.User == b.User && a.KeyFile == b.KeyFile &&
		a.PassphraseFile == b.PassphraseFile && a.KnownHosts == b.KnownHosts &&
		a.InsecureIgnoreHostKey == b.InsecureIgnoreHostKey && strings.Join(a.Argv, "\x00") == strings.Join(b.Argv, "\x00") &&
		a.Timeout == b.Timeout && a.ConnectTimeout == b.ConnectTimeout && a.MaxOutput == b.MaxOutput &&
		a.DashArgs == b.DashArgs && len(a.RetryableExitCodes) == len(b.RetryableExitCodes) &&
		(len(a.RetryableExitCodes) == 0 || a.RetryableExitCodes[0] == b.RetryableExitCodes[0]) && a.Idempotent == b.Idempotent
}

func TestParseErrors(t *testing.T) {
	const base = `"type": "ssh", "host": "h", "user": "u", "key_file": "/k", "known_hosts": "/kh", "argv": ["/bin/true"]`
	for _, tc := range []struct {
		name, js, want string
	}{
		{"unknown key", `{` + base + `, "comand": "x"}`, `unknown key "comand"`},
		{"key spelled in another case", `{` + base + `, "Port": 22}`, `unknown key "Port"`},
		{"port type", `{` + base + `, "port": "22"}`, "port: want an integer"},
		{"null", `{` + base + `, "timeout": null}`, "timeout: want"},
		{"bad duration", `{` + base + `, "timeout": "soon"}`, `timeout: "soon"`},
		{"duration as number", `{` + base + `, "timeout": 30}`, "timeout: want a duration"},
		{"argv type", `{"type": "ssh", "host": "h", "user": "u", "key_file": "/k", "known_hosts": "/kh", "argv": "/bin/true"}`, "argv: want a list"},
		{"timeout too long", `{` + base + `, "timeout": "2h"}`, "timeout 2h0m0s"},
		{"dash_args", `{` + base + `, "dash_args": "allow"}`, "dash_args"},
		{"not an object", `{"type": "ssh"}`, "host is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(spec(t, tc.js))
			if !errors.Is(err, executor.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%s) = %v; want ErrInvalid saying %q", tc.js, err, tc.want)
			}
		})
	}
	if _, err := Parse(executor.Spec{Type: "command", Config: []byte(`{"type":"command"}`)}); !errors.Is(err, executor.ErrInvalid) {
		t.Fatalf("Parse of a command spec = %v", err)
	}
	if _, err := Parse(executor.Spec{Type: "ssh", Config: []byte(`[1]`)}); !errors.Is(err, executor.ErrInvalid) {
		t.Fatalf("Parse of a list = %v", err)
	}
}

func TestValidate(t *testing.T) {
	valid := func() Config {
		return Config{Host: "db-1", User: "reflex", KeyFile: "/k", KnownHosts: "/kh", Argv: []string{"/bin/restart", "{{.event.source_host}}"}}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no host", func(c *Config) { c.Host = "" }, "host is required"},
		{"host with a space", func(c *Config) { c.Host = "db 1" }, "host"},
		{"host option", func(c *Config) { c.Host = "-oProxyCommand=x" }, "host"},
		{"host template broken", func(c *Config) { c.Host = "{{.event.source_host" }, "host"},
		{"port", func(c *Config) { c.Port = 70000 }, "port 70000"},
		{"no user", func(c *Config) { c.User = "" }, "user is required"},
		{"templated user", func(c *Config) { c.User = "{{.event.user}}" }, "user must be fixed"},
		{"user with @", func(c *Config) { c.User = "a@b" }, "user"},
		{"user option", func(c *Config) { c.User = "-l" }, "user"},
		{"no key", func(c *Config) { c.KeyFile = "" }, "key_file is required"},
		{"no known_hosts", func(c *Config) { c.KnownHosts = "" }, "known_hosts is required"},
		{"both known_hosts and insecure", func(c *Config) { c.InsecureIgnoreHostKey = true }, "exclude each other"},
		{"no argv", func(c *Config) { c.Argv = nil }, "argv needs the remote program"},
		{"templated program", func(c *Config) { c.Argv = []string{"{{.params.program}}"} }, "argv[0]"},
		{"program option", func(c *Config) { c.Argv = []string{"-x"} }, "argv[0]"},
		{"NUL", func(c *Config) { c.Argv = []string{"/bin/x", "a\x00b"} }, "NUL"},
		{"broken template", func(c *Config) { c.Argv = []string{"/bin/x", "{{.event"} }, "argv[1]"},
		{"unknown function", func(c *Config) { c.Argv = []string{"/bin/x", `{{exec "id"}}`} }, "argv[1]"},
		{"too many args", func(c *Config) { c.Argv = make([]string, MaxArgs+1); c.Argv[0] = "/bin/x" }, "at most"},
		{"too long", func(c *Config) { c.Argv = []string{"/bin/x", strings.Repeat("a", MaxCommand)} }, "bytes quoted"},
		{"separate with a fixed argument after a templated one", func(c *Config) {
			c.DashArgs = executor.DashSeparate
			c.Argv = []string{"/bin/x", "{{.event.source_host}}", "--force"}
		}, "after every fixed one"},
		{"dash_args", func(c *Config) { c.DashArgs = "allow" }, "dash_args"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"timeout over an hour", func(c *Config) { c.Timeout = 61 * time.Minute }, "timeout"},
		{"connect_timeout", func(c *Config) { c.ConnectTimeout = time.Hour }, "connect_timeout"},
		{"max_output", func(c *Config) { c.MaxOutput = MaxOutputLimit + 1 }, "max_output"},
		{"retryable 0", func(c *Config) { c.RetryableExitCodes = []int{0} }, "retryable_exit_codes"},
		{"retryable 256", func(c *Config) { c.RetryableExitCodes = []int{256} }, "retryable_exit_codes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Validate()
			if !errors.Is(err, executor.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v; want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
	c := valid()
	c.DashArgs = executor.DashSeparate
	c.Argv = []string{"/bin/x", "--force", "-v", "{{.event.a}}", "{{.event.b}}"}
	if err := c.Validate(); err != nil {
		t.Fatalf("separate with fixed options first: %v", err)
	}
	c = valid()
	c.KnownHosts, c.InsecureIgnoreHostKey = "", true
	if err := c.Validate(); err != nil {
		t.Fatalf("insecure_ignore_host_key alone: %v", err)
	}
}

func TestCheckHost(t *testing.T) {
	for _, h := range []string{
		"db-1", "db-1.example.com", "DB1.Example.COM", "a", "10.0.0.1", "::1", "2001:db8::5", "host_with_underscore",
		strings.Repeat("a", 63) + ".example.com",
	} {
		if err := CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q) = %v, want nil", h, err)
		}
	}
	for _, h := range []string{
		"", " db", "db ", "db 1", "-oProxyCommand=x", "-db", "db-", "root@db", "db;id", "db|id", "db&", "$(id)", "`id`",
		"db\nid", "db\tx", "db'", `db"`, "db/x", "db:22", "[::1]", "fe80::1%eth0", "db..x", ".db", "db.", "*", "~",
		strings.Repeat("a", 64) + ".example.com", strings.Repeat("a.", 127) + "ab", "dé", "db\x00",
	} {
		if err := CheckHost(h); err == nil {
			t.Errorf("CheckHost(%q) = nil, want an error", h)
		}
	}
}
