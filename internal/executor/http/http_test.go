package httpexec

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/outbound"
)

// localGuard allows the loopback addresses the test servers listen on.
func localGuard() *outbound.Guard {
	return outbound.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

// clock is a fake clock that moves one second at each reading.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2024, 12, 1, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// received is a request as the peer saw it.
type received struct {
	method, path string
	query        map[string][]string
	header       http.Header
	body         []byte
}

// peer is a real HTTP server on 127.0.0.1 that records what it receives
// and answers with handler (200 "ok" when nil).
type peer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newPeer(t *testing.T, handler http.HandlerFunc) *peer {
	t.Helper()
	p := &peer{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.reqs = append(p.reqs, received{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone(), body: body})
		p.mu.Unlock()
		if handler == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		handler(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *peer) received() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.reqs...)
}

func (p *peer) only(t *testing.T) received {
	t.Helper()
	r := p.received()
	require.Len(t, r, 1)
	return r[0]
}

// executorOf parses js and builds its Executor with the local guard.
func executorOf(t *testing.T, js string, opts ...func(*Options)) *Executor {
	t.Helper()
	c, err := parse(t, js)
	require.NoError(t, err)
	o := Options{Guard: localGuard(), Now: clock()}
	for _, f := range opts {
		f(&o)
	}
	e, err := New(c, o)
	require.NoError(t, err)
	return e
}

// spec writes an executor object with the given fields.
func spec(t *testing.T, fields map[string]any) string {
	t.Helper()
	fields["type"] = "http"
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	return string(b)
}

func eventData(fields map[string]any) map[string]any {
	return map[string]any{
		"event":     fields,
		"steps":     map[string]any{"diagnose": map[string]any{"stdout": "load 12.5"}},
		"execution": map[string]any{"id": 42, "dry_run": false},
	}
}

// Event fields are data: a value with blanks, ";", "$(...)" and backticks
// reaches the server exactly as it is, as one query value, one header
// value and part of the body.
func TestExecuteRendersFromData(t *testing.T) {
	p := newPeer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"queued":true}`)
	})
	e := executorOf(t, spec(t, map[string]any{
		"method":  "POST",
		"url":     p.URL + "/hosts/{{urlquery .event.source_host}}/restart?reason={{urlquery .event.title}}",
		"headers": map[string]string{"X-Title": "{{.event.title}}", "Content-Type": "text/plain", "X-Execution": "{{.execution.id}}"},
		"body":    "host={{.event.source_host}} title={{.event.title}} diag={{.steps.diagnose.stdout}}",
	}))
	title := "CPU 92%; rm -rf / $(touch /tmp/x) `id` -x\ttab"
	res, err := e.Execute(context.Background(), executor.Request{ExecutionID: 42, Step: "restart", Data: eventData(map[string]any{
		"source_host": "db-1;$(id)&x=1/..",
		"title":       title,
	})})
	require.NoError(t, err)

	got := p.only(t)
	require.Equal(t, "POST", got.method)
	require.Equal(t, "/hosts/db-1;$(id)&x=1/../restart", got.path)
	require.Equal(t, map[string][]string{"reason": {title}}, got.query)
	require.Equal(t, title, got.header.Get("X-Title"))
	require.Equal(t, []string{title}, got.header.Values("X-Title"))
	require.Equal(t, "42", got.header.Get("X-Execution"))
	require.Equal(t, "text/plain", got.header.Get("Content-Type"))
	require.Equal(t, UserAgent, got.header.Get("User-Agent"))
	require.Equal(t, "host=db-1;$(id)&x=1/.. title="+title+" diag=load 12.5", string(got.body))

	start := time.Date(2024, 12, 1, 10, 0, 1, 0, time.UTC)
	require.Equal(t, executor.Result{
		ExitCode: 202,
		Output:   []byte(`{"queued":true}`),
		Outputs:  map[string]string{"status": "202", "body": `{"queued":true}`, "output": `{"queued":true}`},
		Started:  start,
		Finished: start.Add(time.Second),
	}, res)
}

func TestExecuteMethods(t *testing.T) {
	p := newPeer(t, nil)
	for _, m := range []string{"GET", "HEAD", "PUT", "PATCH", "DELETE"} {
		e := executorOf(t, spec(t, map[string]any{"method": m, "url": p.URL + "/x", "headers": map[string]string{"User-Agent": "ops-bot"}}))
		res, err := e.Execute(context.Background(), executor.Request{})
		require.NoError(t, err, m)
		require.Equal(t, 200, res.ExitCode)
		if m == "HEAD" {
			require.Empty(t, res.Output)
		} else {
			require.Equal(t, "ok", string(res.Output))
		}
	}
	reqs := p.received()
	require.Len(t, reqs, 5)
	for i, m := range []string{"GET", "HEAD", "PUT", "PATCH", "DELETE"} {
		require.Equal(t, m, reqs[i].method)
		require.Equal(t, "ops-bot", reqs[i].header.Get("User-Agent"))
		require.Empty(t, reqs[i].body)
	}
}

// A rendered value that would end its header (CR, LF) or that servers
// refuse (NUL, other control characters), a URL that does not parse or is
// not absolute, a key the data does not have: the run is refused and
// nothing is sent.
func TestExecuteRefusesBeforeSending(t *testing.T) {
	p := newPeer(t, nil)
	header := executorOf(t, spec(t, map[string]any{"url": p.URL + "/x", "headers": map[string]string{"X-Title": "{{.event.title}}"}}))
	url := executorOf(t, spec(t, map[string]any{"url": p.URL + "/x?q={{.event.title}}"}))
	whole := executorOf(t, spec(t, map[string]any{"url": "{{.event.title}}"}))
	body := executorOf(t, spec(t, map[string]any{"method": "POST", "url": p.URL + "/x", "body": "{{.event.missing}}"}))
	for _, tc := range []struct {
		name  string
		e     *Executor
		title string
		want  string
	}{
		{"header CRLF", header, "x\r\nX-Injected: 1", "headers X-Title: executor: refused: the rendered value holds a control character"},
		{"header LF", header, "x\nX-Injected: 1", "headers X-Title"},
		{"header CR", header, "x\r", "headers X-Title"},
		{"header NUL", header, "x\x00y", "headers X-Title"},
		{"header ESC", header, "x\x1b[2J", "headers X-Title"},
		{"url LF", url, "x\nHost: evil", "url: executor: refused: not a valid URL"},
		{"url NUL", url, "x\x00", "url: executor: refused: not a valid URL"},
		{"url relative", whole, "/api/x", "url: executor: refused: want an absolute http or https URL"},
		{"url scheme", whole, "file:///etc/passwd", "url: executor: refused: want an absolute http or https URL"},
		{"url no host", whole, "http:/x", "url: executor: refused: the URL has no host"},
		{"missing key", body, "x", `body: executor: refused: template: param:1:8: executing "param" at <.event.missing>: map has no entry for key "missing"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.e.Execute(context.Background(), executor.Request{Data: eventData(map[string]any{"title": tc.title})})
			require.ErrorIs(t, err, executor.ErrRefused)
			require.False(t, executor.Retryable(err))
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, -1, res.ExitCode)
			require.True(t, res.Started.IsZero())
			require.Equal(t, map[string]string{"status": "", "body": "", "output": ""}, res.Outputs)
		})
	}
	require.Empty(t, p.received())
}

// The default guard refuses loopback: ErrRefused, not retryable, nothing
// sent, and the error names the address but not the URL's secret path,
// query or userinfo.
func TestExecuteGuardRefuses(t *testing.T) {
	p := newPeer(t, nil)
	c, err := parse(t, spec(t, map[string]any{"url": "http://ops:pa55w0rd@" + p.Listener.Addr().String() + "/hooks/T0KEN-in-path?key=s3cret"}))
	require.NoError(t, err)
	e, err := New(c, Options{Guard: outbound.NewGuard(nil)})
	require.NoError(t, err)

	res, err := e.Execute(context.Background(), executor.Request{})
	require.ErrorIs(t, err, executor.ErrRefused)
	var refused *outbound.RefusedError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, "loopback", refused.Reason)
	require.False(t, executor.Retryable(err))
	require.Equal(t, "httpexec: GET http://"+p.Listener.Addr().String()+"/...: executor: refused: outbound: connection to 127.0.0.1 refused: loopback address (allow it with --outbound-allow)", err.Error())
	require.Equal(t, -1, res.ExitCode)
	require.True(t, res.Started.IsZero() && res.Finished.IsZero())
	require.Empty(t, p.received())
}

// A redirect to a refused address fails the step, but not as ErrRefused:
// the first request was sent.
func TestExecuteRedirectRefused(t *testing.T) {
	for name, location := range map[string]string{
		"address": "http://127.0.0.2:9/next",
		"scheme":  "gopher://127.0.0.1/next",
	} {
		t.Run(name, func(t *testing.T) {
			p := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, location, http.StatusFound)
			})
			c, err := parse(t, spec(t, map[string]any{"url": p.URL + "/first"}))
			require.NoError(t, err)
			e, err := New(c, Options{Guard: outbound.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})})
			require.NoError(t, err)

			res, err := e.Execute(context.Background(), executor.Request{})
			var refused *outbound.RefusedError
			require.ErrorAs(t, err, &refused)
			require.NotErrorIs(t, err, executor.ErrRefused)
			require.False(t, executor.Retryable(err))
			require.ErrorContains(t, err, "after a redirect")
			require.False(t, res.Started.IsZero())
			require.Len(t, p.received(), 1)
		})
	}
}

// secretFile writes a header file and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// logTo returns an option that sends the executor's debug log to buf.
func logTo(buf *bytes.Buffer) func(*Options) {
	return func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// echo answers with the request's Authorization and X-Api-Key headers, in
// its body and in a header, with the status of ?status= (200 by default).
func echo(w http.ResponseWriter, r *http.Request) {
	status := 200
	if s := r.URL.Query().Get("status"); s != "" {
		status, _ = strconv.Atoi(s)
	}
	w.Header().Set("X-Echo", r.Header.Get("Authorization"))
	w.WriteHeader(status)
	fmt.Fprintf(w, "you sent authorization=%q api-key=%q", r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
}

// A secret read from a header file is sent, and appears neither in the
// Result (even when the server echoes it), nor in an error, nor in a log.
func TestHeaderFilesStaySecret(t *testing.T) {
	const token = "s3cr3t-t0ken-0123456789"
	const key = "k3y-abcdefghij"
	for _, status := range []int{200, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			p := newPeer(t, echo)
			var logs bytes.Buffer
			e := executorOf(t, spec(t, map[string]any{
				"url":          p.URL + "/echo?status=" + strconv.Itoa(status),
				"header_files": map[string]string{"Authorization": secretFile(t, "Bearer "+token+"\n"), "X-Api-Key": secretFile(t, "  "+key+"  \n")},
			}), logTo(&logs))

			res, err := e.Execute(context.Background(), executor.Request{ExecutionID: 7, Step: "call"})
			got := p.only(t)
			require.Equal(t, "Bearer "+token, got.header.Get("Authorization"))
			require.Equal(t, key, got.header.Get("X-Api-Key"))

			require.Equal(t, `you sent authorization="[redacted]" api-key="[redacted]"`, string(res.Output))
			if status == 200 {
				require.NoError(t, err)
			} else {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, 503, se.Code)
				require.NotContains(t, err.Error(), token)
				require.NotContains(t, err.Error(), key)
			}
			all := fmt.Sprintf("%+v %v", res, err)
			require.NotContains(t, all, token)
			require.NotContains(t, all, key)
			require.Contains(t, logs.String(), `"execution_id":7`)
			require.Contains(t, logs.String(), `"status":`+strconv.Itoa(status))
			require.NotContains(t, logs.String(), token)
			require.NotContains(t, logs.String(), key)
		})
	}
}

// Credentials in the URL are sent as basic authentication, and never
// reported: not in the log, not in errors, not in the echoed body.
func TestURLUserinfoStaysSecret(t *testing.T) {
	p := newPeer(t, echo)
	var logs bytes.Buffer
	addr := p.Listener.Addr().String()
	e := executorOf(t, spec(t, map[string]any{"url": "http://ops:pa55w0rd-xyz@" + addr + "/echo?status=502"}), logTo(&logs))
	res, err := e.Execute(context.Background(), executor.Request{})
	require.Error(t, err)

	basic := base64.StdEncoding.EncodeToString([]byte("ops:pa55w0rd-xyz"))
	require.Equal(t, "Basic "+basic, p.only(t).header.Get("Authorization"))
	require.Equal(t, `you sent authorization="Basic [redacted]" api-key=""`, string(res.Output))
	require.Equal(t, "executor: retryable failure: httpexec: GET http://"+addr+"/...: status 502 (Bad Gateway), want 2xx", err.Error())
	for _, s := range []string{logs.String(), err.Error(), string(res.Output)} {
		require.NotContains(t, s, "pa55w0rd")
		require.NotContains(t, s, basic)
		require.NotContains(t, s, "/echo")
	}
	require.Contains(t, logs.String(), `"url":"http://`+addr+`/..."`)
}

// A body cut at max_output does not show the beginning of a secret cut
// with it.
func TestSecretCutByTheBound(t *testing.T) {
	const secret = "Bearer s3cr3t-t0ken-0123456789"
	p := newPeer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "0123456789"+secret+" and more")
	})
	e := executorOf(t, spec(t, map[string]any{
		"url":          p.URL,
		"max_output":   16,
		"header_files": map[string]string{"Authorization": secretFile(t, secret)},
	}))
	res, err := e.Execute(context.Background(), executor.Request{})
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(res.Output))
	require.True(t, res.Truncated)
}

// The header files' headers go to the URL's host only: a redirect to
// another host (or port) does not carry them; one to the same host does.
func TestRedirectDropsHeaderFiles(t *testing.T) {
	other := newPeer(t, nil)
	p := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/elsewhere":
			http.Redirect(w, r, other.URL+"/landed", http.StatusTemporaryRedirect)
		case "/here":
			http.Redirect(w, r, "/landed", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "landed")
		}
	})
	path := secretFile(t, "k3y-abcdefghij")
	for _, tc := range []struct {
		path string
		at   *peer
		want string
	}{
		{"/elsewhere", other, ""},
		{"/here", p, "k3y-abcdefghij"},
	} {
		e := executorOf(t, spec(t, map[string]any{
			"url":          p.URL + tc.path,
			"headers":      map[string]string{"X-Trace": "t-1"},
			"header_files": map[string]string{"X-Api-Key": path},
		}))
		_, err := e.Execute(context.Background(), executor.Request{})
		require.NoError(t, err)
		reqs := tc.at.received()
		last := reqs[len(reqs)-1]
		require.Equal(t, "/landed", last.path)
		require.Equal(t, "t-1", last.header.Get("X-Trace"))
		require.Equal(t, tc.want, last.header.Get("X-Api-Key"), tc.path)
	}
}

func TestExpectedStatus(t *testing.T) {
	p := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	})
	for _, tc := range []struct {
		expected []int
		status   int
		ok       bool
		want     string
	}{
		{nil, 200, true, ""},
		{nil, 204, true, ""},
		{nil, 299, true, ""},
		{nil, 302, false, "status 302 (Found), want 2xx"}, // a redirect without a Location
		{nil, 404, false, "status 404 (Not Found), want 2xx"},
		{nil, 500, false, "status 500 (Internal Server Error), want 2xx"},
		{[]int{404}, 404, true, ""},
		{[]int{200, 404}, 200, true, ""},
		{[]int{201}, 200, false, "status 200 (OK), want 201"},
		{[]int{200, 202}, 599, false, "status 599, want 200, 202"},
	} {
		t.Run(fmt.Sprint(tc.expected, tc.status), func(t *testing.T) {
			fields := map[string]any{"url": p.URL + "/?status=" + strconv.Itoa(tc.status)}
			if tc.expected != nil {
				fields["expected_status"] = tc.expected
			}
			res, err := executorOf(t, spec(t, fields)).Execute(context.Background(), executor.Request{})
			require.Equal(t, tc.status, res.ExitCode)
			require.Equal(t, strconv.Itoa(tc.status), res.Outputs["status"])
			if tc.status != 204 {
				require.Equal(t, fmt.Sprintf("answer %d", tc.status), res.Outputs["body"])
			}
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var se *StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.status, se.Code)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "answer", "the body is not in the error")
		})
	}
}

func TestBodyBound(t *testing.T) {
	p := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = io.WriteString(w, strings.Repeat("x", n))
	})
	for _, tc := range []struct {
		n         int
		want      int
		truncated bool
	}{
		{0, 0, false},
		{9, 9, false},
		{10, 10, false},
		{11, 10, true},
		{1 << 20, 10, true},
	} {
		e := executorOf(t, spec(t, map[string]any{"url": p.URL + "/?n=" + strconv.Itoa(tc.n), "max_output": 10}))
		res, err := e.Execute(context.Background(), executor.Request{})
		require.NoError(t, err)
		require.Len(t, res.Output, tc.want, tc.n)
		require.Equal(t, tc.truncated, res.Truncated, tc.n)
		require.Equal(t, string(res.Output), res.Outputs["body"])
		require.Equal(t, string(res.Output), res.Outputs["output"])
	}
	// The default bound.
	e := executorOf(t, spec(t, map[string]any{"url": p.URL + "/?n=" + strconv.Itoa(executor.DefaultMaxOutput+1)}))
	res, err := e.Execute(context.Background(), executor.Request{})
	require.NoError(t, err)
	require.Len(t, res.Output, executor.DefaultMaxOutput)
	require.True(t, res.Truncated)
}

// Which failures are worth a retry: for an idempotent request, 429, 502,
// 503 and 504; never another status, and never for a request that is not
// idempotent.
func TestRetryableStatus(t *testing.T) {
	p := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(code)
	})
	kinds := []struct {
		name       string
		fields     map[string]any
		idempotent bool
	}{
		{"GET", map[string]any{"method": "GET"}, true},
		{"PUT", map[string]any{"method": "PUT"}, true},
		{"DELETE", map[string]any{"method": "DELETE"}, true},
		{"POST", map[string]any{"method": "POST"}, false},
		{"PATCH", map[string]any{"method": "PATCH"}, false},
		{"POST idempotent", map[string]any{"method": "POST", "idempotent": true}, true},
		{"GET not idempotent", map[string]any{"method": "GET", "idempotent": false}, false},
	}
	for _, k := range kinds {
		for _, tc := range []struct {
			status    int
			retryable bool
		}{
			{400, false}, {401, false}, {403, false}, {404, false}, {408, false}, {409, false}, {422, false},
			{429, true},
			{500, false}, {501, false},
			{502, true}, {503, true}, {504, true},
		} {
			t.Run(fmt.Sprintf("%s %d", k.name, tc.status), func(t *testing.T) {
				fields := map[string]any{"url": p.URL + "/?status=" + strconv.Itoa(tc.status)}
				for f, v := range k.fields {
					fields[f] = v
				}
				_, err := executorOf(t, spec(t, fields)).Execute(context.Background(), executor.Request{})
				var se *StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, tc.status, se.Code)
				require.Equal(t, tc.retryable && k.idempotent, executor.Retryable(err))
				require.NotErrorIs(t, err, executor.ErrRefused)
			})
		}
	}
}

// Connection failures: one that could not be opened sent nothing and is
// worth a retry whatever the method; one broken after the request went
// out only for an idempotent request.
func TestRetryableConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close())

	hangup := newPeer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	for _, tc := range []struct {
		name, method, url string
		retryable         bool
	}{
		{"refused GET", "GET", closed, true},
		{"refused POST", "POST", closed, true},
		{"hangup GET", "GET", hangup.URL, true},
		{"hangup PUT", "PUT", hangup.URL, true},
		{"hangup POST", "POST", hangup.URL, false},
		{"hangup PATCH", "PATCH", hangup.URL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := executorOf(t, spec(t, map[string]any{"method": tc.method, "url": tc.url})).Execute(context.Background(), executor.Request{})
			require.Error(t, err)
			require.Equal(t, tc.retryable, executor.Retryable(err))
			require.NotErrorIs(t, err, executor.ErrRefused)
			require.NotErrorIs(t, err, executor.ErrTimeout)
			require.Equal(t, -1, res.ExitCode)
			require.False(t, res.Started.IsZero())
		})
	}
}

// stall is a peer whose handler waits until the client gives up; with
// header set, it sends the status line first and stalls in the body.
func stall(t *testing.T, header bool) (*peer, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	p := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		if header {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "partial")
			_ = http.NewResponseController(w).Flush()
		}
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // before p.Close, which waits for handlers
	return p, arrived
}

func TestTimeout(t *testing.T) {
	waiting, _ := stall(t, false)
	reading, _ := stall(t, true)
	for _, tc := range []struct {
		name      string
		fields    map[string]any
		timeout   time.Duration
		exit      int
		retryable bool
	}{
		{"GET", map[string]any{"url": waiting.URL, "timeout": "50ms"}, 0, -1, true},
		{"POST", map[string]any{"url": waiting.URL, "method": "POST", "timeout": "50ms"}, 0, -1, false},
		{"step timeout", map[string]any{"url": waiting.URL}, 50 * time.Millisecond, -1, true},
		{"reading the body", map[string]any{"url": reading.URL, "timeout": "50ms"}, 0, 200, true},
		{"reading the body of a POST", map[string]any{"url": reading.URL, "method": "POST", "timeout": "50ms"}, 0, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := executorOf(t, spec(t, tc.fields)).Execute(context.Background(), executor.Request{Timeout: tc.timeout})
			require.ErrorIs(t, err, executor.ErrTimeout)
			require.Equal(t, tc.retryable, executor.Retryable(err))
			require.Equal(t, tc.exit, res.ExitCode)
			if tc.exit == 200 {
				require.Equal(t, "partial", string(res.Output))
				require.Equal(t, "200", res.Outputs["status"])
			}
		})
	}
}

// When the caller's context ends (the execution was cancelled), the step
// ends with its error: not a timeout, not retryable.
func TestCallerCancels(t *testing.T) {
	p, arrived := stall(t, false)
	e := executorOf(t, spec(t, map[string]any{"url": p.URL}))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := e.Execute(ctx, executor.Request{})
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, executor.ErrTimeout)
	require.False(t, executor.Retryable(err))
}

func TestNew(t *testing.T) {
	c, err := parse(t, spec(t, map[string]any{"url": "http://a.example/"}))
	require.NoError(t, err)
	_, err = New(c, Options{})
	require.ErrorIs(t, err, executor.ErrInvalid)
	require.ErrorContains(t, err, "an outbound guard is required")

	_, err = New(Config{}, Options{Guard: localGuard()})
	require.ErrorIs(t, err, executor.ErrInvalid)

	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte("a"), MaxHeaderFileSize+1), 0o600))
	for name, tc := range map[string]struct{ path, content, want string }{
		"missing":   {filepath.Join(dir, "missing"), "", "header_files Authorization: " + filepath.Join(dir, "missing") + ": no such file or directory"},
		"empty":     {secretFile(t, " \n\t\n"), "", "is empty"},
		"two lines": {secretFile(t, "Bearer s3cr3t\nX-Other: 1\n"), "s3cr3t", "holds a control character"},
		"nul":       {secretFile(t, "s3cr3t\x00"), "s3cr3t", "holds a control character"},
		"big":       {big, "aaaa", "larger than 8192 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := parse(t, spec(t, map[string]any{"url": "http://a.example/", "header_files": map[string]string{"Authorization": tc.path}}))
			require.NoError(t, err)
			_, err = New(c, Options{Guard: localGuard()})
			require.ErrorIs(t, err, executor.ErrInvalid)
			require.ErrorContains(t, err, tc.want)
			if tc.content != "" {
				require.NotContains(t, err.Error(), tc.content)
			}
		})
	}
}

// One Executor serves concurrent steps.
func TestConcurrentExecute(t *testing.T) {
	p := newPeer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Query().Get("host"))
	})
	e := executorOf(t, spec(t, map[string]any{"url": p.URL + "/?host={{urlquery .event.source_host}}"}))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			host := fmt.Sprintf("db-%d", i)
			res, err := e.Execute(context.Background(), executor.Request{Data: eventData(map[string]any{"source_host": host})})
			if err == nil && string(res.Output) != host {
				err = fmt.Errorf("output %q, want %q", res.Output, host)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, p.received(), 8)
}

func TestStatusError(t *testing.T) {
	require.Equal(t, "status 503 (Service Unavailable), want 2xx", (&StatusError{Code: 503}).Error())
	require.Equal(t, "status 200 (OK), want 201, 204", (&StatusError{Code: 200, Expected: []int{201, 204}}).Error())
	var se *StatusError
	require.True(t, errors.As(executor.MarkRetryable(fmt.Errorf("x: %w", &StatusError{Code: 502})), &se))
}
