package notifyexec

import (
	"errors"
	"reflect"
	"testing"

	"github.com/reflex-ops/reflex/internal/executor"
)

// FuzzParse feeds executor objects to Parse: it never panics, refuses with
// executor.ErrInvalid only, and what it accepts is a Config that Validate
// accepts, parsed the same way twice.
//
//	go test -run '^$' -fuzz FuzzParse ./internal/executor/notify/
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"type":"notification","channels":["oncall-slack"],"title":"{{.event.title}}","text":"..."}`,
		`{"type":"notification","channels":["a","b"],"title":"t","timeout":"90s"}`,
		`{"type":"notification","channels":["a","a"],"title":"t"}`,
		`{"type":"notification","channels":["a\u0000"],"title":"t"}`,
		`{"type":"notification","channels":[null],"title":"{{"}`,
		`{"type":"notification","channels":"a","title":"t"}`,
		`{"type":"notification","title":"t","title":"u"}`,
		`{"type":"notification","channels":["a"],"title":"t","timeout":"-1s"}`,
		`{"type":"notification"`,
		`[]`,
		``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, js string) {
		spec := executor.Spec{Type: Type, Config: []byte(js)}
		c, err := Parse(spec)
		if err != nil {
			if !errors.Is(err, executor.ErrInvalid) {
				t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a Config that Validate refuses: %v", err)
		}
		again, err := Parse(spec)
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("Parse is not deterministic: %+v, %v", again, err)
		}
	})
}
