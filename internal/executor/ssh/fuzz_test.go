package ssh

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/reflex-ops/reflex/internal/executor"
)

// FuzzCommand proves the quoting: for any argument list (the input split
// at NUL bytes, which no argument can hold), /bin/sh -c Command(...) runs
// printf with exactly those arguments.
func FuzzCommand(f *testing.F) {
	for _, a := range hardArgs {
		f.Add(a)
	}
	f.Add(strings.Join(hardArgs[:20], "\x00"))
	f.Add("a\x00\x00b")
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		f.Skip("no /bin/sh")
	}
	sh := []string{"/bin/sh"}
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\x00")
		if len(args) > 64 || len(in) > 8<<10 {
			t.Skip()
		}
		got := roundTrip(t, sh, args)
		if strings.Join(got, "\x00") != in || len(got) != len(args) {
			t.Fatalf("arguments %q arrived as %q", args, got)
		}
	})
}

// FuzzParseOutputs: whatever a remote program prints, the outputs are
// bounded and well formed.
func FuzzParseOutputs(f *testing.F) {
	f.Add("reflex-output: pid=1\nreflex-output: a=b=c\r\n")
	f.Add("reflex-output: stdout=x\nreflex-output: Bad=1\nreflex-output: =\n")
	f.Add(strings.Repeat("reflex-output: k=v\n", 100))
	key := regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	f.Fuzz(func(t *testing.T, in string) {
		out := ParseOutputs([]byte(in))
		if len(out) > MaxOutputs {
			t.Fatalf("%d outputs", len(out))
		}
		for k, v := range out {
			if !key.MatchString(k) || len(v) > MaxOutputValue || strings.Contains(v, "\n") {
				t.Fatalf("output %q=%q", k, v)
			}
			for _, r := range reserved {
				if k == r {
					t.Fatalf("reserved output %q set", k)
				}
			}
		}
	})
}

// FuzzParse: the config loader refuses or accepts any object without
// panicking, and what it accepts validates.
func FuzzParse(f *testing.F) {
	f.Add(`{"type": "ssh", "host": "{{.event.source_host}}", "user": "reflex", "key_file": "/k", "known_hosts": "/kh", "argv": ["/bin/x", "{{.params.a}}"]}`)
	f.Add(`{"type": "ssh", "host": "10.0.0.1", "port": 2222, "user": "u", "key_file": "/k", "insecure_ignore_host_key": true, "argv": ["/bin/x", "-v", "{{.event.a}}"], "dash_args": "separate", "timeout": "1m", "retryable_exit_codes": [75]}`)
	f.Add(`{"type": "ssh", "host": "-oProxyCommand=id", "user": "u"}`)
	f.Add(`{"type": "ssh", "argv": [1, 2], "timeout": "-1s", "unknown": 1}`)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := executor.ParseSpec([]byte(in))
		if err != nil {
			return
		}
		c, err := Parse(s)
		if err != nil {
			if s.Type == Type && !errors.Is(err, executor.ErrInvalid) {
				t.Fatalf("Parse error %v is not ErrInvalid", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		if c.Port == 0 || c.Timeout == 0 || c.ConnectTimeout == 0 || c.MaxOutput == 0 || c.DashArgs == "" {
			t.Fatalf("defaults not applied: %+v", c)
		}
	})
}

// FuzzCheckHost: an accepted host holds nothing a shell or ssh would
// read as more than a host.
func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"db-1", "10.0.0.1", "::1", "-oProxyCommand=x", "a@b", "a b", "$(id)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if CheckHost(h) != nil {
			return
		}
		if strings.HasPrefix(h, "-") || strings.ContainsAny(h, " \t\n\r\x00@;|&$`'\"\\<>()[]{}*?~#!/%=,") {
			t.Fatalf("CheckHost accepted %q", h)
		}
	})
}
