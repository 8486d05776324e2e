package bus

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// envelopeOf100 returns a message shaped like an intake envelope of 100
// webhook events, about 25 KB.
func envelopeOf100() []byte {
	var sb strings.Builder
	sb.WriteString(`{"v":1,"base_id":123456789,"received_at":"2026-11-27T07:00:00Z","source_type":"webhook","events":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"source":"prom","severity":"medium","data":{"source":"prom","event_type":"threshold_breach","severity":"warning","host":"web-%03d","service":"nginx","message":"CPU usage exceeded 95%%","timestamp":"2026-11-27T07:00:00Z","metadata":{"cpu_usage":97.5}}}`, i)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkPublish measures intake throughput on the embedded bus (file
// store, fsync before every acknowledgement) with envelopes of 100 events.
func BenchmarkPublish(b *testing.B) {
	data := envelopeOf100()
	const eventsPerMsg = 100
	open := func(b *testing.B) *Bus {
		bus, err := Open(context.Background(), Options{DataDir: b.TempDir(), MaxBytes: 8 << 30})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = bus.Close() })
		return bus
	}
	report := func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportMetric(float64(b.N*eventsPerMsg)/b.Elapsed().Seconds(), "events/s")
	}

	b.Run("sync/8-publishers", func(b *testing.B) {
		bus := open(b)
		var seq atomic.Int64
		b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := strconv.FormatInt(seq.Add(1), 10)
				if err := bus.Publish(context.Background(), LaneLo, id, data); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b)
	})

	b.Run("batch/64", func(b *testing.B) {
		bus := open(b)
		var seq int64
		b.ResetTimer()
		for done := 0; done < b.N; {
			n := min(64, b.N-done)
			msgs := make([]Message, n)
			for i := range msgs {
				seq++
				msgs[i] = Message{Lane: LaneLo, MsgID: strconv.FormatInt(seq, 10), Data: data}
			}
			if err := bus.PublishBatch(context.Background(), msgs); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		report(b)
	})
}
