package api

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadTimeoutAnswers408 is the regression test of issue 5 §1.7: when
// the server's read timeout expired while a client was still sending the
// body, the wire carried a non-standard 499. It carries 408 Request
// Timeout, and the connection is closed.
func TestReadTimeoutAnswers408(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: e.h, ReadTimeout: 500 * time.Millisecond, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	for _, path := range []string{"/api/v1/events/webhook", "/api/v1/keys"} {
		key := e.keys["writer"]
		if path == "/api/v1/keys" {
			key = e.keys["admin"]
		}
		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		// Headers promise 1000 bytes; a few are sent, then nothing: the
		// read timeout expires while the handler reads the body.
		_, err = conn.Write([]byte("POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"message\":"))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, path)
		require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, path)
		require.True(t, resp.Close, "the connection is closed after a 408")
		var sb strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
		require.Contains(t, sb.String(), "read timeout", path)
		resp.Body.Close()
		conn.Close()
	}
	require.Equal(t, 2.0, metricSum(t, e.reg, "reflex_http_requests_total", map[string]string{"code": "408"}))
}
