package notify

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePolicy: any document gives an error or a policy, never a
// panic; a policy written back with its secrets reads again as the same
// policy, and its redacted JSON can be written.
func FuzzParsePolicy(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, true)
	f.Add([]byte(routingPolicy), true)
	f.Add([]byte(`{"receivers": [{"name": "a", "webhook": {"url": "https://h.example/x", "secret": "s"}}], "route": {"receiver": "a", "group_by": ["..."], "routes": [{"matchers": {"severity": ["critical"], "rule_id": 1}, "continue": true, "group_wait": "1d"}]}}`), false)
	f.Fuzz(func(t *testing.T, data []byte, isYAML bool) {
		ct := MediaJSON
		if isYAML {
			ct = MediaYAML
		}
		p, err := ParsePolicy(data, ct)
		if err != nil {
			return
		}
		raw, err := p.marshal(false)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParsePolicy(raw, MediaJSON)
		if err != nil {
			t.Fatalf("the policy written back does not read: %v\n%s", err, raw)
		}
		raw2, err := again.marshal(false)
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != string(raw2) {
			t.Fatalf("round trip changed the policy:\n%s\n%s", raw, raw2)
		}
		if _, err := p.MarshalJSON(); err != nil {
			t.Fatalf("redacted: %v", err)
		}
		a := Alert{Labels: map[string]string{"severity": "critical", "rule_id": "1"}}
		for _, r := range p.Route(a) {
			_ = r.groupKey(&a)
		}
	})
}
