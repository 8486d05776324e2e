package receiver

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
)

func TestWebhookSendsSignedBody(t *testing.T) {
	p := newPeer(t, 204)
	s, err := New(notify.Receiver{Name: "ops", Webhook: &notify.WebhookConfig{URL: p.URL + "/reflex", Secret: "a long random string"}}, localGuard(t), opts())
	require.NoError(t, err)
	require.NoError(t, s.Send(context.Background(), sample()))

	got := p.only(t)
	require.Equal(t, "POST", got.method)
	require.Equal(t, "/reflex", got.path)
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	require.Equal(t, "reflex-test", got.header.Get("User-Agent"))
	require.Equal(t, `{"receiver":"ops","status":"firing","group_key":"{}:{rule=\"High CPU Alert\",source_host=\"db-01\"}","alerts":[`+
		`{"rule_id":1,"rule_name":"High CPU Alert","event_id":12345,"source_host":"db-01","severity":"high","title":"CPU 92%","fired_at":"2024-12-01T10:00:00Z"},`+
		`{"rule_id":1,"rule_name":"High CPU Alert","event_id":12346,"source_host":"db-01","severity":"critical","title":"CPU 97%","fired_at":"2024-12-01T10:01:00Z"}]}`,
		string(got.body))

	sig := got.header.Get(SignatureHeader)
	require.True(t, strings.HasPrefix(sig, "t="+strconv.FormatInt(clock().Unix(), 10)+",v1="), sig)
	// The example of docs/receivers.md.
	require.Equal(t, "t=1733047500,v1=cc3cb6d2fc34b108b7d8656c8e8c404b9fa1d570f8c3b245aeeee670454d944c", sig)
	require.NoError(t, Verify("a long random string", sig, got.body, clock().Add(time.Minute), 5*time.Minute))
	require.ErrorIs(t, Verify("other", sig, got.body, clock(), 5*time.Minute), ErrSignatureMismatch)
	tampered := strings.Replace(string(got.body), "db-01", "db-02", 1)
	require.ErrorIs(t, Verify("a long random string", sig, []byte(tampered), clock(), 5*time.Minute), ErrSignatureMismatch)
	// A replay, ten minutes on.
	require.ErrorIs(t, Verify("a long random string", sig, got.body, clock().Add(10*time.Minute), 5*time.Minute), ErrSignatureExpired)
}

func TestWebhookWithoutSecretIsUnsigned(t *testing.T) {
	p := newPeer(t, 200)
	s, err := New(notify.Receiver{Name: "ops", Webhook: &notify.WebhookConfig{URL: p.URL}}, localGuard(t), opts())
	require.NoError(t, err)
	n := sample()
	n.Alerts = nil
	require.NoError(t, s.Send(context.Background(), n))
	got := p.only(t)
	require.Empty(t, got.header.Get(SignatureHeader))
	require.Contains(t, string(got.body), `"alerts":[]`)
}

func TestSign(t *testing.T) {
	// A fixed vector, as `printf '1700000000.{}' | openssl dgst -sha256
	// -hmac secret` gives it.
	require.Equal(t, "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163",
		Sign("secret", time.Unix(1700000000, 0), []byte("{}")))
}

func TestVerify(t *testing.T) {
	body := []byte(`{"receiver":"ops"}`)
	now := time.Unix(1700000000, 0)
	good := Sign("s", now, body)
	mac := strings.TrimPrefix(good, "t=1700000000,v1=")
	for _, tc := range []struct {
		name, header string
		now          time.Time
		want         error
	}{
		{"good", good, now, nil},
		{"spaces and order", " v1=" + mac + " , t=1700000000 ", now, nil},
		{"rotated: one of several v1", "t=1700000000,v1=" + strings.Repeat("0", 64) + ",v1=" + mac, now, nil},
		{"unknown key ignored", good + ",v0=abc", now, nil},
		{"at the edge of tolerance", good, now.Add(5 * time.Minute), nil},
		{"from the future within tolerance", good, now.Add(-5 * time.Minute), nil},
		{"replay", good, now.Add(5*time.Minute + time.Second), ErrSignatureExpired},
		{"from the future", good, now.Add(-6 * time.Minute), ErrSignatureExpired},
		{"empty", "", now, ErrSignatureMalformed},
		{"no t", "v1=" + mac, now, ErrSignatureMalformed},
		{"no v1", "t=1700000000", now, ErrSignatureMalformed},
		{"two t", "t=1700000000,t=1700000000,v1=" + mac, now, ErrSignatureMalformed},
		{"t not a number", "t=17e8,v1=" + mac, now, ErrSignatureMalformed},
		{"negative t", "t=-1,v1=" + mac, now, ErrSignatureMalformed},
		{"t too large", "t=99999999999999999999,v1=" + mac, now, ErrSignatureMalformed},
		{"short v1", "t=1700000000,v1=" + mac[:62], now, ErrSignatureMalformed},
		{"v1 not hex", "t=1700000000,v1=" + strings.Repeat("z", 64), now, ErrSignatureMalformed},
		{"no equals", "t=1700000000,v1", now, ErrSignatureMalformed},
		{"wrong mac", "t=1700000000,v1=" + strings.Repeat("ab", 32), now, ErrSignatureMismatch},
		{"other timestamp, same mac", "t=1700000001,v1=" + mac, now, ErrSignatureMismatch},
		{"huge", "t=1," + strings.Repeat("x=y,", 2000), now, ErrSignatureMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify("s", tc.header, body, tc.now, 5*time.Minute)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
	require.ErrorIs(t, Verify("", good, body, now, time.Minute), ErrSignatureMismatch)
	// No tolerance given: the default.
	require.NoError(t, Verify("s", good, body, now.Add(DefaultTolerance), 0))
	require.ErrorIs(t, Verify("s", good, body, now.Add(DefaultTolerance+time.Second), 0), ErrSignatureExpired)
}
