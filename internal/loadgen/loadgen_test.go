package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuantile(t *testing.T) {
	h := histogram{count: 100, buckets: map[float64]float64{0.01: 50, 0.1: 90, 1: 100, math.Inf(1): 100}}
	require.InDelta(t, 0.01, h.quantile(0.5), 1e-9)
	require.InDelta(t, 0.1+0.9*(95-90)/10.0, h.quantile(0.95), 1e-9)
	require.InDelta(t, 0.1+0.9*(99-90)/10.0, h.quantile(0.99), 1e-9)
	require.True(t, math.IsNaN(histogram{}.quantile(0.5)))

	before := histogram{count: 40, buckets: map[float64]float64{0.01: 40, 0.1: 40, 1: 40, math.Inf(1): 40}}
	d := h.sub(before)
	require.Equal(t, 60.0, d.count)
	require.InDelta(t, 0.01+0.09*(30-10)/(50-10.0), d.quantile(0.5), 1e-9)
}

func TestLetters(t *testing.T) {
	require.Equal(t, "a", letters(0))
	require.Equal(t, "z", letters(25))
	require.Equal(t, "ba", letters(26))
}

func TestBodyIsValidWebhookJSON(t *testing.T) {
	g := &generator{o: Options{}, seq: new(atomic.Int64), c: &counters{}}
	g.o.defaults()
	var buf bytes.Buffer
	g.body(&buf, rand.New(rand.NewPCG(1, 2)), 50, "")
	var events []map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &events))
	require.Len(t, events, 50)
	for _, e := range events {
		for _, f := range []string{"source", "event_type", "severity", "host", "service", "message", "timestamp", "metadata"} {
			require.Contains(t, e, f)
		}
	}
	buf.Reset()
	g.body(&buf, rand.New(rand.NewPCG(1, 2)), 10, "critical")
	require.NoError(t, json.Unmarshal(buf.Bytes(), &events))
	for _, e := range events {
		require.Equal(t, "critical", e["severity"])
	}
}

func TestValidate(t *testing.T) {
	require.ErrorIs(t, Options{}.Validate(), errNoToken)
	require.Error(t, Options{Token: "x", Critical: 2}.Validate())
	require.NoError(t, Options{Token: "x"}.Validate())
}

// Repeats fold: every repeat of a host has the same fingerprint, so that
// DupRatio is the share of events deduplication sees as repeats (it was
// about 0.3% when repeats drew their source and severity at random).
func TestRepeatsShareTheirHostsFingerprint(t *testing.T) {
	g := &generator{o: Options{DupRatio: 1, Hosts: 5}, seq: new(atomic.Int64), c: &counters{}}
	g.o.defaults()
	var buf bytes.Buffer
	g.body(&buf, rand.New(rand.NewPCG(3, 4)), 200, "")
	var events []struct {
		Source, EventType, Severity, Host, Service, Message string
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &events))
	byHost := map[string]string{}
	for _, e := range events {
		key := e.Source + "|" + e.EventType + "|" + e.Severity + "|" + e.Service
		if have, ok := byHost[e.Host]; ok {
			require.Equal(t, have, key, "host %s", e.Host)
		}
		byHost[e.Host] = key
	}
	require.Len(t, byHost, 5)
}
