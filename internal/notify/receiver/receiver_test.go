package receiver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/outbound"
)

var fired = time.Date(2024, 12, 1, 10, 0, 0, 0, time.UTC)

// clock is the fake time of the tests.
func clock() time.Time { return time.Date(2024, 12, 1, 10, 5, 0, 0, time.UTC) }

// sample is a group of two alerts of the seed's High CPU Alert on one host.
func sample() notify.Notification {
	return notify.Notification{
		Receiver: "ops",
		Status:   "firing",
		GroupKey: `{}:{rule="High CPU Alert",source_host="db-01"}`,
		Alerts: []notify.Alert{
			{RuleID: 1, RuleName: "High CPU Alert", EventID: 12345, SourceHost: "db-01", Severity: "high",
				Title: "CPU 92%", FiredAt: fired, Labels: map[string]string{"rule": "High CPU Alert"}},
			{RuleID: 1, RuleName: "High CPU Alert", EventID: 12346, SourceHost: "db-01", Severity: "critical",
				Title: "CPU 97%", FiredAt: fired.Add(time.Minute)},
		},
	}
}

// localGuard allows the test servers on 127.0.0.1 and nothing else.
func localGuard(t *testing.T) *outbound.Guard {
	t.Helper()
	return outbound.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
}

func opts() Options { return Options{Timeout: 5 * time.Second, Now: clock, UserAgent: "reflex-test"} }

// request is what a peer received.
type request struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// peer is a local HTTP receiver that records what it gets and answers
// status (and answer) each time.
type peer struct {
	*httptest.Server
	mu       sync.Mutex
	got      []request
	status   int
	answer   string
	handlerF http.HandlerFunc
}

func newPeer(t *testing.T, status int) *peer {
	t.Helper()
	p := &peer{status: status}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got = append(p.got, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		h, status, answer := p.handlerF, p.status, p.answer
		p.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *peer) requests() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.got...)
}

func (p *peer) set(status int, answer string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.answer = status, answer
}

// only returns the one request the peer received.
func (p *peer) only(t *testing.T) request {
	t.Helper()
	got := p.requests()
	require.Len(t, got, 1)
	return got[0]
}

func isPermanent(err error) bool {
	var p *notify.PermanentError
	return errors.As(err, &p)
}

func TestNewValidates(t *testing.T) {
	g := localGuard(t)
	for _, tc := range []struct {
		name string
		r    notify.Receiver
		want string
	}{
		{"none", notify.Receiver{Name: "x"}, "exactly one of"},
		{"two", notify.Receiver{Name: "x", Slack: &notify.SlackConfig{URL: "https://a.example/"}, Teams: &notify.TeamsConfig{URL: "https://b.example/"}}, "2 set"},
		{"no url", notify.Receiver{Name: "x", Webhook: &notify.WebhookConfig{}}, "webhook: url is required"},
		{"bad url", notify.Receiver{Name: "x", Slack: &notify.SlackConfig{URL: "https://hooks.slack.com/services/T0/B0/s3cr3t\x7f"}}, "slack: url is not a valid URL"},
		{"bad host", notify.Receiver{Name: "x", Slack: &notify.SlackConfig{URL: "https://hooks slack.com/services/s3cr3t"}}, "slack: url is not a valid URL"},
		{"scheme", notify.Receiver{Name: "x", Teams: &notify.TeamsConfig{URL: "ftp://example.com/s3cr3t"}}, "scheme must be http or https"},
		{"no host", notify.Receiver{Name: "x", Webhook: &notify.WebhookConfig{URL: "https:///s3cr3t"}}, "no host"},
		{"no routing key", notify.Receiver{Name: "x", PagerDuty: &notify.PagerDutyConfig{}}, "routing_key is required"},
		{"no to", notify.Receiver{Name: "x", Email: &notify.EmailConfig{From: "a@example.com", Smarthost: "smtp.example:587"}}, "to: at least one"},
		{"bad to", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com", "nope"}, From: "a@example.com", Smarthost: "smtp.example:587"}}, `to[1]: "nope"`},
		{"bad from", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com"}, From: "", Smarthost: "smtp.example:587"}}, "from:"},
		{"bad smarthost", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com"}, From: "a@example.com", Smarthost: "smtp.example"}}, "smarthost"},
		{"bad port", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com"}, From: "a@example.com", Smarthost: "smtp.example:smtp"}}, "no valid port"},
		{"both passwords", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com"}, From: "a@example.com", Smarthost: "smtp.example:587", Username: "u", Password: "s3cr3t", PasswordFile: "/x"}}, "exclusive"},
		{"password without user", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com"}, From: "a@example.com", Smarthost: "smtp.example:587", Password: "s3cr3t"}}, "needs a username"},
		{"user without password", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com"}, From: "a@example.com", Smarthost: "smtp.example:587", Username: "u"}}, "needs password or password_file"},
		{"missing password file", notify.Receiver{Name: "x", Email: &notify.EmailConfig{To: []string{"ok@example.com"}, From: "a@example.com", Smarthost: "smtp.example:587", Username: "u", PasswordFile: "/nonexistent/s3cr3t-file"}}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.r, g, opts())
			require.Nil(t, s)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, `receiver "x"`)
			require.True(t, isPermanent(err))
			if !strings.Contains(tc.name, "password file") {
				require.NotContains(t, err.Error(), "s3cr3t")
			}
		})
	}

	_, err := New(notify.Receiver{Name: "x", Slack: &notify.SlackConfig{URL: "https://hooks.slack.com/x"}}, nil, Options{})
	require.ErrorContains(t, err, "outbound guard is required")

	for _, r := range []notify.Receiver{
		{Name: "w", Webhook: &notify.WebhookConfig{URL: "https://hooks.example/reflex"}},
		{Name: "s", Slack: &notify.SlackConfig{URL: "https://hooks.slack.com/services/T0/B0/X"}},
		{Name: "t", Teams: &notify.TeamsConfig{URL: "https://example.webhook.office.com/x"}},
		{Name: "p", PagerDuty: &notify.PagerDutyConfig{RoutingKey: "k"}},
		{Name: "e", Email: &notify.EmailConfig{To: []string{"Oncall <oncall@example.com>"}, From: "reflex@example.com", Smarthost: "smtp.example:587"}},
	} {
		s, err := New(r, g, Options{})
		require.NoError(t, err, r.Name)
		require.NotNil(t, s)
	}
}

// Every HTTP receiver classifies answers the same way; the webhook stands
// for them.
func TestStatusClassification(t *testing.T) {
	p := newPeer(t, http.StatusOK)
	s, err := New(notify.Receiver{Name: "ops", Webhook: &notify.WebhookConfig{URL: p.URL + "/hook"}}, localGuard(t), opts())
	require.NoError(t, err)
	for _, tc := range []struct {
		status int
		want   string // ok, permanent, retryable
	}{
		{200, "ok"}, {202, "ok"}, {204, "ok"},
		{400, "permanent"}, {401, "permanent"}, {403, "permanent"}, {404, "permanent"}, {410, "permanent"}, {413, "permanent"},
		{408, "retryable"}, {429, "retryable"},
		{500, "retryable"}, {502, "retryable"}, {503, "retryable"}, {504, "retryable"},
		{304, "permanent"},
	} {
		p.set(tc.status, "answer of the peer")
		err := s.Send(context.Background(), sample())
		switch tc.want {
		case "ok":
			require.NoError(t, err, tc.status)
		case "permanent":
			require.Error(t, err, tc.status)
			require.True(t, isPermanent(err), tc.status)
			require.False(t, notify.Retryable(err), tc.status)
		case "retryable":
			require.Error(t, err, tc.status)
			require.False(t, isPermanent(err), tc.status)
			require.True(t, notify.Retryable(err), tc.status)
		}
		if err != nil {
			require.ErrorContains(t, err, http.StatusText(tc.status))
			if tc.status != 304 { // a 304 has no body
				require.ErrorContains(t, err, "answer of the peer")
			}
		}
	}
}

func TestTimeoutAndConnectionErrorsAreRetryable(t *testing.T) {
	// A peer that answers only once the client gave up.
	release := make(chan struct{})
	p := newPeer(t, 200)
	p.handlerF = func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	t.Cleanup(func() { close(release) })
	o := opts()
	o.Timeout = 200 * time.Millisecond
	s, err := New(notify.Receiver{Name: "ops", Slack: &notify.SlackConfig{URL: p.URL + "/services/T0/B0/s3cr3t"}}, localGuard(t), o)
	require.NoError(t, err)
	err = s.Send(context.Background(), sample())
	require.Error(t, err)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "%v", err)
	require.True(t, notify.Retryable(err))
	require.NotContains(t, err.Error(), "s3cr3t")

	// The caller's deadline works as well.
	s, err = New(notify.Receiver{Name: "ops", Slack: &notify.SlackConfig{URL: p.URL + "/services/T0/B0/s3cr3t"}}, localGuard(t), opts())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = s.Send(ctx, sample())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, notify.Retryable(err))

	// Nobody listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	s, err = New(notify.Receiver{Name: "ops", PagerDuty: &notify.PagerDutyConfig{RoutingKey: "R0UTINGKEY", URL: "http://" + addr + "/v2/enqueue"}}, localGuard(t), opts())
	require.NoError(t, err)
	err = s.Send(context.Background(), sample())
	require.ErrorContains(t, err, "connection refused")
	require.False(t, errors.Is(err, notify.ErrRefused))
	require.True(t, notify.Retryable(err))
}

func TestRefusedByGuard(t *testing.T) {
	p := newPeer(t, 200)
	g := outbound.NewGuard(nil)
	for _, r := range []notify.Receiver{
		{Name: "w", Webhook: &notify.WebhookConfig{URL: p.URL + "/hook?token=s3cr3t", Secret: "k"}},
		{Name: "s", Slack: &notify.SlackConfig{URL: p.URL + "/services/T0/B0/s3cr3t"}},
		{Name: "t", Teams: &notify.TeamsConfig{URL: p.URL + "/workflows/s3cr3t"}},
		{Name: "p", PagerDuty: &notify.PagerDutyConfig{RoutingKey: "s3cr3t", URL: p.URL + "/v2/enqueue"}},
		{Name: "e", Email: &notify.EmailConfig{To: []string{"a@example.com"}, From: "b@example.com", Smarthost: p.Listener.Addr().String()}},
	} {
		s, err := New(r, g, opts())
		require.NoError(t, err)
		err = s.Send(context.Background(), sample())
		require.ErrorIs(t, err, notify.ErrRefused, r.Name)
		require.False(t, notify.Retryable(err), r.Name)
		require.ErrorContains(t, err, "127.0.0.1", r.Name)
		require.ErrorContains(t, err, "loopback", r.Name)
		require.NotContains(t, err.Error(), "s3cr3t", r.Name)
	}
	require.Empty(t, p.requests())
}

// Slack's and Teams' URLs are secrets, and a peer may echo what it got:
// neither reaches an error.
func TestErrorsCarryNoSecret(t *testing.T) {
	p := newPeer(t, 200)
	p.handlerF = func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "no_service "+r.URL.String()+" "+string(body))
	}
	for _, r := range []notify.Receiver{
		{Name: "s", Slack: &notify.SlackConfig{URL: p.URL + "/services/T0A/B0B/s3cr3tT0KEN"}},
		{Name: "t", Teams: &notify.TeamsConfig{URL: "http://user:s3cr3tPASS@" + p.Listener.Addr().String() + "/powerautomate/s3cr3tFLOW?sig=s3cr3tSIG&sv=1.0"}},
		{Name: "p", PagerDuty: &notify.PagerDutyConfig{RoutingKey: "s3cr3tR0UTING", URL: p.URL + "/v2/enqueue"}},
	} {
		s, err := New(r, localGuard(t), opts())
		require.NoError(t, err)
		err = s.Send(context.Background(), sample())
		require.True(t, isPermanent(err), r.Name)
		require.ErrorContains(t, err, "400 Bad Request")
		require.ErrorContains(t, err, "no_service")
		require.ErrorContains(t, err, "http://127.0.0.1:")
		require.NotContains(t, err.Error(), "s3cr3t", r.Name)
	}
}
