// Package promutil holds what reflex's components share about their
// Prometheus metrics.
package promutil

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers *c with reg. When an identical collector is already
// registered (several components, lanes or handlers built on one
// registry), *c becomes that collector, so that they share it. A nil reg
// registers nothing. Any other registration error is returned.
func Register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(*c)
	if err == nil {
		return nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	return fmt.Errorf("register metrics: %w", err)
}
