package outbound

import "net/netip"

// A refused range and what it is.
type refusedRange struct {
	prefix netip.Prefix
	reason string
}

// refused lists the ranges a Guard refuses unless allowed: the IANA
// special-purpose ranges that are not globally reachable, and the private
// and shared ones. Order matters only for the reason given.
var refused = func() []refusedRange {
	list := []struct{ cidr, reason string }{
		// IPv4.
		{"0.0.0.0/8", "unspecified (this network)"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "carrier-grade NAT (shared)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignment"},
		{"192.0.2.0/24", "documentation"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved or broadcast"},
		// IPv6. IPv4-mapped addresses are checked as IPv4; NAT64 and 6to4
		// addresses by the IPv4 address they embed (see classify).
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible (deprecated)"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard-only"},
		{"2001::/32", "Teredo"},
		{"2001:2::/48", "benchmarking"},
		{"2001:db8::/32", "documentation"},
		{"fc00::/7", "private (unique local)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local (deprecated)"},
		{"ff00::/8", "multicast"},
	}
	out := make([]refusedRange, len(list))
	for i, r := range list {
		out[i] = refusedRange{netip.MustParsePrefix(r.cidr), r.reason}
	}
	return out
}()

// metadataAddrs are the cloud providers' instance metadata services:
// AWS, GCP, Azure, OpenStack, Oracle and DigitalOcean on 169.254.169.254,
// AWS's IPv6 endpoint, Alibaba Cloud's, and Oracle's older one. Each lies
// inside a refused range as well; see Guard.Check for what allows them.
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true,
	netip.MustParseAddr("169.254.170.2"):   true, // AWS ECS task metadata
	netip.MustParseAddr("fd00:ec2::254"):   true,
	netip.MustParseAddr("100.100.100.200"): true,
	netip.MustParseAddr("192.0.0.192"):     true,
}

var (
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	sixTo = netip.MustParsePrefix("2002::/16")
)

// classify says why a (zoneless, unmapped) address is refused, "" if it is
// not, and whether it is a cloud metadata address.
func classify(a netip.Addr) (reason string, metadata bool) {
	if !a.IsValid() {
		return "invalid", false
	}
	if metadataAddrs[a] {
		return "cloud metadata", true
	}
	for _, r := range refused {
		if r.prefix.Contains(a) {
			return r.reason, false
		}
	}
	// Addresses that embed an IPv4 address a gateway would connect to.
	if nat64.Contains(a) || sixTo.Contains(a) {
		b := a.As16()
		var v4 [4]byte
		if nat64.Contains(a) {
			copy(v4[:], b[12:16])
		} else {
			copy(v4[:], b[2:6])
		}
		if inner, md := classify(netip.AddrFrom4(v4)); inner != "" {
			return inner + " (embedded in " + a.String() + ")", md
		}
	}
	return "", false
}
