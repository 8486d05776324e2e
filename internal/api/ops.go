package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OpsOptions configure the operational endpoints. The zero value serves
// /healthz and an always-ready /readyz, and no /metrics.
type OpsOptions struct {
	// Ready reports whether the service can do its work (storage and bus
	// connected); nil means always ready. It should answer quickly.
	Ready func() error
	// Gatherer is what /metrics exposes; nil means /metrics is not served.
	Gatherer prometheus.Gatherer
	// Service is the "service" label of the HTTP metrics, such as
	// "autonomous"; empty means "ops".
	Service string
	// Logger receives the request log (debug level) and panics; nil
	// discards.
	Logger *slog.Logger
	// Registerer receives the HTTP metrics; nil means do not register.
	Registerer prometheus.Registerer
}

// NewOps returns a handler that serves only the operational endpoints,
// without authentication:
//
//	GET /healthz  200 "ok" while the process runs
//	GET /readyz   200 "ok" when Ready returns nil, else 503 with the reason
//	GET /metrics  Prometheus exposition of Gatherer
//
// Any other path is a JSON 404. It is the whole handler of a service
// without an API of its own (the Autonomous Response Service for now), and
// the EventsOptions.Ops of the Event Processing Service, which passes those
// three paths to it.
func NewOps(opts OpsOptions) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	service := opts.Service
	if service == "" {
		service = "ops"
	}
	m, err := newHTTPMetrics(opts.Registerer)
	if err != nil {
		// A collector with the same name but another shape is registered:
		// a wiring bug. Serve anyway, with unregistered metrics.
		logger.Error("api: ops metrics not registered", "err", err)
		m, _ = newHTTPMetrics(nil)
	}
	rt := newRouter(service, logger, m, time.Now)
	mountOps(rt.mux, opts.Ready, opts.Gatherer, logger)
	return rt
}

// mountOps registers the operational endpoints on mux.
func mountOps(mux *http.ServeMux, ready func() error, g prometheus.Gatherer, logger *slog.Logger) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
				return
			}
		}
		writeText(w, http.StatusOK, "ok\n")
	})
	if g != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}
