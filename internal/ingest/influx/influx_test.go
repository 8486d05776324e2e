package influx

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/metrics"
)

type sink struct {
	mu  sync.Mutex
	got []metrics.Series
	err error
}

func (s *sink) Append(b []metrics.Series) (metrics.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return metrics.Result{}, s.err
	}
	s.got = append(s.got, b...)
	return metrics.Result{Accepted: len(b)}, nil
}

func newHandler(t *testing.T, sk *sink, o Options) (*Handler, *ingest.Metrics) {
	t.Helper()
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	o.Sink, o.Metrics, o.Now = sk, m, func() time.Time { return now }
	h, err := New(o)
	require.NoError(t, err)
	return h, m
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func TestHandler(t *testing.T) {
	const lines = "cpu,host=web-01 usage_idle=98.5,usage_user=1.5 1700000000\nsystem,host=web-01 uptime_format=\"1 day\" 1700000000\n"
	for name, tc := range map[string]struct {
		url, enc string
		body     []byte
		code     int
		samples  int
		reason   string
		inBody   string
	}{
		"ok":          {"/write?db=telegraf&precision=s", "", []byte(lines), http.StatusNoContent, 2, "not_numeric", ""},
		"gzip":        {"/api/v2/write?org=o&bucket=b&precision=s", "gzip", gz(t, lines), http.StatusNoContent, 2, "not_numeric", ""},
		"partial":     {"/write?precision=s", "", []byte(lines + "cpu,host=x usage_idle=\n"), http.StatusBadRequest, 2, "parse", "partial write: 1 of 3 lines rejected"},
		"precision":   {"/write?precision=h", "", []byte(lines), http.StatusBadRequest, 0, "precision", `is not one of ns, us, ms, s`},
		"bad gzip":    {"/write", "gzip", []byte("nope"), http.StatusBadRequest, 0, "read", "gzip"},
		"deflate":     {"/write", "deflate", []byte(lines), http.StatusUnsupportedMediaType, 0, "encoding", "deflate"},
		"too large":   {"/write", "", bytes.Repeat([]byte("m f=1\n"), 400), http.StatusRequestEntityTooLarge, 0, "too_large", "larger than"},
		"gzip bomb":   {"/write", "gzip", gz(t, string(bytes.Repeat([]byte("m f=1\n"), 1000))), http.StatusRequestEntityTooLarge, 0, "too_large", "decompressed"},
		"empty":       {"/write", "", nil, http.StatusNoContent, 0, "", ""},
		"only string": {"/write", "", []byte(`m s="x"`), http.StatusNoContent, 0, "not_numeric", ""},
	} {
		t.Run(name, func(t *testing.T) {
			sk := &sink{}
			h, m := newHandler(t, sk, Options{MaxBodyBytes: 1 << 11, MaxDecodedBytes: 1 << 11})
			req := httptest.NewRequest(http.MethodPost, tc.url, bytes.NewReader(tc.body))
			if tc.enc != "" {
				req.Header.Set("Content-Encoding", tc.enc)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), tc.inBody)
			require.Len(t, sk.got, tc.samples)
			require.Equal(t, float64(tc.samples), testutil.ToFloat64(m.Accepted.WithLabelValues(Adapter, Listener)))
			if tc.reason != "" {
				require.Positive(t, testutil.ToFloat64(m.Rejected.WithLabelValues(Adapter, Listener, tc.reason)))
			}
			if tc.code == http.StatusBadRequest {
				require.NotEmpty(t, w.Header().Get("X-Influxdb-Error"))
			}
		})
	}
}

func TestHandlerBusy(t *testing.T) {
	h, _ := newHandler(t, &sink{err: metrics.ErrBusy}, Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/write", bytes.NewReader([]byte("m f=1"))))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "5", w.Header().Get("Retry-After"))
}

func TestCredentials(t *testing.T) {
	for want, set := range map[string]func(r *http.Request){
		"k2":  func(r *http.Request) { r.Header.Set("Authorization", "Token k2") },
		"k1p": func(r *http.Request) { r.URL.RawQuery = "u=telegraf&p=k1p" },
		"kb":  func(r *http.Request) { r.SetBasicAuth("telegraf", "kb") },
		"":    func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") },
	} {
		r := httptest.NewRequest(http.MethodPost, "/write", nil)
		set(r)
		require.Equal(t, want, Credentials(r))
	}
}
