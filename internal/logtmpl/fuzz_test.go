package logtmpl

import (
	"strings"
	"testing"
)

// FuzzMask: for any message the scanner masks exactly what the regular
// expressions of DefaultMasks mask, and the miner takes it.
func FuzzMask(f *testing.F) {
	for _, s := range []string{
		"blk_-6952295868487656571 served", "request 3f2a9c1e-0b7d-4c2e-9f1a-2b3c4d5e6f70 done",
		"pc 0x7ffd1a2b in worker", "took 12.5 ms", "from 10.0.0.1:22 to 192.168.1.300",
		"uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4", "0000000f@2016/9/28:21:43:30.000 CSI",
		"", "é12 ünïcode 3.", "\x00\xff 12", "\u00a012 x\u2003y", "f(a=1)() (x) LOGIN(uid=0)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := maskDefault(s), Apply(DefaultMasks, s); got != want {
			t.Fatalf("scan %q, regexp %q", got, want)
		}
		m := New(Options{})
		m.Add(s + " 1")
		tp, _ := m.Add(s + " 2")
		if strings.Join(strings.Fields(tp.Text), " ") != tp.Text {
			t.Fatalf("template %q is not its tokens joined", tp.Text)
		}
	})
}
