package httpexec

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/executor"
)

// parse reads an executor object as an action definition holds it.
func parse(t *testing.T, js string) (Config, error) {
	t.Helper()
	spec, err := executor.ParseSpec([]byte(js))
	require.NoError(t, err)
	return Parse(spec)
}

func TestParseDefaults(t *testing.T) {
	c, err := parse(t, `{"type":"http","url":"https://cmdb.example.com/api/hosts"}`)
	require.NoError(t, err)
	require.Equal(t, Config{
		Method:     "GET",
		URL:        "https://cmdb.example.com/api/hosts",
		Timeout:    DefaultTimeout,
		MaxOutput:  executor.DefaultMaxOutput,
		Idempotent: true,
	}, c)
}

func TestParseFull(t *testing.T) {
	c, err := parse(t, `{
		"type": "http",
		"method": "post",
		"url": "https://lb.example.com/api/pools/web/members/{{urlquery .event.source_host}}/drain",
		"headers": {"Content-Type": "application/json", "X-Reflex-Execution": "{{.execution.id}}"},
		"header_files": {"Authorization": "/etc/reflex/lb-token"},
		"body": "{\"reason\": \"{{.event.title}}\"}",
		"expected_status": [200, 202],
		"timeout": "90s",
		"max_output": 4096,
		"idempotent": true
	}`)
	require.NoError(t, err)
	require.Equal(t, Config{
		Method:         "POST",
		URL:            "https://lb.example.com/api/pools/web/members/{{urlquery .event.source_host}}/drain",
		Headers:        map[string]string{"Content-Type": "application/json", "X-Reflex-Execution": "{{.execution.id}}"},
		HeaderFiles:    map[string]string{"Authorization": "/etc/reflex/lb-token"},
		Body:           `{"reason": "{{.event.title}}"}`,
		ExpectedStatus: []int{200, 202},
		Timeout:        90 * time.Second,
		MaxOutput:      4096,
		Idempotent:     true,
	}, c)
}

func TestParseIdempotentByMethod(t *testing.T) {
	for method, want := range map[string]bool{"GET": true, "HEAD": true, "PUT": true, "DELETE": true, "POST": false, "PATCH": false} {
		t.Run(method, func(t *testing.T) {
			c, err := parse(t, `{"type":"http","method":"`+method+`","url":"http://a.example/"}`)
			require.NoError(t, err)
			require.Equal(t, want, c.Idempotent)
			// What the definition says wins.
			c, err = parse(t, `{"type":"http","method":"`+method+`","url":"http://a.example/","idempotent":`+boolText(!want)+`}`)
			require.NoError(t, err)
			require.Equal(t, !want, c.Idempotent)
		})
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestParseErrors(t *testing.T) {
	const u = `"url":"https://a.example/x"`
	for _, tc := range []struct {
		name, js, want string
	}{
		{"unknown key", `{"type":"http",` + u + `,"urll":"x"}`, `unknown key "urll"`},
		{"key in another case", `{"type":"http","URL":"https://a.example/"}`, `unknown key "URL"`},
		{"repeated key", `{"type":"http",` + u + `,` + u + `}`, `key "url" appears more than once`},
		{"repeated header", `{"type":"http",` + u + `,"headers":{"X-A":"1","X-A":"2"}}`, `headers: key "X-A" appears more than once`},
		{"null", `{"type":"http",` + u + `,"method":null}`, "method: want a string"},
		{"method", `{"type":"http",` + u + `,"method":"CONNECT"}`, `method "CONNECT": want one of`},
		{"empty method", `{"type":"http",` + u + `,"method":""}`, `method "": want one of`},
		{"no url", `{"type":"http"}`, "url is required"},
		{"url number", `{"type":"http","url":3}`, "url: want a string"},
		{"relative url", `{"type":"http","url":"/api/x"}`, "url: want an absolute http or https URL"},
		{"ftp url", `{"type":"http","url":"ftp://a.example/x"}`, "url: want an absolute http or https URL"},
		{"no host", `{"type":"http","url":"http:///x"}`, "url: the URL has no host"},
		{"bad url", `{"type":"http","url":"http://a b/"}`, "url: not a valid URL"},
		{"url template", `{"type":"http","url":"https://a.example/{{.event.source_host"}`, "url: template: param:1: unclosed action"},
		{"unknown function", `{"type":"http","url":"https://a.example/{{exec .event}}"}`, `url: template: param:1: function "exec" not defined`},
		{"headers list", `{"type":"http",` + u + `,"headers":["X-A"]}`, "headers: want a JSON object"},
		{"header number", `{"type":"http",` + u + `,"headers":{"X-A":1}}`, `headers: "X-A": want a string`},
		{"header null", `{"type":"http",` + u + `,"headers":{"X-A":null}}`, `headers: "X-A": want a string`},
		{"header name", `{"type":"http",` + u + `,"headers":{"X A":"1"}}`, `headers: "X A" is not a header name`},
		{"empty header name", `{"type":"http",` + u + `,"headers":{"":"1"}}`, `headers: "" is not a header name`},
		{"host header", `{"type":"http",` + u + `,"headers":{"host":"b.example"}}`, "headers: Host is set by the HTTP client"},
		{"content-length", `{"type":"http",` + u + `,"headers":{"Content-Length":"3"}}`, "headers: Content-Length is set by the HTTP client"},
		{"header in two cases", `{"type":"http",` + u + `,"headers":{"X-Key":"1","x-key":"2"}}`, "is already set by headers"},
		{"header and header file", `{"type":"http",` + u + `,"headers":{"Authorization":"x"},"header_files":{"authorization":"/etc/t"}}`, "header_files: authorization is already set by headers Authorization"},
		{"static CRLF", `{"type":"http",` + u + `,"headers":{"X-A":"1\r\nX-B: 2"}}`, "headers X-A: the value holds a control character"},
		{"static NUL", `{"type":"http",` + u + `,"headers":{"X-A":"1\u0000"}}`, "headers X-A: the value holds a control character"},
		{"header template", `{"type":"http",` + u + `,"headers":{"X-A":"{{.event"}}`, "headers X-A: template"},
		{"relative header file", `{"type":"http",` + u + `,"header_files":{"Authorization":"token"}}`, "header_files Authorization: want an absolute path"},
		{"empty header file", `{"type":"http",` + u + `,"header_files":{"Authorization":""}}`, "header_files Authorization: want an absolute path"},
		{"head with body", `{"type":"http",` + u + `,"method":"HEAD","body":"x"}`, "body: a HEAD request has no body"},
		{"body template", `{"type":"http",` + u + `,"method":"POST","body":"{{.event.title"}`, "body: template"},
		{"body number", `{"type":"http",` + u + `,"body":{}}`, "body: want a string"},
		{"status", `{"type":"http",` + u + `,"expected_status":[200, 99]}`, "expected_status: 99 is not an HTTP status"},
		{"status 600", `{"type":"http",` + u + `,"expected_status":[600]}`, "expected_status: 600 is not an HTTP status"},
		{"status string", `{"type":"http",` + u + `,"expected_status":["200"]}`, "expected_status: item 0: want an integer"},
		{"status fraction", `{"type":"http",` + u + `,"expected_status":[200.5]}`, "expected_status: item 0: want an integer"},
		{"status object", `{"type":"http",` + u + `,"expected_status":200}`, "expected_status: want a list of integers"},
		{"timeout number", `{"type":"http",` + u + `,"timeout":30}`, `timeout: want a duration such as "30s"`},
		{"timeout text", `{"type":"http",` + u + `,"timeout":"soon"}`, `timeout: "soon": want a positive duration`},
		{"timeout zero", `{"type":"http",` + u + `,"timeout":"0s"}`, `timeout: "0s": want a positive duration`},
		{"timeout negative", `{"type":"http",` + u + `,"timeout":"-1s"}`, `timeout: "-1s": want a positive duration`},
		{"timeout too long", `{"type":"http",` + u + `,"timeout":"11m"}`, "timeout 11m0s: want above 0 and at most 10m0s"},
		{"max_output zero", `{"type":"http",` + u + `,"max_output":0}`, "max_output 0: want above 0"},
		{"max_output too large", `{"type":"http",` + u + `,"max_output":2097152}`, "max_output 2097152: want above 0 and at most 1048576"},
		{"max_output text", `{"type":"http",` + u + `,"max_output":"1k"}`, "max_output: want an integer"},
		{"idempotent text", `{"type":"http",` + u + `,"idempotent":"yes"}`, "idempotent: want true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.js)
			require.ErrorIs(t, err, executor.ErrInvalid)
			require.Contains(t, err.Error(), tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "httpexec: "), err.Error())
		})
	}
}

func TestParseSpecShape(t *testing.T) {
	_, err := Parse(executor.Spec{Type: "command", Config: json.RawMessage(`{"type":"command","url":"http://a.example/"}`)})
	require.ErrorIs(t, err, executor.ErrInvalid)
	require.Contains(t, err.Error(), `executor type "command" is not "http"`)

	for _, bad := range []string{`{"type":"http","url":"http://a.example/"} {}`, `[]`, `{"type":"http",`, ``} {
		_, err := Parse(executor.Spec{Type: "http", Config: json.RawMessage(bad)})
		require.ErrorIs(t, err, executor.ErrInvalid, bad)
	}
}

func TestParseLimits(t *testing.T) {
	headers := map[string]string{}
	for i := range MaxHeaders + 1 {
		headers["X-H"+strings.Repeat("a", i)] = "v"
	}
	b, err := json.Marshal(map[string]any{"type": "http", "url": "http://a.example/", "headers": headers})
	require.NoError(t, err)
	_, err = parse(t, string(b))
	require.ErrorIs(t, err, executor.ErrInvalid)
	require.Contains(t, err.Error(), "at most 64")

	_, err = parse(t, `{"type":"http","url":"http://a.example/`+strings.Repeat("a", maxURLTemplate)+`"}`)
	require.ErrorContains(t, err, "url: longer than")
}

// A template or a URL in a definition may hold a secret (userinfo, a
// token in the path): errors say what is wrong without quoting them.
func TestParseErrorsDoNotQuoteTheURL(t *testing.T) {
	for _, js := range []string{
		`{"type":"http","url":"https://ops:hunter2@a.example/{{.event.source_host"}`,
		`{"type":"http","url":"https://ops:hunter2@a b.example/"}`,
		`{"type":"http","url":"ftp://ops:hunter2@a.example/"}`,
		`{"type":"http","url":"https://a.example/","headers":{"X-Key":"hunter2{{.event"}}`,
		`{"type":"http","url":"https://a.example/","headers":{"X-Key":"hunter2\n"}}`,
	} {
		_, err := parse(t, js)
		require.ErrorIs(t, err, executor.ErrInvalid)
		require.NotContains(t, err.Error(), "hunter2")
	}
}

func TestValidate(t *testing.T) {
	valid := Config{Method: "GET", URL: "http://a.example/", Timeout: time.Second, MaxOutput: 1}
	require.NoError(t, valid.Validate())
	for name, c := range map[string]Config{
		"zero value":       {},
		"lowercase method": {Method: "get", URL: "http://a.example/", Timeout: time.Second, MaxOutput: 1},
		"no timeout":       {Method: "GET", URL: "http://a.example/", MaxOutput: 1},
		"no max_output":    {Method: "GET", URL: "http://a.example/", Timeout: time.Second},
	} {
		require.ErrorIs(t, c.Validate(), executor.ErrInvalid, name)
	}
}
