package event

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFingerprint(t *testing.T) {
	base := Event{SourceSystem: "prometheus", SourceHost: "web-01", SourceService: "nginx", EventType: "threshold_breach", Severity: Critical, Title: "CPU 97%"}
	with := func(f func(e *Event)) *Event {
		e := base
		f(&e)
		return &e
	}
	same := []struct {
		name string
		e    *Event
	}{
		{"decimal number", with(func(e *Event) { e.Title = "CPU 98.5%" })},
		{"comma number", with(func(e *Event) { e.Title = "CPU 1,234%" })},
		{"long number", with(func(e *Event) { e.Title = "CPU 100000%" })},
		{"other fields do not count", with(func(e *Event) {
			e.ID, e.Description, e.Tags, e.Priority = 42, "d", []string{"x"}, 7
			e.Data = map[string]any{"a": 1}
		})},
	}
	fp := Fingerprint(&base)
	require.NotEmpty(t, fp)
	require.Equal(t, fp, Fingerprint(&base), "deterministic")
	for _, tt := range same {
		t.Run("same/"+tt.name, func(t *testing.T) {
			require.Equal(t, fp, Fingerprint(tt.e))
		})
	}
	differ := []struct {
		name string
		e    *Event
	}{
		{"host", with(func(e *Event) { e.SourceHost = "web-02" })},
		{"service", with(func(e *Event) { e.SourceService = "apache" })},
		{"source", with(func(e *Event) { e.SourceSystem = "nagios" })},
		{"event type", with(func(e *Event) { e.EventType = "other" })},
		{"severity", with(func(e *Event) { e.Severity = High })},
		{"title words", with(func(e *Event) { e.Title = "RAM 97%" })},
		{"number becomes word", with(func(e *Event) { e.Title = "CPU high%" })},
		{"two numbers", with(func(e *Event) { e.Title = "CPU 9 7%" })},
		// Field boundaries are kept: moving text between fields differs.
		{"boundary", with(func(e *Event) { e.SourceSystem, e.SourceHost = "prometheusweb-01", "" })},
	}
	for _, tt := range differ {
		t.Run("differ/"+tt.name, func(t *testing.T) {
			require.NotEqual(t, fp, Fingerprint(tt.e))
		})
	}
}

func TestMaskDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"no digits", "no digits"},
		{"CPU 97%", "CPU #%"},
		{"CPU 98.5%", "CPU #%"},
		{"1,234,567 rows", "# rows"},
		{"v1.2.3", "v#"},
		{"ends with 5.", "ends with #."},
		{"a,b 1, 2", "a,b #, #"},
		{"192.168.0.1:8080", "#:#"},
		{"disk sda1 at 91% (120GB)", "disk sda# at #% (#GB)"},
		{"é9é", "é#é"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, string(maskDigits(tt.in)))
		})
	}
}
