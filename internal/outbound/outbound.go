// Package outbound is the one way reflex connects to the outside world on a
// user's behalf: the receivers of notifications (webhooks, Slack, Teams,
// PagerDuty, SMTP) dial through a Guard, which refuses addresses inside the
// machine or its private network (loopback, link-local, private,
// carrier-grade NAT, multicast, cloud metadata ...) unless the operator
// allows them with --outbound-allow.
//
// The check runs on the resolved address at connect time (net.Dialer's
// ControlContext), so that neither a name that resolves to a refused
// address, nor DNS rebinding, nor a redirect gets around it.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reflex-ops/reflex/internal/notify"
)

// MaxRedirects is how many redirects an HTTP client of a Guard follows;
// one more is refused.
const MaxRedirects = 5

// RefusedError is the error of a connection the Guard refused. It wraps
// notify.ErrRefused. Its message names the address (or the scheme, or the
// host literal) and why, never a URL's path, query or userinfo.
type RefusedError struct {
	// Addr is the refused address and port; the zero value when the
	// refusal is not about an address (a scheme, a redirect count).
	Addr netip.AddrPort
	// Host is the host as written when it was refused before resolution
	// (a non-canonical IPv4 literal such as 2130706433).
	Host string
	// Reason says what the address is ("loopback", "private" ...) or what
	// else was refused.
	Reason string
}

// Error says what was refused and why.
func (e *RefusedError) Error() string {
	switch {
	case e.Addr.IsValid():
		where := e.Addr.String()
		if e.Addr.Port() == 0 {
			where = e.Addr.Addr().String()
		}
		return fmt.Sprintf("outbound: connection to %s refused: %s address (allow it with --outbound-allow)", where, e.Reason)
	case e.Host != "":
		return fmt.Sprintf("outbound: connection to %q refused: %s", e.Host, e.Reason)
	}
	return "outbound: refused: " + e.Reason
}

// Unwrap makes errors.Is(err, notify.ErrRefused) hold.
func (e *RefusedError) Unwrap() error { return notify.ErrRefused }

// Guard checks every outbound connection. Its zero value is not usable;
// build one with NewGuard. A Guard is safe for concurrent use.
type Guard struct {
	allow  []netip.Prefix
	dialer net.Dialer
	rt     http.RoundTripper
}

// NewGuard returns a Guard that refuses the addresses listed in the package
// documentation (see Check) unless one of allow covers them. A nil allow
// refuses them all.
func NewGuard(allow []netip.Prefix) *Guard {
	g := &Guard{allow: make([]netip.Prefix, 0, len(allow))}
	for _, p := range allow {
		if p.IsValid() {
			g.allow = append(g.allow, p.Masked())
		}
	}
	g.dialer = net.Dialer{
		Timeout:        30 * time.Second,
		KeepAlive:      30 * time.Second,
		ControlContext: g.control,
	}
	g.rt = &schemeGuard{next: &http.Transport{
		// No proxy: through a proxy the guard would check the proxy's
		// address, not the destination's.
		Proxy:                 nil,
		DialContext:           g.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
	return g
}

// Allowed returns the allow prefixes, masked.
func (g *Guard) Allowed() []netip.Prefix { return append([]netip.Prefix(nil), g.allow...) }

// ParseAllow parses the --outbound-allow flag: comma-separated CIDR
// prefixes ("10.0.0.0/8,::1/128"); a bare address stands for itself (/32
// or /128). Blanks around the commas are ignored; an empty string allows
// nothing.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(part, "/") {
			p, err = netip.ParsePrefix(part)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(part)
			if err == nil && a.Zone() != "" {
				return nil, fmt.Errorf("outbound: --outbound-allow entry %d %q: a zone is not allowed in a prefix", i+1, part)
			}
			if err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("outbound: --outbound-allow entry %d %q: want a CIDR prefix such as 10.0.0.0/8 or fd00::/8", i+1, part)
		}
		if p.Addr().Is4In6() {
			// ::ffff:10.0.0.0/104 means 10.0.0.0/8: addresses are checked
			// unmapped.
			if p.Bits() < 96 {
				return nil, fmt.Errorf("outbound: --outbound-allow entry %d %q: an IPv4-mapped prefix must be /96 or longer", i+1, part)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check reports whether a connection to addr is allowed: nil, or a
// *RefusedError. The zone is ignored and an IPv4-mapped IPv6 address is
// checked as the IPv4 address it maps.
func (g *Guard) Check(addr netip.Addr) error {
	return g.checkAddrPort(netip.AddrPortFrom(addr, 0))
}

func (g *Guard) checkAddrPort(ap netip.AddrPort) error {
	a := ap.Addr().WithZone("").Unmap()
	reason, metadata := classify(a)
	if reason == "" {
		return nil
	}
	for _, p := range g.allow {
		if !p.Contains(a) {
			continue
		}
		// A metadata address is only reachable through a prefix naming
		// that very address: allowing 169.254.0.0/16 or 100.64.0.0/10 for
		// a network of one's own does not open the cloud's metadata
		// service as well.
		if metadata && p.Bits() != a.BitLen() {
			continue
		}
		return nil
	}
	return &RefusedError{Addr: netip.AddrPortFrom(a, ap.Port()), Reason: reason}
}

// control runs on every socket the dialer is about to connect, with the
// resolved address.
func (g *Guard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return &RefusedError{Reason: "network " + strconv.Quote(network) + " is not tcp"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address that cannot be read cannot be checked.
		return &RefusedError{Host: address, Reason: "unreadable address"}
	}
	return g.checkAddrPort(ap)
}

// DialContext connects to address (host:port) over TCP, as net.Dialer
// does, refusing what Check refuses once the host is resolved. A host
// written as a non-canonical IPv4 literal (2130706433, 0x7f.1, 127.1,
// 0177.0.0.1), which some resolvers read as an address and others look up
// as a name, is refused before any lookup. Refusals wrap notify.ErrRefused.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &RefusedError{Reason: "network " + strconv.Quote(network) + " is not tcp"}
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("outbound: dial %s: %w", address, err)
	}
	if err := g.checkHost(host); err != nil {
		return nil, err
	}
	return g.dialer.DialContext(ctx, network, address)
}

// checkHost checks a host before resolution: an address literal at once
// (for a clear error without a lookup), a non-canonical IPv4 literal is
// refused. Names are checked once resolved, by control.
func (g *Guard) checkHost(host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		return g.Check(a)
	}
	if looksLikeIPv4(host) {
		return &RefusedError{Host: host, Reason: "not a canonical IPv4 address (dotted decimal)"}
	}
	return nil
}

// looksLikeIPv4 reports whether inet_aton(3) would read host as an IPv4
// address: one to four parts separated by dots (a trailing dot allowed),
// each decimal, octal (leading 0) or hexadecimal (0x).
func looksLikeIPv4(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		digits, base := p, 10
		if len(p) > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') {
			digits, base = p[2:], 16
		} else if len(p) > 1 && p[0] == '0' {
			digits, base = p[1:], 8
		}
		for _, c := range digits {
			if !isDigit(c, base) {
				return false
			}
		}
	}
	return true
}

func isDigit(c rune, base int) bool {
	switch base {
	case 8:
		return c >= '0' && c <= '7'
	case 16:
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
	}
	return c >= '0' && c <= '9'
}

// HTTPClient returns a client whose connections go through the guard: only
// http and https, every redirect (at most MaxRedirects) re-checked for its
// scheme and, when it dials, its address; no proxy. timeout bounds a whole
// request, 0 for none. The clients of one Guard share one connection pool.
func (g *Guard) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     g.rt,
		Timeout:       timeout,
		CheckRedirect: checkRedirect,
	}
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return &RefusedError{Reason: fmt.Sprintf("more than %d redirects", MaxRedirects)}
	}
	return checkScheme(req.URL)
}

func checkScheme(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return nil
	}
	return &RefusedError{Reason: "scheme " + strconv.Quote(u.Scheme) + " (only http and https)"}
}

// schemeGuard refuses requests whose scheme is not http or https before the
// transport sees them (and so before http.Transport's own, unwrapped,
// "unsupported protocol scheme").
type schemeGuard struct{ next http.RoundTripper }

// RoundTrip refuses a scheme other than http or https, and passes the
// rest on.
func (s *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkScheme(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return s.next.RoundTrip(req)
}

// RedactURL returns what of a URL may appear in an error or a log:
// scheme://host[:port], with "/..." when it had a path, a query or a
// fragment, and never its userinfo. Webhook URLs (Slack's, Teams') carry
// their secret in the path. An unreadable URL gives "(invalid URL)".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		s += "/..."
	}
	return s
}

// StripURLError returns err without the URL that net/http's client puts in
// its errors (*url.Error), which may carry secrets in its path or query;
// other errors are returned unchanged.
func StripURLError(err error) error {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}
