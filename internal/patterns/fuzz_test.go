package patterns

import (
	"encoding/json"
	"testing"
)

// FuzzParseSequence checks that a sequence definition from the API never
// panics the parser, and that what it accepts has two distinct, valid
// steps and survives a round trip.
func FuzzParseSequence(f *testing.F) {
	for _, seed := range []string{
		`{"before":{"template_id":1},"after":{"template_id":2},"within_seconds":300}`,
		`{"before":{"event_type":"deploy"},"after":{"event_type":"error_rate"}}`,
		`{"before":{"template_id":-1},"after":{}}`,
		`{"before":null}`, `[]`, `"x"`, ``,
		`{"before":{"template_id":1e30},"after":{"event_type":"\u0000"},"within_seconds":-5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseSequence(b)
		if err != nil {
			return
		}
		if !d.Before.valid() || !d.After.valid() || d.Before == d.After || d.WithinSeconds < 0 || d.WithinSeconds > 86400 {
			t.Fatalf("accepted %q as %+v", b, d)
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseSequence(again)
		if err != nil || d2 != d {
			t.Fatalf("round trip of %q: %+v, %v", b, d2, err)
		}
	})
}
