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
}

func (o Options) maxEvents() int {
	if o.MaxEvents <= 0 {
		return DefaultMaxEvents
	}
	return o.MaxEvents
}
