package ssh

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/reflex-ops/reflex/internal/executor"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":             "''",
		"plain":        "'plain'",
		"two words":    "'two words'",
		"'":            `''\'''`,
		"it's":         `'it'\''s'`,
		"''":           `''\'''\'''`,
		"$(id)":        "'$(id)'",
		"`id`":         "'`id`'",
		"a\nb":         "'a\nb'",
		`back\slash`:   `'back\slash'`,
		`"double"`:     `'"double"'`,
		"-rf":          "'-rf'",
		"; id":         "'; id'",
		"x=1":          "'x=1'",
		"!event":       "'!event'",
		"\x01\x7f\xff": "'\x01\x7f\xff'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCommand(t *testing.T) {
	got, err := Command([]string{"/opt/fix/restart.sh", "db-1", "it's; id"})
	if want := `'/opt/fix/restart.sh' 'db-1' 'it'\''s; id'`; err != nil || got != want {
		t.Fatalf("Command = %s, %v; want %s", got, err, want)
	}
	if _, err := Command([]string{"/bin/x", "a\x00b"}); !errors.Is(err, executor.ErrRefused) {
		t.Fatalf("Command with a NUL = %v, want refused", err)
	}
	if _, err := Command(nil); !errors.Is(err, executor.ErrRefused) {
		t.Fatalf("Command(nil) = %v, want refused", err)
	}
	if _, err := Command([]string{"/bin/x", strings.Repeat("x", MaxCommand)}); !errors.Is(err, executor.ErrRefused) {
		t.Fatalf("Command longer than MaxCommand = %v, want refused", err)
	}
}

// hardArgs are arguments each of which a shell would interpret if it were
// not quoted right.
var hardArgs = []string{
	"", " ", "  two  spaces  ", "'", "''", "'''", `\'`, `'\''`, "it's", `"`, `\`, `\\`, `\n`, "\n", "\r\n", "\t",
	"a\nb\nc", "$", "$$", "$HOME", "${HOME}", "$(id)", "$((1+1))", "`id`", "; id", "&& id", "|| id", "| id", "& id",
	"> /tmp/x", "< /etc/passwd", "2>&1", "*", "?", "[a-z]", "~", "~root", "{a,b}", "#comment", "!", "!!", "!$",
	"-rf", "--", "-", "x=1", "IFS=x", "%s", "%%", "\x01\x02\x1b[31m", "\x7f", "\xff\xfe", "ünïcødé", "日本",
	"'$(id)'", `"$(id)"`, "a'b\"c`d$e\\f", strings.Repeat("'", 100), strings.Repeat("a b ", 1000),
}

// shells are the POSIX shells on this machine a round trip is checked
// with (sshd runs the user's login shell: "$SHELL -c <command>").
func shells(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for _, s := range [][]string{{"/bin/sh"}, {"dash"}, {"bash"}, {"bash", "--posix"}, {"ksh"}, {"mksh"}, {"zsh"}, {"busybox", "sh"}} {
		if p, err := exec.LookPath(s[0]); err == nil {
			out = append(out, append([]string{p}, s[1:]...))
		}
	}
	if len(out) == 0 {
		t.Fatal("no shell found")
	}
	return out
}

// roundTrip runs Command(printf '%s\0' x args...) with shell -c, as sshd
// does, and returns the arguments printf received (the first, x, left
// out: it makes printf print something when args is empty).
func roundTrip(t testing.TB, shell []string, args []string) []string {
	t.Helper()
	line, err := Command(append([]string{"printf", `%s\0`, "x"}, args...))
	if err != nil {
		t.Fatalf("Command: %v", err)
	}
	cmd := exec.Command(shell[0], append(shell[1:], "-c", line)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -c %q: %v", shell, line, err)
	}
	got := strings.Split(string(out), "\x00")
	if len(got) < 2 || got[0] != "x" || got[len(got)-1] != "" {
		t.Fatalf("%s: unexpected output %q", shell, out)
	}
	return got[1 : len(got)-1]
}

func TestCommandRoundTrip(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(strings.Join(sh, " "), func(t *testing.T) {
			for _, a := range hardArgs {
				if got := roundTrip(t, sh, []string{a}); len(got) != 1 || got[0] != a {
					t.Errorf("argument %q arrived as %q", a, got)
				}
			}
			if got := roundTrip(t, sh, hardArgs); strings.Join(got, "\x00") != strings.Join(hardArgs, "\x00") {
				t.Errorf("all at once: %d arguments arrived, want %d: %q", len(got), len(hardArgs), got)
			}
			if got := roundTrip(t, sh, nil); len(got) != 0 {
				t.Errorf("no arguments arrived as %q", got)
			}
		})
	}
}

func TestParseOutputs(t *testing.T) {
	long := strings.Repeat("v", MaxOutputValue)
	in := strings.Join([]string{
		"reflex-output: pid=4242",
		"reflex-output: service=nginx\r",
		"reflex-output: empty=",
		"reflex-output: eq=a=b",
		"reflex-output: long=" + long,
		"reflex-output: toolong=" + long + "x",
		"reflex-output: Upper=x",
		"reflex-output: bad-key=x",
		"reflex-output: =x",
		"reflex-output: " + strings.Repeat("k", 65) + "=x",
		"reflex-output:nospace=x",
		" reflex-output: indented=x",
		"reflex-output: exit_code=0",
		"reflex-output: stdout=spoofed",
		"reflex-output: novalue",
		"reflex-output: pid=4243",
		"ordinary line",
	}, "\n")
	got := ParseOutputs([]byte(in))
	want := map[string]string{"pid": "4243", "service": "nginx", "empty": "", "eq": "a=b", "long": long}
	if len(got) != len(want) {
		t.Fatalf("ParseOutputs = %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("ParseOutputs[%s] = %q, want %q", k, got[k], v)
		}
	}

	var many strings.Builder
	for i := range MaxOutputs + 10 {
		many.WriteString("reflex-output: k" + strings.Repeat("x", i) + "=v\n")
	}
	many.WriteString("reflex-output: k=replaced\n") // a known key is replaced even at the bound
	got = ParseOutputs([]byte(many.String()))
	if len(got) != MaxOutputs || got["k"] != "replaced" {
		t.Fatalf("%d outputs (k=%q), want %d", len(got), got["k"], MaxOutputs)
	}
	if got := ParseOutputs(nil); got == nil || len(got) != 0 {
		t.Fatalf("ParseOutputs(nil) = %v", got)
	}
}
