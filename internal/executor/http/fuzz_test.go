package httpexec

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
//	go test -run '^$' -fuzz FuzzParse ./internal/executor/http/
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"type":"http","url":"https://cmdb.example.com/api/hosts"}`,
		`{"type":"http","method":"post","url":"https://lb.example.com/pools/{{urlquery .event.source_host}}/drain",` +
			`"headers":{"Content-Type":"application/json","X-Run":"{{.execution.id}}"},"header_files":{"Authorization":"/etc/reflex/token"},` +
			`"body":"{\"reason\":\"{{.event.title}}\"}","expected_status":[200,202],"timeout":"90s","max_output":4096,"idempotent":true}`,
		`{"type":"http","method":"HEAD","url":"http://a.example/","body":"x"}`,
		`{"type":"http","url":"http://a.example/","URL":"http://b.example/"}`,
		`{"type":"http","url":"http://a.example/","url":"http://b.example/"}`,
		`{"type":"http","url":"http://a.example/","headers":{"X-A":"1","x-a":"2"}}`,
		`{"type":"http","url":"http://a.example/","headers":{"Host":"b"}}`,
		`{"type":"http","url":"http://a.example/","headers":{"X-A":"1\r\nX-B: 2"}}`,
		`{"type":"http","url":"http://a.example/","expected_status":[99,1e2,200.5,"200",null]}`,
		`{"type":"http","url":"http://a.example/","timeout":"11m","max_output":-1}`,
		`{"type":"http","url":"{{.event.url","method":null}`,
		`{"type":"http","url":"ftp://u:p@a.example/"} trailing`,
		`{"type":"http","headers":{"a":{"b":"c"}}}`,
		`{"type":"http","url":"http://a.example/","idempotent":"yes"}`,
		`{"type":"http"`,
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
