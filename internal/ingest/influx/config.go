package influx

import (
	"log/slog"
	"time"

	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/metrics"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes    = 4 << 20
	DefaultMaxDecodedBytes = 32 << 20
	DefaultMaxConcurrent   = 4
	// DefaultMaxPoints bounds the samples of one request.
	DefaultMaxPoints = 1 << 20
)

// Sink takes decoded samples (*metrics.Store).
type Sink interface {
	Append(batch []metrics.Series) (metrics.Result, error)
}

// Options configure a Handler. Sink and Metrics are required.
type Options struct {
	Sink    Sink
	Metrics *ingest.Metrics
	// MaxBodyBytes bounds the body as sent (default 4 MiB; 413 above).
	MaxBodyBytes int64
	// MaxDecodedBytes bounds a gzip body once decompressed (default 32 MiB).
	MaxDecodedBytes int64
	// MaxConcurrent bounds the requests decoded at once (default 4); one
	// more is answered 429 with Retry-After.
	MaxConcurrent int
	Now           func() time.Time
	Logger        *slog.Logger
}
