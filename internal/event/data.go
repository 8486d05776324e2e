package event

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
)

// MarshalData encodes what the store keeps in event_data: the event's Data
// and the typed results of the stages that are persisted inside it. It
// returns nil when there is nothing to keep. Stores use only this and
// UnmarshalData for event_data, so that the layout of that document is
// defined here once.
func (e *Event) MarshalData() ([]byte, error) {
	if len(e.Data) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("event: encode event_data of event %d: %w", e.ID, err)
	}
	return b, nil
}

// UnmarshalData restores what MarshalData encoded. Empty input and JSON
// null leave the event without data.
func (e *Event) UnmarshalData(b []byte) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, &e.Data); err != nil {
		return fmt.Errorf("event: decode event_data of event %d: %w", e.ID, err)
	}
	return nil
}

// DefaultPartitions is the number of partitions of the intake and
// processed streams unless configured otherwise.
const DefaultPartitions = 16

// PartitionOf maps a host to one of n partitions (0 when n <= 1). Every
// part of reflex that partitions by host (the intake and processed stream
// subjects, the pipeline's workers, keyed state) uses this function, so
// that one host's events always land together.
func PartitionOf(host string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(host))
	return int(h.Sum32() % uint32(n)) //nolint:gosec // n > 1 partitions, far below 2^32
}
