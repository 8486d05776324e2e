package promutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestRegisterShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	newCounter := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"l"})
	}
	a, b := newCounter(), newCounter()
	require.NoError(t, Register(reg, &a))
	require.NoError(t, Register(reg, &b))
	require.Same(t, a, b, "the second becomes the registered one")

	// A different collector under the same name is an error.
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"})
	require.Error(t, Register(reg, &g))

	c := newCounter()
	require.NoError(t, Register(nil, &c), "nil registerer: nothing to do")
}
