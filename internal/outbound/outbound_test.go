package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
)

func TestCheck(t *testing.T) {
	g := NewGuard(nil)
	for _, tc := range []struct {
		addr   string
		reason string // "" when allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"169.254.1.1", "link-local"},
		{"169.254.169.254", "cloud metadata"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"fd00:ec2::254", "cloud metadata"},
		{"100.100.100.200", "cloud metadata"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fc00::1", "unique local"},
		{"fd12:3456::1", "unique local"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "loopback (embedded in 64:ff9b::7f00:1)"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata"},
		{"2002:7f00:1::1", "loopback (embedded"},
		{"2001:db8::1", "documentation"},
		{"192.0.2.1", "documentation"},
		{"198.18.0.1", "benchmarking"},
		// Public addresses.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"::ffff:8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"64:ff9b::808:808", ""},
		{"2002:808:808::1", ""},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := g.Check(netip.MustParseAddr(tc.addr))
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, notify.ErrRefused)
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			require.Contains(t, re.Reason, tc.reason)
			require.Contains(t, err.Error(), netip.MustParseAddr(tc.addr).WithZone("").Unmap().String())
		})
	}
}

func TestCheckAllow(t *testing.T) {
	allow, err := ParseAllow("10.0.0.0/8, 127.0.0.1 ,::1/128,169.254.0.0/16,fd00::/8,::ffff:192.168.0.0/112")
	require.NoError(t, err)
	g := NewGuard(allow)
	for addr, ok := range map[string]bool{
		"10.9.8.7":         true,
		"::ffff:10.9.8.7":  true, // mapped forms are checked unmapped
		"127.0.0.1":        true,
		"127.0.0.2":        false,
		"::1":              true,
		"169.254.1.1":      true,
		"192.168.3.4":      true,
		"192.169.0.1":      true, // public
		"172.16.0.1":       false,
		"fd12::1":          true,
		"fe80::1":          false,
		"169.254.169.254":  false, // metadata needs a prefix of its own
		"fd00:ec2::254":    false,
		"100.100.100.200":  false,
		"::ffff:127.0.0.1": true,
	} {
		err := g.Check(netip.MustParseAddr(addr))
		if ok {
			require.NoError(t, err, addr)
		} else {
			require.ErrorIs(t, err, notify.ErrRefused, addr)
		}
	}

	md, err := ParseAllow("169.254.169.254/32,fd00:ec2::254")
	require.NoError(t, err)
	g = NewGuard(md)
	require.NoError(t, g.Check(netip.MustParseAddr("169.254.169.254")))
	require.NoError(t, g.Check(netip.MustParseAddr("fd00:ec2::254")))
	require.ErrorIs(t, g.Check(netip.MustParseAddr("169.254.169.253")), notify.ErrRefused)
}

func TestParseAllow(t *testing.T) {
	got, err := ParseAllow("")
	require.NoError(t, err)
	require.Empty(t, got)

	got, err = ParseAllow("10.1.2.3/8,::1/128, 192.168.1.7 ,")
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("192.168.1.7/32"),
	}, got)

	got, err = ParseAllow("::ffff:10.0.0.0/104")
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, got)

	for in, want := range map[string]string{
		"10.0.0.0/33":        `entry 1 "10.0.0.0/33"`,
		"10.0.0.0/8,nope":    `entry 2 "nope"`,
		"localhost":          `entry 1 "localhost"`,
		"fe80::1%eth0":       "zone",
		"::ffff:10.0.0.0/90": "/96 or longer",
		"10.0.0.0/8;1.2.3.4": "want a CIDR prefix",
	} {
		_, err := ParseAllow(in)
		require.ErrorContains(t, err, want, in)
		require.ErrorContains(t, err, "--outbound-allow", in)
	}
}

func TestLooksLikeIPv4(t *testing.T) {
	for host, want := range map[string]bool{
		"2130706433":  true,
		"0x7f000001":  true,
		"0x7f.1":      true,
		"127.1":       true,
		"0177.0.0.1":  true,
		"127.0.0.1.":  true,
		"1.2.3.4":     true,
		"1.2.3.4.5":   false,
		"example.com": false,
		"deadbeef":    false,
		"0xdeadbeefz": false,
		"08.1":        false, // 8 is not an octal digit: a name
		"":            false,
		"1..2":        false,
		"0x":          true, // inet_aton reads it as 0
	} {
		require.Equal(t, want, looksLikeIPv4(host), host)
	}
}

// counter is a test server that counts the requests that reached it.
type counter struct {
	*httptest.Server
	hits atomic.Int64
}

func newCounter(t *testing.T, h http.HandlerFunc) *counter {
	t.Helper()
	c := &counter{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(c.Close)
	return c
}

func port(t *testing.T, s *httptest.Server) string {
	t.Helper()
	_, p, err := net.SplitHostPort(s.Listener.Addr().String())
	require.NoError(t, err)
	return p
}

func allowLocal(t *testing.T) *Guard {
	t.Helper()
	allow, err := ParseAllow("127.0.0.1/32")
	require.NoError(t, err)
	return NewGuard(allow)
}

func get(t *testing.T, c *http.Client, u string) error {
	t.Helper()
	resp, err := c.Get(u)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func TestHTTPClientRefuses(t *testing.T) {
	srv := newCounter(t, nil)
	p := port(t, srv.Server)

	// The same server is reachable through a guard that allows it ...
	require.NoError(t, get(t, allowLocal(t).HTTPClient(5*time.Second), srv.URL+"/ok"))
	require.EqualValues(t, 1, srv.hits.Load())

	// ... and refused, by each spelling of a refused address, by one that
	// does not.
	c := NewGuard(nil).HTTPClient(5 * time.Second)
	for _, tc := range []struct{ name, host, addr string }{
		{"loopback", "127.0.0.1", "127.0.0.1"},
		{"loopback v6", "[::1]", "::1"},
		{"mapped loopback", "[::ffff:127.0.0.1]", "127.0.0.1"},
		{"unspecified", "0.0.0.0", "0.0.0.0"},
		{"unspecified v6", "[::]", "::"},
		{"metadata", "169.254.169.254", "169.254.169.254"},
		{"decimal", "2130706433", "2130706433"},
		{"hex", "0x7f.1", "0x7f.1"},
		{"short", "127.1", "127.1"},
		{"octal", "0177.0.0.1", "0177.0.0.1"},
		// A name is checked once resolved, at connect time.
		{"name", "localhost", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := "http://reflex:hunter2@" + tc.host + ":" + p + "/hook/s3cr3t-path?token=s3cr3t"
			err := get(t, c, u)
			require.ErrorIs(t, err, notify.ErrRefused)
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			msg := re.Error()
			require.Contains(t, msg, tc.addr)
			stripped := StripURLError(err).Error()
			for _, secret := range []string{"hunter2", "s3cr3t", "token", "/hook"} {
				require.NotContains(t, msg, secret)
				require.NotContains(t, stripped, secret)
			}
		})
	}
	require.EqualValues(t, 1, srv.hits.Load(), "a refused request reached the server")
}

func TestHTTPClientSchemes(t *testing.T) {
	c := allowLocal(t).HTTPClient(time.Second)
	for _, u := range []string{"file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://127.0.0.1/x", "unix:///run/x.sock"} {
		err := get(t, c, u)
		require.ErrorIs(t, err, notify.ErrRefused, u)
		require.ErrorContains(t, err, "only http and https", u)
	}
}

// listen127 returns a server on another loopback address than 127.0.0.1,
// or skips when the system has none.
func listen127(t *testing.T, ip string) *counter {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	c := &counter{}
	c.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c.hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func TestHTTPClientRedirects(t *testing.T) {
	inner := listen127(t, "127.0.0.2")
	var target atomic.Value
	outer := newCounter(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, target.Load().(string), http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := allowLocal(t).HTTPClient(5 * time.Second)

	// A redirect to an allowed address is followed.
	target.Store(outer.URL + "/done")
	require.NoError(t, get(t, c, outer.URL+"/redirect"))

	// A redirect to a loopback address the guard does not allow is
	// refused, as is one to another scheme; neither reaches a server.
	for _, to := range []string{
		inner.URL + "/x?token=s3cr3t",
		"http://[::1]:" + port(t, outer.Server) + "/x",
		"http://127.0.0.3:" + port(t, inner.Server) + "/x",
		"http://2130706434:" + port(t, inner.Server) + "/x",
		"ftp://" + outer.Listener.Addr().String() + "/x",
	} {
		target.Store(to)
		err := get(t, c, outer.URL+"/redirect")
		require.ErrorIs(t, err, notify.ErrRefused, to)
		require.NotContains(t, StripURLError(err).Error(), "s3cr3t")
	}
	require.Zero(t, inner.hits.Load())

	// A loop stops after MaxRedirects.
	before := outer.hits.Load()
	err := get(t, c, outer.URL+"/loop")
	require.ErrorIs(t, err, notify.ErrRefused)
	require.ErrorContains(t, err, "more than 5 redirects")
	require.EqualValues(t, MaxRedirects+1, outer.hits.Load()-before)

	// The inner server is reachable once allowed: the refusal above was
	// the guard's.
	allow, err := ParseAllow("127.0.0.1/32,127.0.0.2/32")
	require.NoError(t, err)
	target.Store(inner.URL + "/x")
	require.NoError(t, get(t, NewGuard(allow).HTTPClient(5*time.Second), outer.URL+"/redirect"))
	require.EqualValues(t, 1, inner.hits.Load())
}

func TestDialContext(t *testing.T) {
	srv := newCounter(t, nil)
	addr := srv.Listener.Addr().String()
	ctx := context.Background()

	conn, err := allowLocal(t).DialContext(ctx, "tcp", addr)
	require.NoError(t, err)
	conn.Close()

	g := NewGuard(nil)
	for _, a := range []string{addr, "localhost:" + port(t, srv.Server), "[::ffff:127.0.0.1]:25", "2130706433:25", "[fe80::1%25lo]:25"} {
		_, err := g.DialContext(ctx, "tcp", a)
		require.ErrorIs(t, err, notify.ErrRefused, a)
	}
	for _, network := range []string{"udp", "unix", "ip4:icmp"} {
		_, err := allowLocal(t).DialContext(ctx, network, addr)
		require.ErrorIs(t, err, notify.ErrRefused, network)
	}
	_, err = g.DialContext(ctx, "tcp", "no-port")
	require.Error(t, err)
	require.False(t, errors.Is(err, notify.ErrRefused))
}

// The connect-time check itself, as the dialer calls it with resolved
// addresses: whatever a name or a literal resolved to is checked here.
func TestControl(t *testing.T) {
	g := NewGuard(nil)
	ctx := context.Background()
	for _, tc := range []struct {
		network, addr string
		refused       bool
	}{
		{"tcp4", "127.0.0.1:80", true},
		{"tcp6", "[::1]:80", true},
		{"tcp6", "[::ffff:127.0.0.1]:80", true},
		{"tcp6", "[fe80::1%eth0]:80", true},
		{"tcp4", "0.0.0.0:80", true},
		{"tcp4", "169.254.169.254:80", true},
		{"tcp4", "8.8.8.8:443", false},
		{"tcp6", "[2606:4700:4700::1111]:443", false},
		{"udp4", "8.8.8.8:53", true},
		{"tcp4", "garbage", true},
	} {
		err := g.control(ctx, tc.network, tc.addr, nil)
		if tc.refused {
			require.ErrorIs(t, err, notify.ErrRefused, tc.addr)
		} else {
			require.NoError(t, err, tc.addr)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/XYZ":                     "https://hooks.slack.com/...",
		"https://user:pw@example.com:8443/?token=x":                      "https://example.com:8443/...",
		"https://example.com":                                            "https://example.com",
		"https://example.com/":                                           "https://example.com",
		"http://example.com#frag":                                        "http://example.com/...",
		"::not a url":                                                    "(invalid URL)",
		"mailto:someone@example.com":                                     "(invalid URL)",
		"https://outlook.office.com/webhook/abc@def/IncomingWebhook/x/y": "https://outlook.office.com/...",
	} {
		require.Equal(t, want, RedactURL(in), in)
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	err := NewGuard(nil).Check(netip.MustParseAddr("10.0.0.1"))
	require.EqualError(t, err, "outbound: connection to 10.0.0.1 refused: private address (allow it with --outbound-allow)")
	require.True(t, errors.Is(err, notify.ErrRefused))
	require.False(t, notify.Retryable(err))
	require.True(t, strings.HasPrefix(StripURLError(err).Error(), "outbound:"))
}
