package validate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/outbound"
)

func intp(v int) *int { return &v }

func def(c *actions.Criteria) actions.Definition {
	return actions.Definition{Name: "restart-nginx", SuccessCriteria: c}
}

// loopbackClient is the outbound guard's client with 127.0.0.0/8 allowed,
// where httptest servers listen.
func loopbackClient() *http.Client {
	return outbound.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).HTTPClient(0)
}

func newValidator(t *testing.T, opts Options) *Validator {
	t.Helper()
	v, err := New(opts)
	require.NoError(t, err)
	return v
}

func TestNoCriteria(t *testing.T) {
	v := newValidator(t, Options{})
	got, err := v.Validate(t.Context(), def(nil), nil, executor.Result{ExitCode: 3})
	require.NoError(t, err)
	require.True(t, got.OK)
	require.Empty(t, got.Checks)
	require.Empty(t, got.Summary())
}

func TestExitCode(t *testing.T) {
	v := newValidator(t, Options{})
	for _, tc := range []struct {
		name       string
		want, got  int
		ok         bool
		wantDetail string
	}{
		{"zero wanted and got", 0, 0, true, "exit status 0"},
		{"non-zero", 0, 1, false, "exit status 1, want 0"},
		{"one wanted (grep found nothing)", 1, 1, true, "exit status 1"},
		{"zero when one is wanted", 1, 0, false, "exit status 0, want 1"},
		{"killed", 0, -1, false, "no exit status (not started, killed or timed out), want 0"},
		{"an HTTP status", 204, 204, true, "exit status 204"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Validate(t.Context(), def(&actions.Criteria{ExitCode: intp(tc.want)}), nil, executor.Result{ExitCode: tc.got})
			require.NoError(t, err)
			require.Equal(t, tc.ok, got.OK)
			require.Equal(t, []Check{{Name: CheckExitCode, OK: tc.ok, Detail: tc.wantDetail}}, got.Checks)
		})
	}
}

func TestOutputMatches(t *testing.T) {
	v := newValidator(t, Options{})
	for _, tc := range []struct {
		name      string
		expr      string
		output    string
		truncated bool
		ok        bool
		detail    string
	}{
		{"matches", `nginx.*active \(running\)`, "● nginx.service\n   Active: nginx is active (running) since", false, true, "output matches"},
		{"anywhere in the output", `^load: [0-9.]+$`, "cpu: 12\nload: 0.42\n", false, false, "does not match"},
		{"multiline flag", `(?m)^load: [0-9.]+$`, "cpu: 12\nload: 0.42\n", false, true, "output matches"},
		{"no match", `OK`, "FAILED", false, false, "output (6 bytes) does not match \"OK\""},
		{"empty output", `.`, "", false, false, "output (0 bytes) does not match"},
		{"truncated output says so", `done`, "xxxx", true, false, "the rest cut"},
		{"invalid expression fails without a panic", `(unclosed`, "(unclosed", false, false, "invalid regular expression: error parsing regexp"},
		{"backreferences are not RE2", `(a)\1`, "aa", false, false, "invalid regular expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Validate(t.Context(), def(&actions.Criteria{OutputMatches: tc.expr}), nil,
				executor.Result{Output: []byte(tc.output), Truncated: tc.truncated})
			require.NoError(t, err)
			require.Equal(t, tc.ok, got.OK)
			require.Len(t, got.Checks, 1)
			require.Equal(t, CheckOutputMatches, got.Checks[0].Name)
			require.Contains(t, got.Checks[0].Detail, tc.detail)
		})
	}
}

func TestAllCriteriaMustHold(t *testing.T) {
	v := newValidator(t, Options{})
	c := &actions.Criteria{ExitCode: intp(0), OutputMatches: "restarted"}
	got, err := v.Validate(t.Context(), def(c), nil, executor.Result{ExitCode: 0, Output: []byte("failed")})
	require.NoError(t, err)
	require.False(t, got.OK)
	require.Len(t, got.Checks, 2)
	require.True(t, got.Checks[0].OK)
	require.False(t, got.Checks[1].OK)
	require.True(t, strings.HasPrefix(got.Summary(), "failed: exit_code: exit status 0; output_matches: "), got.Summary())
	require.Equal(t, ValidationFailed, ValidationState(got.Summary()))
}

func TestHTTPProbe(t *testing.T) {
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		switch r.URL.Path {
		case "/health/web-01":
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(strings.Repeat("ok\n", 100_000))) // longer than the bound read
		case "/accepted":
			w.WriteHeader(http.StatusAccepted)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/redirect":
			http.Redirect(w, r, "/health/web-01", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	data := map[string]any{"event": map[string]any{"source_host": "web-01"}}
	v := newValidator(t, Options{Client: loopbackClient()})

	for _, tc := range []struct {
		name     string
		probe    actions.Probe
		ok       bool
		detail   string
		wantPath string
	}{
		{"rendered url, default any 2xx", actions.Probe{URL: srv.URL + "/health/{{.event.source_host}}"}, true, "status 200 (OK)", "/health/web-01"},
		{"202 is a 2xx", actions.Probe{URL: srv.URL + "/accepted"}, true, "status 202 (Accepted)", "/accepted"},
		{"503 is not", actions.Probe{URL: srv.URL + "/down"}, false, "status 503 (Service Unavailable), want 2xx", "/down"},
		{"expected status listed", actions.Probe{URL: srv.URL + "/down", ExpectedStatus: []int{503}}, true, "status 503", "/down"},
		{"200 not in the list", actions.Probe{URL: srv.URL + "/accepted", ExpectedStatus: []int{200, 204}}, false, "status 202 (Accepted), want 200, 204", "/accepted"},
		{"redirect followed", actions.Probe{URL: srv.URL + "/redirect"}, true, "status 200", "/health/web-01"},
		{"missing key does not render", actions.Probe{URL: srv.URL + "/{{.event.nope}}"}, false, "url does not render", ""},
		{"not http", actions.Probe{URL: "ftp://{{.event.source_host}}/x"}, false, "is not an absolute http or https URL", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotPath = ""
			got, err := v.Validate(t.Context(), def(&actions.Criteria{HTTPProbe: &tc.probe}), data, executor.Result{})
			require.NoError(t, err)
			require.Equal(t, tc.ok, got.OK, got.Checks)
			require.Len(t, got.Checks, 1)
			require.Equal(t, CheckHTTPProbe, got.Checks[0].Name)
			require.Contains(t, got.Checks[0].Detail, tc.detail)
			require.Equal(t, tc.wantPath, gotPath)
		})
	}
}

func TestHTTPProbeDetailHidesURLSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	v := newValidator(t, Options{Client: loopbackClient()})
	p := &actions.Probe{URL: strings.Replace(srv.URL, "http://", "http://user:hunter22@", 1) + "/status?token=s3cr3tvalue"}
	got, err := v.Validate(t.Context(), def(&actions.Criteria{HTTPProbe: p}), nil, executor.Result{})
	require.NoError(t, err)
	require.False(t, got.OK)
	d := got.Checks[0].Detail
	require.Contains(t, d, "/...: status 500")
	require.NotContains(t, d, "hunter22")
	require.NotContains(t, d, "s3cr3tvalue")
}

func TestHTTPProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	v := newValidator(t, Options{Client: loopbackClient()})
	p := &actions.Probe{URL: srv.URL + "/slow", Timeout: "50ms"}
	got, err := v.Validate(t.Context(), def(&actions.Criteria{HTTPProbe: p}), nil, executor.Result{})
	require.NoError(t, err)
	require.False(t, got.OK)
	require.Contains(t, got.Checks[0].Detail, "no answer within 50ms")
}

func TestHTTPProbeCallerContextEndsIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	v := newValidator(t, Options{Client: loopbackClient()})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := v.Validate(ctx, def(&actions.Criteria{HTTPProbe: &actions.Probe{URL: srv.URL}}), nil, executor.Result{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestHTTPProbeThroughTheGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, _ *http.Request) {
		t.Error("the guard let a probe reach loopback")
	}))
	defer srv.Close()
	v := newValidator(t, Options{Client: outbound.NewGuard(nil).HTTPClient(0)})
	got, err := v.Validate(t.Context(), def(&actions.Criteria{HTTPProbe: &actions.Probe{URL: srv.URL}}), nil, executor.Result{})
	require.NoError(t, err)
	require.False(t, got.OK)
	require.Contains(t, got.Checks[0].Detail, "loopback address")
}

func TestHTTPProbeWithoutClient(t *testing.T) {
	v := newValidator(t, Options{})
	got, err := v.Validate(t.Context(), def(&actions.Criteria{HTTPProbe: &actions.Probe{URL: "https://example.com/"}}), nil, executor.Result{})
	require.NoError(t, err)
	require.False(t, got.OK)
	require.Equal(t, "no HTTP client configured for probes", got.Checks[0].Detail)
}

func TestQuietDeferred(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	v := newValidator(t, Options{Now: func() time.Time { return now }})
	trigger := event.Event{ID: 42, EventType: "threshold_breach", SourceHost: "web-01", Fingerprint: "f00d",
		Template: &event.Template{ID: 7, Text: "CPU at <*>%"}, Title: "CPU at 97%"}
	// As the API shows it: JSON, event_data.template holding the template.
	b, err := json.Marshal(trigger)
	require.NoError(t, err)
	var shown map[string]any
	require.NoError(t, json.Unmarshal(b, &shown))
	finished := now.Add(-time.Second)

	for _, tc := range []struct {
		name string
		data map[string]any
		res  executor.Result
		want *QuietCheck
	}{
		{"from the event as the API shows it, at the run's end", map[string]any{"event": shown}, executor.Result{Finished: finished},
			&QuietCheck{Host: "web-01", Match: Match{EventType: "threshold_breach", TemplateID: 7}, EventID: 42, From: finished, Due: finished.Add(15 * time.Minute)}},
		{"an event.Event, without template: the fingerprint; now without an end", map[string]any{"event": event.Event{ID: 43, EventType: "disk", SourceHost: "db-01", Fingerprint: "beef"}}, executor.Result{},
			&QuietCheck{Host: "db-01", Match: Match{EventType: "disk", Fingerprint: "beef"}, EventID: 43, From: now, Due: now.Add(15 * time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Validate(t.Context(), def(&actions.Criteria{NoNewEventMinutes: 15}), tc.data, tc.res)
			require.NoError(t, err)
			require.True(t, got.OK)
			require.Empty(t, got.Checks)
			require.NotNil(t, got.Quiet)
			require.Equal(t, *tc.want, *got.Quiet)
			require.Equal(t, ValidationPending, ValidationState(got.Summary()))
		})
	}

	t.Run("no event fails the criterion", func(t *testing.T) {
		got, err := v.Validate(t.Context(), def(&actions.Criteria{NoNewEventMinutes: 15}), map[string]any{}, executor.Result{})
		require.NoError(t, err)
		require.False(t, got.OK)
		require.Nil(t, got.Quiet)
		require.Equal(t, []Check{{Name: CheckQuiet, Detail: "no triggering event in the step's data"}}, got.Checks)
	})
	t.Run("no host fails the criterion", func(t *testing.T) {
		got, err := v.Validate(t.Context(), def(&actions.Criteria{NoNewEventMinutes: 15}),
			map[string]any{"event": map[string]any{"id": 5, "event_type": "x"}}, executor.Result{})
		require.NoError(t, err)
		require.False(t, got.OK)
		require.Contains(t, got.Checks[0].Detail, "has no source_host")
	})
	t.Run("not deferred when an immediate check failed", func(t *testing.T) {
		got, err := v.Validate(t.Context(), def(&actions.Criteria{ExitCode: intp(0), NoNewEventMinutes: 15}),
			map[string]any{"event": shown}, executor.Result{ExitCode: 2})
		require.NoError(t, err)
		require.False(t, got.OK)
		require.Nil(t, got.Quiet)
	})
}

func TestSummaries(t *testing.T) {
	require.Equal(t, "passed: exit_code: exit status 0",
		Verdict{OK: true, Checks: []Check{{Name: CheckExitCode, OK: true, Detail: "exit status 0"}}}.Summary())
	due := time.Date(2026, 3, 2, 10, 15, 0, 0, time.UTC)
	require.Equal(t, "pending: no_new_event_minutes: due at 2026-03-02T10:15:00Z",
		Verdict{OK: true, Quiet: &QuietCheck{Due: due}}.Summary())
	require.Equal(t, "failed: no_new_event_minutes: new event 9", QuietSummary(false, "new event 9"))
	require.Equal(t, ValidationPassed, ValidationState(QuietSummary(true, "no new event")))
	require.Empty(t, ValidationState("something else: x"))
}

func TestNewRefusesBadOptions(t *testing.T) {
	_, err := New(Options{Lookback: -time.Second})
	require.Error(t, err)
	_, err = New(Options{MaxScan: -1})
	require.Error(t, err)
}
