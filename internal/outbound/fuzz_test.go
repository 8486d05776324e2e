package outbound

import "testing"

// FuzzParseAllow: any flag value gives prefixes or an error, never a
// panic; what it gives is masked, zoneless and never IPv4-mapped.
func FuzzParseAllow(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8,::1/128", "127.0.0.1", "::ffff:10.0.0.0/104", " , ,fe80::1%eth0", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAllow(s)
		if err != nil {
			return
		}
		for _, p := range got {
			if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
				t.Fatalf("ParseAllow(%q) gave %v", s, p)
			}
		}
		g := NewGuard(got)
		for _, p := range got {
			if err := g.Check(p.Addr()); err != nil && !metadataAddrs[p.Addr()] {
				t.Fatalf("ParseAllow(%q): %v does not allow its own address: %v", s, p, err)
			}
		}
	})
}
