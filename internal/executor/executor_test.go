package executor

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestRender(t *testing.T) {
	data := map[string]any{
		"event": map[string]any{"source_host": "db-1", "title": "; id $(touch /tmp/x) `id`\n-rf"},
		"steps": map[string]any{"diagnose": map[string]any{"stdout": "top output"}},
	}
	for _, tc := range []struct {
		tmpl, want string
		err        error
	}{
		{"plain", "plain", nil},
		{"{{.event.source_host}}", "db-1", nil},
		{"host={{.event.source_host}}", "host=db-1", nil},
		{"{{.event.title}}", "; id $(touch /tmp/x) `id`\n-rf", nil}, // as it is: one value, nothing interpreted
		{"{{.steps.diagnose.stdout}}", "top output", nil},
		{"{{upper .event.source_host}}", "DB-1", nil},
		{"/hosts/{{pathescape .steps.diagnose.stdout}}", "/hosts/top%20output", nil},
		{"{{.event.missing}}", "", ErrRefused},
		{"{{.nothing.here}}", "", ErrRefused},
		{"{{.event.source_host", "", ErrRefused},
		{`{{default "none" .event.source_service}}`, "", ErrRefused}, // a missing key stays an error
	} {
		t.Run(tc.tmpl, func(t *testing.T) {
			got, err := Render(tc.tmpl, data)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Render(%q) error = %v, want %v", tc.tmpl, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("Render(%q) = %q, want %q", tc.tmpl, got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	if err := Check("{{.event.source_host}}"); err != nil {
		t.Fatal(err)
	}
	if err := Check("{{.event.source_host"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Check of a broken template = %v, want ErrInvalid", err)
	}
	if err := Check("{{exec \"sh\"}}"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Check of an unknown function = %v, want ErrInvalid", err)
	}
}

func TestParseDash(t *testing.T) {
	for in, want := range map[string]Dash{"": DashRefuse, "refuse": DashRefuse, "separate": DashSeparate} {
		got, err := ParseDash(in)
		if err != nil || got != want {
			t.Fatalf("ParseDash(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseDash("allow"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ParseDash(allow) = %v, want ErrInvalid", err)
	}
}

func TestLimited(t *testing.T) {
	l := &Limited{Max: 10}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			n, err := l.Write([]byte("abcdef"))
			if n != 6 || err != nil {
				t.Errorf("Write = %d, %v; want 6, nil", n, err)
			}
		})
	}
	wg.Wait()
	b, trunc := l.Bytes()
	if len(b) != 10 || !trunc {
		t.Fatalf("Bytes = %q (%d), truncated %v; want 10 bytes, truncated", b, len(b), trunc)
	}
	small := &Limited{Max: 10}
	_, _ = small.Write([]byte("0123456789"))
	if b, trunc := small.Bytes(); string(b) != "0123456789" || trunc {
		t.Fatalf("exactly the bound: %q truncated %v", b, trunc)
	}
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(`{"type":"command","argv":["/bin/true"]}`))
	if err != nil || s.Type != "command" || !strings.Contains(string(s.Config), "argv") {
		t.Fatalf("ParseSpec = %+v, %v", s, err)
	}
	for _, bad := range []string{`[]`, `{}`, `{"type":""}`, `{"type":3}`, `not json`} {
		if _, err := ParseSpec([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseSpec(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestRetryable(t *testing.T) {
	base := errors.New("connection refused")
	if Retryable(base) || !Retryable(MarkRetryable(base)) || !errors.Is(MarkRetryable(base), base) {
		t.Fatal("MarkRetryable does not mark, or loses the cause")
	}
	if MarkRetryable(nil) != nil {
		t.Fatal("MarkRetryable(nil) != nil")
	}
	if Retryable(fmt.Errorf("x: %w", ErrTimeout)) || Retryable(&ExitError{Code: 1}) {
		t.Fatal("a timeout or an exit status is retryable by itself")
	}
}
