package webhook

// DefaultMaxEvents is the number of events one request may carry when
// Options.MaxEvents is zero.
const DefaultMaxEvents = 10000

// Options configures Decode. The zero value is a safe default.
type Options struct {
	// MaxEvents is the most events one body may hold; a body with more is
	// rejected as a whole (ErrBadRequest). Zero or less means
	// DefaultMaxEvents.
	MaxEvents int
	// MaxEventBytes is the largest one event may be, compacted, in bytes:
	// what one intake log message can carry beside its envelope. A body
	// holding a larger event is refused as a whole (ErrEventTooLarge)
	// before any of it is published. Zero or less means no limit.
	MaxEventBytes int
}

func (o Options) maxEvents() int {
	if o.MaxEvents <= 0 {
		return DefaultMaxEvents
	}
	return o.MaxEvents
}
