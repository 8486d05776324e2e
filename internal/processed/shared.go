package processed

import (
	"bytes"
	"container/list"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
)

// DefaultSharedBytes bounds a SharedDecoder: the encoded bytes of the
// messages whose records it keeps.
const DefaultSharedBytes = 8 << 20

// SharedDecoder decodes each processed-stream message once for the
// consumers of one process: every downstream component has its durable
// consumer and reads every message, and decoding a message's events is
// most of what a consumer costs. The first consumer to read a message
// decodes it; the others, reading it soon after, get the same records.
// It keeps the most recently decoded messages up to a bound of their
// encoded bytes; a consumer that lags further decodes for itself.
//
// The records it hands out are shared: handlers must not modify them or
// their events (Handler says so too).
type SharedDecoder struct {
	mu    sync.Mutex
	max   int
	bytes int
	ll    *list.List // front: most recently decoded
	at    map[string]*list.Element

	hits, misses prometheus.Counter
}

type shared struct {
	id   string
	data []byte
	recs []Record
}

// NewSharedDecoder returns a SharedDecoder that keeps the records of at
// most maxBytes of encoded messages (0: DefaultSharedBytes), with its
// metrics registered on reg (nil: none).
func NewSharedDecoder(maxBytes int, reg prometheus.Registerer) (*SharedDecoder, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultSharedBytes
	}
	d := &SharedDecoder{max: maxBytes, ll: list.New(), at: map[string]*list.Element{}}
	d.hits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reflex_processed_shared_decodes_total",
		Help: "Processed-stream messages a consumer took already decoded by another consumer of this process.",
	})
	d.misses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reflex_processed_decodes_total",
		Help: "Processed-stream messages decoded (the first consumer of this process to read each, or one lagging behind the others).",
	})
	if err := promutil.Register(reg, &d.hits); err != nil {
		return nil, err
	}
	if err := promutil.Register(reg, &d.misses); err != nil {
		return nil, err
	}
	return d, nil
}

// Decode returns the records of the message msgID with body data: those
// another consumer decoded from the same bytes, or Decode's.
func (d *SharedDecoder) Decode(msgID string, data []byte) ([]Record, error) {
	d.mu.Lock()
	if el, ok := d.at[msgID]; ok {
		if e := el.Value.(*shared); bytes.Equal(e.data, data) {
			d.ll.MoveToFront(el)
			d.mu.Unlock()
			d.hits.Inc()
			return e.recs, nil
		}
	}
	d.mu.Unlock()
	_, recs, err := Decode(data)
	if err != nil {
		return nil, err
	}
	d.misses.Inc()
	if len(data) > d.max {
		return recs, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.at[msgID]; ok { // decoded meanwhile, or other bytes: keep the latest
		d.bytes -= len(el.Value.(*shared).data)
		d.ll.Remove(el)
	}
	d.at[msgID] = d.ll.PushFront(&shared{id: msgID, data: data, recs: recs})
	d.bytes += len(data)
	for d.bytes > d.max {
		el := d.ll.Back()
		e := el.Value.(*shared)
		d.ll.Remove(el)
		delete(d.at, e.id)
		d.bytes -= len(e.data)
	}
	return recs, nil
}
