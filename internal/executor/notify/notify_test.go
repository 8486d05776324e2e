package notifyexec

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/notify/receiver"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// peer is a webhook receiver's far end: it records what it got and
// answers the status its path names (/ok, /down, /bad, /slow).
type peer struct {
	*httptest.Server
	mu    sync.Mutex
	got   map[string][]received
	slow  chan struct{}
	fails int // /flaky answers 503 this many times, then 204
}

type received struct {
	body   []byte
	header http.Header
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	p := &peer{got: map[string][]received{}, slow: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got[r.URL.Path] = append(p.got[r.URL.Path], received{b, r.Header.Clone()})
		flaky := p.fails > 0
		if r.URL.Path == "/flaky" && flaky {
			p.fails--
		}
		p.mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/bad":
			http.Error(w, "no such hook", http.StatusNotFound)
		case "/flaky":
			if flaky {
				w.WriteHeader(http.StatusServiceUnavailable)
			} else {
				w.WriteHeader(http.StatusNoContent)
			}
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-p.slow:
			}
		}
	}))
	t.Cleanup(func() {
		close(p.slow)
		p.Close()
	})
	return p
}

func (p *peer) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got[path])
}

func (p *peer) last(t *testing.T, path string) received {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NotEmpty(t, p.got[path], "nothing posted to %s", path)
	return p.got[path][len(p.got[path])-1]
}

var clock = func() time.Time { return time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) }

func localGuard() *outbound.Guard {
	return outbound.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

// policy is a notification policy whose receivers are webhooks to p.
func policy(t *testing.T, p *peer) *notify.Policy {
	t.Helper()
	doc := fmt.Sprintf(`
receivers:
  - name: oncall
    webhook: {url: %q, secret: "whsec-0123456789"}
  - name: ops-down
    webhook: {url: %q}
  - name: ops-bad
    webhook: {url: %q}
  - name: ops-flaky
    webhook: {url: %q}
  - name: ops-slow
    webhook: {url: %q}
  - name: private
    webhook: {url: "http://10.1.2.3:9/hook"}
route:
  receiver: oncall
`, p.URL+"/ok", p.URL+"/down", p.URL+"/bad", p.URL+"/flaky", p.URL+"/slow")
	pol, err := notify.ParsePolicy([]byte(doc), "application/yaml")
	require.NoError(t, err)
	return pol
}

func newExec(t *testing.T, rs Receivers, cfg string) *Executor {
	t.Helper()
	spec, err := executor.ParseSpec([]byte(cfg))
	require.NoError(t, err)
	c, err := Parse(spec)
	require.NoError(t, err)
	e, err := New(c, Options{Receivers: rs, Guard: localGuard(), Now: clock})
	require.NoError(t, err)
	return e
}

func data() map[string]any {
	return map[string]any{
		"event": map[string]any{
			"id": 12345, "event_type": "threshold_breach", "severity": "critical", "source_system": "nagios",
			"source_host": "web-01", "source_service": "nginx", "title": "CPU at 97%",
		},
		"steps": map[string]any{"diagnose": map[string]any{"stdout": "top: nginx 95%"}},
	}
}

func TestSendsToEveryChannel(t *testing.T) {
	p := newPeer(t)
	e := newExec(t, policy(t, p), `{"type":"notification","channels":["oncall"],"title":"{{.event.title}} on {{.event.source_host}}","text":"diagnosis: {{.steps.diagnose.stdout}}"}`)
	res, err := e.Execute(t.Context(), executor.Request{ExecutionID: 7, Step: "tell-oncall", Data: data()})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode)
	require.Equal(t, "oncall: sent\n", string(res.Output))
	require.Equal(t, map[string]string{"output": "oncall: sent\n", "sent": "oncall", "failed": ""}, res.Outputs)

	got := p.last(t, "/ok")
	require.Equal(t, `{"receiver":"oncall","status":"firing","group_key":"autonomous/7/tell-oncall","alerts":[`+
		`{"rule_id":0,"rule_name":"reflex autonomous","event_id":12345,"source_host":"web-01","severity":"critical",`+
		`"title":"CPU at 97% on web-01\ndiagnosis: top: nginx 95%","fired_at":"2026-03-02T10:00:00Z"}]}`, string(got.body))
	// Signed as the receiver signs.
	require.NoError(t, receiver.Verify("whsec-0123456789", got.header.Get(receiver.SignatureHeader), got.body, clock(), time.Minute))
}

func TestPartialFailure(t *testing.T) {
	p := newPeer(t)
	e := newExec(t, policy(t, p), `{"type":"notification","channels":["oncall","ops-bad"],"title":"t"}`)
	res, err := e.Execute(t.Context(), executor.Request{ExecutionID: 1, Step: "s", Data: data()})
	require.Error(t, err)
	require.False(t, executor.Retryable(err), "a 404 is permanent: %v", err)
	require.NotErrorIs(t, err, executor.ErrRefused)
	require.Equal(t, 1, res.ExitCode)
	require.Equal(t, "oncall", res.Outputs["sent"])
	require.Equal(t, "ops-bad", res.Outputs["failed"])
	require.Contains(t, string(res.Output), "oncall: sent\nops-bad: failed: webhook: post http://127.0.0.1:")
	require.Contains(t, string(res.Output), "404 Not Found: no such hook")
	require.Contains(t, err.Error(), "1 of 2 channels failed: ops-bad:")
}

func TestTransientFailureIsRetryableAndNotResent(t *testing.T) {
	p := newPeer(t)
	p.fails = 1
	e := newExec(t, policy(t, p), `{"type":"notification","channels":["oncall","ops-flaky"],"title":"t"}`)
	req := executor.Request{ExecutionID: 9, Step: "notify", Data: data()}
	res, err := e.Execute(t.Context(), req)
	require.Error(t, err)
	require.True(t, executor.Retryable(err), "a 503 is worth a retry: %v", err)
	require.Equal(t, 1, res.ExitCode)
	require.Equal(t, "ops-flaky", res.Outputs["failed"])

	// The orchestrator's retry: oncall already has it.
	res, err = e.Execute(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode)
	require.Equal(t, "oncall: sent (by an earlier attempt)\nops-flaky: sent\n", string(res.Output))
	require.Equal(t, "oncall,ops-flaky", res.Outputs["sent"])
	require.Equal(t, 1, p.count("/ok"))
	require.Equal(t, 2, p.count("/flaky"))

	// Another execution is another notification.
	_, err = e.Execute(t.Context(), executor.Request{ExecutionID: 10, Step: "notify", Data: data()})
	require.NoError(t, err)
	require.Equal(t, 2, p.count("/ok"))
}

func TestAllDownIsRetryable(t *testing.T) {
	p := newPeer(t)
	e := newExec(t, policy(t, p), `{"type":"notification","channels":["ops-down"],"title":"t"}`)
	res, err := e.Execute(t.Context(), executor.Request{Data: data()})
	require.True(t, executor.Retryable(err), "%v", err)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, string(res.Output), "503 Service Unavailable")
}

func TestRefusals(t *testing.T) {
	p := newPeer(t)
	pol := policy(t, p)
	for _, tc := range []struct {
		name, cfg, want string
		data            map[string]any
	}{
		{"unknown channel", `{"type":"notification","channels":["oncall","nope"],"title":"t"}`, `channel "nope" is not a receiver of the notification policy`, data()},
		{"title does not render", `{"type":"notification","channels":["oncall"],"title":"{{.event.missing}}"}`, "title:", data()},
		{"text does not render", `{"type":"notification","channels":["oncall"],"title":"t","text":"{{.steps.other.stdout}}"}`, "text:", data()},
		{"the guard refuses the only channel", `{"type":"notification","channels":["private"],"title":"t"}`, "private address", data()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExec(t, pol, tc.cfg)
			res, err := e.Execute(t.Context(), executor.Request{ExecutionID: 3, Step: "x", Data: tc.data})
			require.ErrorIs(t, err, executor.ErrRefused)
			require.False(t, executor.Retryable(err))
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, -1, res.ExitCode)
			require.Equal(t, 0, p.count("/ok"), "nothing is sent when a run is refused")
		})
	}
}

func TestUnusableReceiverIsARefusal(t *testing.T) {
	rs := ReceiversFunc(func(name string) (notify.Receiver, bool) {
		return notify.Receiver{Name: name, Webhook: &notify.WebhookConfig{URL: "ftp://example.com/x"}}, true
	})
	e := newExec(t, rs, `{"type":"notification","channels":["odd"],"title":"t"}`)
	_, err := e.Execute(t.Context(), executor.Request{Data: data()})
	require.ErrorIs(t, err, executor.ErrRefused)
	require.Contains(t, err.Error(), `channel "odd" cannot be used`)
}

func TestTimeout(t *testing.T) {
	p := newPeer(t)
	e := newExec(t, policy(t, p), `{"type":"notification","channels":["ops-slow"],"title":"t","timeout":"50ms"}`)
	res, err := e.Execute(t.Context(), executor.Request{Data: data()})
	require.ErrorIs(t, err, executor.ErrTimeout)
	require.True(t, executor.Retryable(err))
	require.Equal(t, 1, res.ExitCode)
}

func TestCallerCancelIsNotRetryable(t *testing.T) {
	p := newPeer(t)
	e := newExec(t, policy(t, p), `{"type":"notification","channels":["ops-slow"],"title":"t"}`)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.Execute(ctx, executor.Request{Data: data()})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, executor.Retryable(err))
}

func TestWithoutEvent(t *testing.T) {
	p := newPeer(t)
	e := newExec(t, policy(t, p), `{"type":"notification","channels":["oncall"],"title":"execution {{.execution.id}} needs a human"}`)
	_, err := e.Execute(t.Context(), executor.Request{ExecutionID: 4, Step: "escalate", Data: map[string]any{"execution": map[string]any{"id": 4}}})
	require.NoError(t, err)
	var n notify.Notification
	require.NoError(t, json.Unmarshal(p.last(t, "/ok").body, &n))
	require.Len(t, n.Alerts, 1)
	require.Equal(t, "execution 4 needs a human", n.Alerts[0].Title)
	require.Zero(t, n.Alerts[0].EventID)
}

func TestNewRequires(t *testing.T) {
	c := Config{Channels: []string{"a"}, Title: "t", Timeout: time.Second}
	_, err := New(c, Options{Guard: localGuard()})
	require.ErrorIs(t, err, executor.ErrInvalid)
	_, err = New(c, Options{Receivers: ReceiversFunc(func(string) (notify.Receiver, bool) { return notify.Receiver{}, false })})
	require.ErrorIs(t, err, executor.ErrInvalid)
	_, err = New(Config{}, Options{Guard: localGuard(), Receivers: ReceiversFunc(func(string) (notify.Receiver, bool) { return notify.Receiver{}, false })})
	require.ErrorIs(t, err, executor.ErrInvalid)
	require.True(t, strings.Contains(err.Error(), "channels"))
}
