package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
)

var t0 = time.Date(2026, 11, 27, 7, 0, 0, 123456789, time.UTC)

func fixedNow() time.Time { return t0 }

func openBus(t *testing.T, o bus.Options) *bus.Bus {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	b, err := bus.Open(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

func item(sev event.Severity, host string) Item {
	return Item{
		SourceSystem: "prometheus",
		Severity:     sev,
		Data:         json.RawMessage(fmt.Sprintf(`{"host":%q,"severity":%q,"message":"m"}`, host, sev)),
		Host:         host,
	}
}

// readEnvelopes consumes n envelopes from a lane.
func readEnvelopes(t *testing.T, b *bus.Bus, lane bus.Lane, n int) ([]Envelope, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := b.Consume(ctx, lane, bus.ConsumeOptions{})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	var envs []Envelope
	var msgIDs []string
	for len(envs) < n {
		msgs, err := c.Next(ctx)
		require.NoError(t, err)
		for _, m := range msgs {
			var e Envelope
			require.NoError(t, json.Unmarshal(m.Data, &e))
			envs = append(envs, e)
			msgIDs = append(msgIDs, m.MsgID)
			require.NoError(t, m.Ack())
		}
	}
	return envs, msgIDs
}

func counter(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, c.Write(&d))
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

func TestSubmit(t *testing.T) {
	b := openBus(t, bus.Options{})
	reg := prometheus.NewRegistry()
	in, err := New(Options{Bus: b, IDs: event.NewIDGen(3, fixedNow), Now: fixedNow, Partitions: 1, MaxEventsPerMessage: 2, Registerer: reg})
	require.NoError(t, err)

	items := []Item{
		item(event.Info, "a"), item(event.Critical, "b"), item(event.Low, "c"),
		item(event.High, "d"), item(event.Medium, "e"), item(event.Critical, "f"),
		item(event.Info, "g"),
	}
	ids, err := in.Submit(context.Background(), event.SourceWebhook, items)
	require.NoError(t, err)
	require.Len(t, ids, len(items))
	seen := map[int64]bool{}
	for _, id := range ids {
		require.False(t, seen[id], "ids are unique")
		seen[id] = true
		require.Equal(t, t0.Truncate(time.Millisecond), event.TimeOfID(id))
	}

	hi, hiIDs := readEnvelopes(t, b, bus.LaneHi, 2) // 3 urgent events, 2 per envelope
	lo, loIDs := readEnvelopes(t, b, bus.LaneLo, 2) // 4 others
	byID := map[int64]event.Raw{}
	for lane, envs := range map[bus.Lane][]Envelope{bus.LaneHi: hi, bus.LaneLo: lo} {
		msgIDs := hiIDs
		if lane == bus.LaneLo {
			msgIDs = loIDs
		}
		for k, e := range envs {
			if k > 0 {
				require.Greater(t, e.BaseID, envs[k-1].BaseID, "a lane's envelopes are in the log in request order")
			}
			require.Equal(t, EnvelopeVersion, e.Version)
			require.Equal(t, strconv.FormatInt(e.BaseID, 10), msgIDs[k], "the message id is the base id")
			require.Equal(t, event.SourceWebhook, e.SourceType)
			require.True(t, e.ReceivedAt.Equal(t0))
			require.LessOrEqual(t, len(e.Events), 2)
			for _, it := range e.Events {
				require.Equal(t, lane, LaneOf(it.Severity))
			}
			for _, r := range e.Raw() {
				byID[r.ID] = r
			}
		}
	}
	require.Len(t, byID, len(items))
	for i, id := range ids {
		r, ok := byID[id]
		require.True(t, ok, "item %d (id %d) is in the log", i, id)
		require.JSONEq(t, string(items[i].Data), string(r.Data), "item %d", i)
		require.Equal(t, "prometheus", r.SourceSystem)
	}
	require.InDelta(t, 3, counter(t, in.met.acceptedTotal.WithLabelValues("webhook", "hi")), 0)
	require.InDelta(t, 4, counter(t, in.met.acceptedTotal.WithLabelValues("webhook", "lo")), 0)
	require.InDelta(t, 0, counter(t, in.met.inflight), 0)

	t.Run("no items", func(t *testing.T) {
		ids, err := in.Submit(context.Background(), event.SourceWebhook, nil)
		require.NoError(t, err)
		require.Empty(t, ids)
	})
	t.Run("a second intake on the same registry shares the metrics", func(t *testing.T) {
		in2, err := New(Options{Bus: b, IDs: event.NewIDGen(4, nil), Registerer: reg})
		require.NoError(t, err)
		require.Same(t, in.met.acceptedTotal, in2.met.acceptedTotal)
	})
}

func TestSubmitPartitions(t *testing.T) {
	b := openBus(t, bus.Options{})
	in, err := New(Options{Bus: b, IDs: event.NewIDGen(3, nil)})
	require.NoError(t, err)
	require.Equal(t, b.Partitions(), in.opts.Partitions, "the bus's partitions by default")
	var items []Item
	partitions := map[int]bool{}
	for i := range 40 {
		h := fmt.Sprintf("web-%02d", i)
		items = append(items, item(event.Info, h))
		partitions[event.PartitionOf(h, b.Partitions())] = true
	}
	ids, err := in.Submit(context.Background(), event.SourceWebhook, items)
	require.NoError(t, err)
	require.Len(t, ids, len(items))
	envs, _ := readEnvelopes(t, b, bus.LaneLo, len(partitions))
	require.Len(t, envs, len(partitions), "one envelope per partition")
	events := 0
	for _, e := range envs {
		var p = -1
		for _, it := range e.Events {
			var d struct{ Host string }
			require.NoError(t, json.Unmarshal(it.Data, &d))
			q := event.PartitionOf(d.Host, b.Partitions())
			if p >= 0 {
				require.Equal(t, p, q, "an envelope holds the events of one partition")
			}
			p = q
			events++
		}
	}
	require.Equal(t, len(items), events)
}

func TestSubmitFullLog(t *testing.T) {
	b := openBus(t, bus.Options{MaxBytes: 32 << 10})
	in, err := New(Options{Bus: b, IDs: event.NewIDGen(0, nil)})
	require.NoError(t, err)
	big := make([]Item, 200)
	for i := range big {
		big[i] = Item{SourceSystem: "s", Severity: event.Info, Data: json.RawMessage(fmt.Sprintf(`{"pad":"%0300d"}`, i))}
	}
	_, err = in.Submit(context.Background(), event.SourceWebhook, big)
	require.ErrorIs(t, err, bus.ErrFull)
}

func TestNewRequiresDependencies(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no bus", Options{IDs: event.NewIDGen(0, nil)}},
		{"no ids", Options{Bus: &fakeBus{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			require.Error(t, err)
		})
	}
}

// fakeBus is a Publisher whose answers the test scripts.
type fakeBus struct {
	mu     sync.Mutex
	calls  []call
	answer func(n int, c call) error // n counts calls from 0
	block  chan struct{}
	start  chan struct{}
}

type call struct {
	lane      bus.Lane
	msgID     string
	data      []byte
	partition int
}

func (f *fakeBus) PublishBatch(ctx context.Context, msgs []bus.Message) error {
	errs := make([]error, len(msgs))
	failed := false
	for i, m := range msgs {
		if errs[i] = f.publish(ctx, m); errs[i] != nil {
			failed = true
		}
	}
	if failed {
		return &bus.BatchError{Errs: errs}
	}
	return nil
}

func (f *fakeBus) publish(ctx context.Context, m bus.Message) error {
	if f.start != nil {
		f.start <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	c := call{m.Lane, m.MsgID, m.Data, m.Partition}
	n := len(f.calls)
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.answer != nil {
		return f.answer(n, c)
	}
	return nil
}

// published returns the calls so far.
func (f *fakeBus) published() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func TestSubmitBusy(t *testing.T) {
	f := &fakeBus{block: make(chan struct{}), start: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	in, err := New(Options{Bus: f, IDs: event.NewIDGen(0, nil), MaxInFlight: 1, Registerer: reg})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := in.Submit(context.Background(), event.SourceWebhook, []Item{item(event.Info, "a")})
		done <- err
	}()
	<-f.start // the first submission is waiting for the log
	_, err = in.Submit(context.Background(), event.SourceWebhook, []Item{item(event.Info, "b")})
	require.ErrorIs(t, err, ErrBusy)
	require.InDelta(t, 1, counter(t, in.met.inflight), 0)
	require.InDelta(t, 1, counter(t, in.met.busy), 0)
	close(f.block)
	require.NoError(t, <-done)
	require.InDelta(t, 0, counter(t, in.met.inflight), 0)
}

func TestSubmitRetries(t *testing.T) {
	unavailable := fmt.Errorf("bus: publish lo: %w: no responders", bus.ErrUnavailable)
	full := fmt.Errorf("bus: publish lo: %w", bus.ErrFull)
	tests := []struct {
		name      string
		answer    func(n int, c call) error
		wantErr   error
		wantCalls int
	}{
		{"first attempt fails, second succeeds", func(n int, _ call) error {
			if n == 0 {
				return unavailable
			}
			return nil
		}, nil, 2},
		{"every attempt fails", func(int, call) error { return unavailable }, bus.ErrUnavailable, 3},
		{"a full log is not retried", func(int, call) error { return full }, bus.ErrFull, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBus{answer: tt.answer}
			in, err := New(Options{Bus: f, IDs: event.NewIDGen(0, nil), RetryWait: time.Millisecond})
			require.NoError(t, err)
			ids, err := in.Submit(context.Background(), event.SourceWebhook, []Item{item(event.Low, "a")})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Nil(t, ids)
			} else {
				require.NoError(t, err)
				require.Len(t, ids, 1)
			}
			require.Len(t, f.calls, tt.wantCalls)
			for _, c := range f.calls {
				require.Equal(t, f.calls[0].msgID, c.msgID, "retries keep the message id")
				require.Equal(t, f.calls[0].data, c.data)
			}
		})
	}
}

func TestSubmitPartialFailure(t *testing.T) {
	// The critical envelope is stored, the other is not: Submit fails.
	f := &fakeBus{answer: func(_ int, c call) error {
		if c.lane == bus.LaneLo {
			return fmt.Errorf("bus: %w", bus.ErrFull)
		}
		return nil
	}}
	in, err := New(Options{Bus: f, IDs: event.NewIDGen(0, nil)})
	require.NoError(t, err)
	_, err = in.Submit(context.Background(), event.SourceWebhook, []Item{item(event.Critical, "a"), item(event.Info, "b")})
	require.ErrorIs(t, err, bus.ErrFull)
	require.Contains(t, err.Error(), "1 of 2 envelopes")
}

func TestSubmitInvalidItem(t *testing.T) {
	f := &fakeBus{}
	in, err := New(Options{Bus: f, IDs: event.NewIDGen(0, nil)})
	require.NoError(t, err)
	items := []Item{item(event.Info, "a"), {SourceSystem: "s", Severity: event.Info, Data: json.RawMessage(`{"x":`)}}
	_, err = in.Submit(context.Background(), event.SourceWebhook, items)
	require.ErrorIs(t, err, ErrInvalidItem)
	var ie *ItemError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, 1, ie.Index)
	require.Empty(t, f.calls, "nothing is published")
}

func TestPack(t *testing.T) {
	pad := func(n int) Item {
		return Item{SourceSystem: "s", Severity: event.Info, Data: json.RawMessage(strconv.Quote(strings.Repeat("x", n)))}
	}
	tests := []struct {
		name       string
		partitions int
		maxEvents  int
		maxBytes   int
		items      []Item
		want       [][]int // indexes per envelope, critical lane first
	}{
		{"lanes apart, critical first", 1, 10, 1 << 20,
			[]Item{item(event.Info, "a"), item(event.Critical, "b"), item(event.Low, "c"), item(event.High, "d")},
			[][]int{{1, 3}, {0, 2}}},
		{"by count", 1, 2, 1 << 20,
			[]Item{item(event.Info, "a"), item(event.Info, "b"), item(event.Info, "c")},
			[][]int{{0, 1}, {2}}},
		{"by bytes", 1, 100, 1200,
			[]Item{pad(400), pad(400), pad(400), pad(2000), pad(10)},
			[][]int{{0, 1}, {2}, {3}, {4}}},
		// web-01 and web-12 are partition 7 of 16, web-02 partition 10.
		{"by partition, in order within each", 16, 10, 1 << 20,
			[]Item{item(event.Info, "web-01"), item(event.Info, "web-02"), item(event.Critical, "web-12"), item(event.Info, "web-12"), item(event.Info, "web-02")},
			[][]int{{2}, {0, 3}, {1, 4}}},
		{"partition and count", 16, 1, 1 << 20,
			[]Item{item(event.Info, "web-01"), item(event.Info, "web-12")},
			[][]int{{0}, {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := New(Options{Bus: &fakeBus{}, IDs: event.NewIDGen(0, nil), Partitions: tt.partitions, MaxEventsPerMessage: tt.maxEvents, MaxMessageBytes: tt.maxBytes})
			require.NoError(t, err)
			var got [][]int
			for _, e := range in.pack(tt.items) {
				got = append(got, e.idx)
				for _, it := range e.items {
					require.Equal(t, e.partition, event.PartitionOf(it.Host, tt.partitions), "one partition per envelope")
				}
				data := encode(1, t0, event.SourceWebhook, e.items)
				if len(e.idx) > 1 {
					require.LessOrEqual(t, len(data), tt.maxBytes)
				}
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
	}{
		{"plain", []Item{item(event.Critical, "web-01")}},
		{"escapes", []Item{{SourceSystem: "a\"b\\c\n\t\r\x01\x1f</script>", Severity: event.Low, Data: json.RawMessage(`{"k": [1, 2.5, "x"]}`)}}},
		{"unicode", []Item{{SourceSystem: "zabbix-äöü-日本-\u2028", Severity: event.Info, Data: json.RawMessage(`"ok"`)}}},
		{"invalid utf-8", []Item{{SourceSystem: "bad\xff\xfebytes", Severity: event.Info, Data: json.RawMessage(`null`)}}},
		{"empty data", []Item{{SourceSystem: "", Severity: "", Data: nil}}},
		{"several", []Item{item(event.Info, "a"), item(event.High, "b"), item(event.Low, "c")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encode(987654321, t0, event.SourceSyslog, tt.items)
			require.True(t, json.Valid(got), "%s", got)

			want := Envelope{Version: EnvelopeVersion, BaseID: 987654321, ReceivedAt: t0, SourceType: event.SourceSyslog}
			for _, it := range tt.items {
				if it.Data == nil {
					it.Data = json.RawMessage("null")
				}
				want.Events = append(want.Events, it)
			}
			wantJSON, err := json.Marshal(want)
			require.NoError(t, err)
			require.JSONEq(t, string(wantJSON), string(got))

			var back Envelope
			require.NoError(t, json.Unmarshal(got, &back))
			require.Equal(t, want.BaseID, back.BaseID)
			require.True(t, back.ReceivedAt.Equal(t0))
			require.Len(t, back.Events, len(tt.items))
		})
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("prometheus", "critical", []byte(`{"host":"a"}`))
	f.Add("a\"b\\\n", "", []byte(`[1,2]`))
	f.Add("\xff\xfe", "low", []byte(`"x"`))
	f.Fuzz(func(t *testing.T, source, severity string, data []byte) {
		if !json.Valid(data) {
			return
		}
		items := []Item{{SourceSystem: source, Severity: event.Severity(severity), Data: data}}
		got := encode(1, t0, event.SourceWebhook, items)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %q", got)
		}
		var back Envelope
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		// encoding/json decodes our output as it would its own.
		want, _ := json.Marshal(Envelope{Version: EnvelopeVersion, BaseID: 1, ReceivedAt: t0, SourceType: event.SourceWebhook, Events: items})
		var wantBack Envelope
		if err := json.Unmarshal(want, &wantBack); err != nil {
			t.Fatal(err)
		}
		if back.Events[0].SourceSystem != wantBack.Events[0].SourceSystem || back.Events[0].Severity != wantBack.Events[0].Severity {
			t.Fatalf("round trip: got %q/%q, want %q/%q", back.Events[0].SourceSystem, back.Events[0].Severity, wantBack.Events[0].SourceSystem, wantBack.Events[0].Severity)
		}
	})
}

var errSentinel = errors.New("x")

func TestItemError(t *testing.T) {
	e := &ItemError{Index: 2, Err: errSentinel}
	require.ErrorIs(t, e, ErrInvalidItem)
	require.Contains(t, e.Error(), "item 2")
}

// smallBus is a Publisher whose log takes messages of at most max bytes.
type smallBus struct {
	Publisher
	max int64
}

func (b smallBus) MaxPayload() int64 { return b.max }

// Envelopes are cut below the log's max payload, so that an external NATS
// with a small max_payload never refuses an envelope of many requests.
func TestEnvelopesFitTheLogsMaxPayload(t *testing.T) {
	in, err := New(Options{Bus: smallBus{max: 64 << 10}, IDs: event.NewIDGen(1, nil)})
	require.NoError(t, err)
	require.Equal(t, 60<<10, in.opts.MaxMessageBytes)
	in, err = New(Options{Bus: smallBus{max: 8 << 20}, IDs: event.NewIDGen(1, nil)})
	require.NoError(t, err)
	require.Equal(t, DefaultMaxMessageBytes, in.opts.MaxMessageBytes)
}
