package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// letters spells n in letters, so that titles differ beyond digits and
// deduplication folds nothing.
func letters(n int) string {
	s := ""
	for {
		s = string(rune('a'+n%26)) + s
		n /= 26
		if n == 0 {
			return s
		}
	}
}

// TestAnomalyRateBurst posts two hours of a steady event rate for one host
// (timestamps in the past, so no waiting), then a burst, and finds the
// anomaly event the monitor raises, stored like any other event.
func TestAnomalyRateBurst(t *testing.T) {
	ts := start(t, testConfig(t))
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	n := 0
	postMinute := func(minute, count int) {
		var evs []string
		for k := range count {
			n++
			at := base.Add(time.Duration(minute)*time.Minute + time.Duration(k)*time.Minute/time.Duration(count))
			evs = append(evs, fmt.Sprintf(`{"source":"app","event_type":"request","severity":"info","host":"db-01","service":"pg","message":"served %s","timestamp":%q}`,
				letters(n), at.Format(time.RFC3339Nano)))
		}
		ts.post("[" + strings.Join(evs, ",") + "]")
	}
	for m := range 120 {
		postMinute(m, 4+m%3)
	}
	postMinute(120, 100)
	postMinute(121, 5) // closes minute 120

	deadline := time.Now().Add(20 * time.Second)
	for {
		var page struct {
			Events []struct {
				EventType  string         `json:"event_type"`
				SourceType string         `json:"source_type"`
				SourceHost string         `json:"source_host"`
				Data       map[string]any `json:"event_data"`
			} `json:"events"`
		}
		require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events?event_type=anomaly&hours=24", "", &page))
		for _, e := range page.Events {
			md, _ := e.Data["metadata"].(map[string]any)
			if md["series"] != "rate:host:db-01" {
				continue
			}
			require.Equal(t, "reflex", e.SourceType)
			require.Equal(t, "db-01", e.SourceHost)
			require.EqualValues(t, 100, md["value"])
			require.Equal(t, "1m0s", md["interval"])
			require.GreaterOrEqual(t, md["anomaly_score"], 0.8)
			require.Less(t, md["expected_high"], 100.0)
			require.Less(t, md["expected_low"], md["expected_high"])
			st, ok := ts.srv.Anomaly().Rate("db-01")
			require.True(t, ok)
			require.Equal(t, time.Minute, st.Interval)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no anomaly event for rate:host:db-01 within 20s: %+v", page.Events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
