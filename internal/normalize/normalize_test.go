package normalize

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

var (
	receivedAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	processNow = receivedAt.Add(150 * time.Millisecond)
)

// lineNormalizer is a test adapter: Data is a JSON object with "msg" and
// optionally "host", "tags" and "ts" (RFC 3339).
var lineNormalizer = NormalizerFunc(func(raw *event.Raw) (Draft, error) {
	var v struct {
		Msg  string    `json:"msg"`
		Host string    `json:"host"`
		Tags []string  `json:"tags"`
		TS   time.Time `json:"ts"`
	}
	if err := json.Unmarshal(raw.Data, &v); err != nil {
		return Draft{}, err
	}
	if v.Msg == "" {
		return Draft{}, errors.New("no msg")
	}
	return Draft{Event: &event.Event{Title: v.Msg, SourceHost: v.Host, Tags: v.Tags}, Timestamp: v.TS}, nil
})

func newStage(t *testing.T, opts Options) *Stage {
	t.Helper()
	if opts.Normalizers == nil {
		opts.Normalizers = map[event.SourceType]Normalizer{event.SourceSyslog: lineNormalizer}
	}
	s, err := New(opts)
	require.NoError(t, err)
	return s
}

func raw(id int64, st event.SourceType, data string) event.Raw {
	return event.Raw{ID: id, SourceSystem: "rsyslog", SourceType: st, Data: json.RawMessage(data), ReceivedAt: receivedAt}
}

func TestProcessDispatchesBySourceType(t *testing.T) {
	n := newStage(t, Options{})
	b := &pipeline.Batch{Now: processNow, Raw: []event.Raw{
		raw(1, event.SourceSyslog, `{"msg":"one","host":"A"}`),
		raw(2, event.SourceSyslog, `{"host":"no message"}`),
		raw(3, event.SourceType("carrier-pigeon"), `{"msg":"three"}`),
		raw(4, event.SourceSyslog, `not json`),
		raw(5, event.SourceSyslog, `{"msg":"five","host":"b"}`),
		raw(6, event.SourceWebhook, `{"message":"no webhook normalizer registered"}`),
	}}
	require.NoError(t, n.Process(context.Background(), b))
	require.Len(t, b.Events, 2)
	require.Equal(t, int64(1), b.Events[0].ID)
	require.Equal(t, "a", b.Events[0].SourceHost)
	require.Equal(t, event.SourceSyslog, b.Events[0].SourceType)
	require.Equal(t, int64(5), b.Events[1].ID)
	require.Len(t, b.Outcomes, 4)
	require.Equal(t, "normalize: syslog event: no msg", b.Outcomes[2].Error)
	require.Equal(t, `normalize: no normalizer for source type "carrier-pigeon"`, b.Outcomes[3].Error)
	require.Contains(t, b.Outcomes[4].Error, "normalize: syslog event: invalid character")
	require.Equal(t, `normalize: no normalizer for source type "webhook"`, b.Outcomes[6].Error)

	_, err := n.Normalize(raw(7, "x", `{}`), processNow)
	require.ErrorIs(t, err, ErrNoNormalizer)

	// Each raw event is accounted for once the store batch is built.
	sb := b.ToStore()
	require.Len(t, sb.New, 2)
	for _, r := range sb.Raw {
		switch r.ID {
		case 1, 5:
			require.Equal(t, r.ID, r.ProcessedEventID)
			require.Empty(t, r.ProcessingErrors)
		default:
			require.Zero(t, r.ProcessedEventID)
			require.Len(t, r.ProcessingErrors, 1)
		}
	}
}

func TestFallback(t *testing.T) {
	n := newStage(t, Options{Fallback: NormalizerFunc(func(raw *event.Raw) (Draft, error) {
		return Draft{Event: &event.Event{Title: "fallback " + string(raw.SourceType)}}, nil
	})})
	e, err := n.Normalize(raw(1, "carrier-pigeon", `{}`), processNow)
	require.NoError(t, err)
	require.Equal(t, "fallback carrier-pigeon", e.Title)
	e, err = n.Normalize(raw(2, event.SourceSyslog, `{"msg":"registered wins"}`), processNow)
	require.NoError(t, err)
	require.Equal(t, "registered wins", e.Title)
}

func TestNewRejectsNilNormalizer(t *testing.T) {
	_, err := New(Options{Normalizers: map[event.SourceType]Normalizer{event.SourceSNMP: nil}})
	require.ErrorContains(t, err, `nil normalizer for source type "snmp"`)
}

func TestNormalizerReturningNoEvent(t *testing.T) {
	n := newStage(t, Options{Normalizers: map[event.SourceType]Normalizer{
		event.SourceSNMP: NormalizerFunc(func(*event.Raw) (Draft, error) { return Draft{}, nil }),
	}})
	_, err := n.Normalize(raw(1, event.SourceSNMP, `{}`), processNow)
	require.EqualError(t, err, "normalize: snmp event: normalizer returned no event")
}

func TestClean(t *testing.T) {
	long := strings.Repeat("é", MaxTitleLen) + "  tail"
	tests := []struct {
		name  string
		draft event.Event
		check func(t *testing.T, e *event.Event)
	}{
		{"defaults", event.Event{}, func(t *testing.T, e *event.Event) {
			require.Equal(t, DefaultEventType, e.EventType)
			require.Equal(t, event.Info, e.Severity)
			require.Equal(t, "rsyslog", e.SourceSystem)
			require.Equal(t, DefaultEventType, e.Title, "a title is never empty")
		}},
		{"title from description", event.Event{Description: "  disk full on /var  "}, func(t *testing.T, e *event.Event) {
			require.Equal(t, "disk full on /var", e.Title)
		}},
		{"long title is cut without trailing space", event.Event{Title: strings.Repeat("a", MaxTitleLen-1) + " b"}, func(t *testing.T, e *event.Event) {
			require.Equal(t, strings.Repeat("a", MaxTitleLen-1), e.Title)
		}},
		{"runes", event.Event{Title: long}, func(t *testing.T, e *event.Event) {
			require.Equal(t, MaxTitleLen, utf8.RuneCountInString(e.Title))
		}},
		{"text is storable", event.Event{Title: "a\x00b\xffc", SourceHost: " Web\x00-01 ", SourceService: "\xfe"}, func(t *testing.T, e *event.Event) {
			require.Equal(t, "ab\uFFFDc", e.Title)
			require.Equal(t, "web-01", e.SourceHost)
			require.Equal(t, "\uFFFD", e.SourceService)
		}},
		{"host is lowercased before it is cut", event.Event{SourceHost: strings.Repeat("İ", 300)}, func(t *testing.T, e *event.Event) {
			require.LessOrEqual(t, utf8.RuneCountInString(e.SourceHost), MaxHostLen)
			require.Equal(t, strings.ToLower(e.SourceHost), e.SourceHost)
		}},
		{"tags", event.Event{Tags: []string{"Prod", "prod", " ", "", strings.Repeat("t", 60)}}, func(t *testing.T, e *event.Event) {
			require.Equal(t, []string{"prod", strings.Repeat("t", MaxTagLen)}, e.Tags)
		}},
		{"the normalizer's source system when the raw event has none", event.Event{SourceSystem: "zabbix"}, func(t *testing.T, e *event.Event) {
			require.Equal(t, "rsyslog", e.SourceSystem, "the raw event's wins")
		}},
		{"a resolution is info and tagged", event.Event{Severity: event.Critical, Alert: &event.Alert{Key: " fp-1 ", Status: event.AlertResolved}}, func(t *testing.T, e *event.Event) {
			require.Equal(t, event.Info, e.Severity)
			require.Equal(t, []string{TagResolved}, e.Tags)
			require.Equal(t, "fp-1", e.Alert.Key)
		}},
		{"an alert without a key is no alert", event.Event{Severity: event.High, Alert: &event.Alert{Key: "  ", Status: event.AlertResolved}}, func(t *testing.T, e *event.Event) {
			require.Nil(t, e.Alert)
			require.Equal(t, event.High, e.Severity)
		}},
		{"an unknown status fires; a long key is hashed; a zero time is none", event.Event{Alert: &event.Alert{Key: strings.Repeat("k", 300), Status: "pending", StartsAt: &time.Time{}}}, func(t *testing.T, e *event.Event) {
			require.Equal(t, event.AlertFiring, e.Alert.Status)
			require.Equal(t, event.AlertKey(strings.Repeat("k", 300)), e.Alert.Key)
			require.LessOrEqual(t, len(e.Alert.Key), event.MaxAlertKeyLen)
			require.Nil(t, e.Alert.StartsAt)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.draft
			r := raw(9, event.SourceSyslog, `{}`)
			require.False(t, Clean(Draft{Event: &e}, &r, processNow, DefaultMaxAge, DefaultMaxFuture))
			require.Equal(t, int64(9), e.ID)
			require.Equal(t, int64(9), e.RawEventID)
			require.Equal(t, receivedAt, e.OccurredAt)
			require.Equal(t, receivedAt, e.LastSeenAt)
			require.Equal(t, processNow, e.ProcessedAt)
			require.Equal(t, 1, e.OccurrenceCount)
			require.Equal(t, event.Fingerprint(&e), e.Fingerprint)
			tt.check(t, &e)
		})
	}
	t.Run("source type when no source system at all", func(t *testing.T) {
		e := event.Event{}
		r := raw(9, event.SourceSNMP, `{}`)
		r.SourceSystem = ""
		Clean(Draft{Event: &e}, &r, processNow, DefaultMaxAge, DefaultMaxFuture)
		require.Equal(t, "snmp", e.SourceSystem)
	})
}

func TestAlertEpisodesAreDistinctEvents(t *testing.T) {
	start1, start2 := receivedAt.Add(-time.Hour), receivedAt.Add(-time.Minute)
	fp := func(st event.AlertStatus, starts *time.Time) string {
		e := event.Event{EventType: "HighLoad", Alert: &event.Alert{Key: "fp-1", Status: st, StartsAt: starts}}
		r := raw(9, event.SourceAlertmanager, `{}`)
		Clean(Draft{Event: &e}, &r, processNow, DefaultMaxAge, DefaultMaxFuture)
		return e.Fingerprint
	}
	require.Equal(t, fp(event.AlertFiring, &start1), fp(event.AlertFiring, &start1), "a re-sent firing is a repeat")
	require.NotEqual(t, fp(event.AlertFiring, &start1), fp(event.AlertFiring, &start2), "a new episode is a new event")
	require.NotEqual(t, fp(event.AlertFiring, &start1), fp(event.AlertResolved, &start1), "the resolution is an event of its own")
}

func TestCleanTimestamp(t *testing.T) {
	r := raw(9, event.SourceSyslog, `{}`)
	e := event.Event{}
	require.True(t, Clean(Draft{Event: &e, Timestamp: receivedAt.Add(time.Hour)}, &r, processNow, DefaultMaxAge, DefaultMaxFuture))
	require.Equal(t, receivedAt, e.OccurredAt)
	require.Equal(t, receivedAt.Add(time.Hour).Format(time.RFC3339Nano), e.Data[DataOriginalTimestamp])
	require.Contains(t, e.Tags, TagTimestampAdjusted)

	e = event.Event{}
	require.True(t, Clean(Draft{Event: &e, OriginalTimestamp: "0001-01-01T00:00:00Z"}, &r, processNow, DefaultMaxAge, DefaultMaxFuture),
		"a zero timestamp the source did give is out of bounds")
	require.Equal(t, "0001-01-01T00:00:00Z", e.Data[DataOriginalTimestamp])

	e = event.Event{}
	require.False(t, Clean(Draft{Event: &e, Timestamp: receivedAt.Add(-time.Second + 999)}, &r, processNow, DefaultMaxAge, DefaultMaxFuture))
	require.Equal(t, receivedAt.Add(-time.Second), e.OccurredAt, "cut to the microsecond")
}

func TestNormalizeMissingReceivedAt(t *testing.T) {
	id := event.IDAt(receivedAt) + 3
	r := raw(id, event.SourceSyslog, `{"msg":"m"}`)
	r.ReceivedAt = time.Time{}
	e, err := newStage(t, Options{}).Normalize(r, processNow)
	require.NoError(t, err)
	require.Equal(t, event.TimeOfID(id), e.ReceivedAt)
	require.Equal(t, e.ReceivedAt, e.OccurredAt)
}

func TestProcessCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &pipeline.Batch{Now: processNow, Raw: []event.Raw{raw(1, event.SourceSyslog, `{"msg":"m"}`)}}
	require.ErrorIs(t, newStage(t, Options{}).Process(ctx, b), context.Canceled)
	require.Empty(t, b.Events)
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"ééé", 2, "éé"},
		{"🚀🚀🚀", 1, "🚀"},
		{"a🚀b", 2, "a🚀"},
		{"ab", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Truncate(tt.in, tt.n)
			require.Equal(t, tt.want, got)
			require.True(t, utf8.ValidString(got))
		})
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func TestConcurrentProcess(t *testing.T) {
	n := newStage(t, Options{Registerer: prometheus.NewRegistry()})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				b := &pipeline.Batch{Now: processNow, Raw: []event.Raw{
					raw(int64(i), event.SourceSyslog, `{"msg":"m","ts":"2001-01-01T00:00:00Z"}`),
					raw(int64(i)+1000, "bogus", `{}`),
				}}
				if err := n.Process(context.Background(), b); err != nil || len(b.Events) != 1 {
					t.Errorf("process: %v, %d events", err, len(b.Events))
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 200.0, counterValue(t, n.adjusted.WithLabelValues("syslog")))
	require.Equal(t, 200.0, counterValue(t, n.failed.WithLabelValues("unknown")))
}

func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newStage(t, Options{Registerer: reg})
	b := newStage(t, Options{Registerer: reg})
	require.Same(t, a.failed, b.failed)
	require.Same(t, a.adjusted, b.adjusted)
}
