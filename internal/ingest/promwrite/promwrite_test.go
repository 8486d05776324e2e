package promwrite

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/metrics"
)

type sink struct {
	mu    sync.Mutex
	got   []metrics.Series
	err   error
	limit int // series beyond it are dropped
	block chan struct{}
}

func (s *sink) Append(b []metrics.Series) (metrics.Result, error) {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return metrics.Result{}, s.err
	}
	var r metrics.Result
	for _, x := range b {
		if s.limit > 0 && len(s.got) >= s.limit {
			r.Dropped += len(x.Points)
			continue
		}
		s.got = append(s.got, x)
		r.Accepted += len(x.Points)
	}
	return r, nil
}

func newHandler(t *testing.T, sk *sink, o Options) (*Handler, *ingest.Metrics) {
	t.Helper()
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	o.Sink, o.Metrics = sk, m
	h, err := New(o)
	require.NoError(t, err)
	return h, m
}

func writeRequest(t *testing.T, js string) []byte {
	t.Helper()
	var r request
	require.NoError(t, json.Unmarshal([]byte(js), &r))
	return snappy.Encode(nil, r.encode(t))
}

const twoSeries = `{"timeseries":[
 {"labels":[{"name":"__name__","value":"node_load1"},{"name":"instance","value":"web-01:9100"}],"samples":[{"value":7,"timestamp":1772445600000}]},
 {"labels":[{"name":"__name__","value":"up"},{"name":"instance","value":"web-01:9100"}],"samples":[{"value":1,"timestamp":1772445600000}]}]}`

func post(h http.Handler, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/metrics/write", bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHandler(t *testing.T) {
	good := writeRequest(t, twoSeries)
	for name, tc := range map[string]struct {
		body   []byte
		hdr    map[string]string
		code   int
		reason string
		inBody string
	}{
		"ok":                {good, nil, http.StatusNoContent, "", ""},
		"no version header": {good, map[string]string{"X-Prometheus-Remote-Write-Version": ""}, http.StatusNoContent, "", ""},
		"proto param":       {good, map[string]string{"Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest"}, http.StatusNoContent, "", ""},
		"gzip":              {good, map[string]string{"Content-Encoding": "gzip"}, http.StatusUnsupportedMediaType, "protocol", "snappy"},
		"json":              {good, map[string]string{"Content-Type": "application/json"}, http.StatusUnsupportedMediaType, "protocol", "application/x-protobuf"},
		"v2":                {good, map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, http.StatusUnsupportedMediaType, "protocol", "remote write 1.0"},
		"version 2":         {good, map[string]string{"X-Prometheus-Remote-Write-Version": "2.0.0"}, http.StatusUnsupportedMediaType, "protocol", "0.1.0"},
		"not snappy":        {[]byte("\xff\xff\xff\xff\xff\xff"), nil, http.StatusBadRequest, "snappy", "snappy"},
		"bad protobuf":      {snappy.Encode(nil, []byte{0x0a, 0x05, 0x01}), nil, http.StatusBadRequest, "parse", "timeseries[0]"},
		"too large":         {bytes.Repeat([]byte{0}, 2<<10), nil, http.StatusRequestEntityTooLarge, "too_large", "larger than"},
		"decoded too large": {snappy.Encode(nil, make([]byte, 1500)), nil, http.StatusRequestEntityTooLarge, "too_large", "decompressed"},
	} {
		t.Run(name, func(t *testing.T) {
			sk := &sink{}
			h, m := newHandler(t, sk, Options{MaxBodyBytes: 1 << 10, MaxDecodedBytes: 1 << 10})
			w := post(h, tc.body, tc.hdr)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), tc.inBody)
			require.Equal(t, 1.0, testutil.ToFloat64(m.Received.WithLabelValues(Adapter, Listener)))
			if tc.reason != "" {
				require.Equal(t, 1.0, testutil.ToFloat64(m.Rejected.WithLabelValues(Adapter, Listener, tc.reason)))
				require.Empty(t, sk.got)
				return
			}
			require.Equal(t, 2.0, testutil.ToFloat64(m.Accepted.WithLabelValues(Adapter, Listener)))
			require.Len(t, sk.got, 2)
			require.Equal(t, "node_load1", sk.got[0].Labels.Name())
		})
	}
}

func TestHandlerFull(t *testing.T) {
	good := writeRequest(t, twoSeries)
	// Series over the store's bound are dropped: 204 all the same.
	sk := &sink{limit: 1}
	h, m := newHandler(t, sk, Options{})
	require.Equal(t, http.StatusNoContent, post(h, good, nil).Code)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Dropped.WithLabelValues(Adapter, Listener, "series_limit")))

	// The alert queue is full: 503, retried by Prometheus.
	sk = &sink{err: metrics.ErrBusy}
	h, _ = newHandler(t, sk, Options{})
	w := post(h, good, nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.NotEmpty(t, w.Header().Get("Retry-After"))

	// Too many requests at once: 429.
	sk = &sink{block: make(chan struct{})}
	h, m = newHandler(t, sk, Options{MaxConcurrent: 1})
	done := make(chan int)
	go func() { done <- post(h, good, nil).Code }()
	require.Eventually(t, func() bool { return len(h.sem) == 1 }, 5e9, 1e6)
	w = post(h, good, nil)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.True(t, strings.Contains(w.Body.String(), "in progress"))
	close(sk.block)
	require.Equal(t, http.StatusNoContent, <-done)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Dropped.WithLabelValues(Adapter, Listener, "busy")))
}
