package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/history"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/store"
)

// DefaultMaxBodyBytes is the webhook body limit when
// EventsOptions.MaxBodyBytes is zero: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// maxJSONBodyBytes limits the bodies of the small JSON endpoints (assets,
// keys).
const maxJSONBodyBytes = 64 << 10

// EventStore is the part of store.Store the Event Processing Service API
// reads and writes. It must be safe for concurrent use.
type EventStore interface {
	Event(ctx context.Context, id int64) (*event.Event, error)
	RawEvent(ctx context.Context, id int64) (*event.Raw, error)
	Events(ctx context.Context, q store.EventQuery) (store.EventPage, error)
	Correlations(ctx context.Context, id int64) ([]event.Correlation, error)
	Analytics(ctx context.Context, q store.AnalyticsQuery) ([]store.Bucket, error)
	PutAsset(ctx context.Context, a store.Asset) error
	Asset(ctx context.Context, host string) (store.Asset, error)
	DeleteAsset(ctx context.Context, host string) error
	Assets(ctx context.Context) ([]store.Asset, error)
}

var _ EventStore = store.Store(nil)

// Submitter puts accepted events on the intake log and returns their ids,
// in the order of items, once the log has acknowledged them
// (*intake.Intake). An error means the request is not acknowledged: errors
// wrapping intake.ErrBusy are answered 429, those wrapping bus.ErrFull or
// bus.ErrUnavailable (and any other) 503, both with Retry-After.
type Submitter interface {
	Submit(ctx context.Context, src event.SourceType, items []intake.Item) ([]int64, error)
}

var _ Submitter = (*intake.Intake)(nil)

// Decoder reads a webhook body (webhook.Decode).
type Decoder func(contentType string, body []byte, opts webhook.Options) ([]intake.Item, []webhook.Reject, error)

// Reject is a rejected event of a webhook body: its index in the body, the
// field at fault and the reason.
type Reject = webhook.Reject

// AssetCache is the in-memory asset inventory the enrich stage reads
// (*enrich.Inventory); the API updates it after each write to the store.
type AssetCache interface {
	Set(a store.Asset)
	Delete(host string)
}

// EventsOptions configure the Event Processing Service's HTTP handler.
type EventsOptions struct {
	// Store holds events, assets and correlations. Required.
	Store EventStore
	// Auth authenticates every /api/ request and manages keys. Required.
	Auth *auth.Authenticator
	// Submit takes accepted webhook events. Required.
	Submit Submitter
	// Decode reads webhook bodies; nil means webhook.Decode.
	Decode Decoder
	// Webhook is passed to Decode.
	Webhook webhook.Options
	// Rules holds the trigger rules, response templates and rule
	// executions of /api/v1/rules/ (usually the same store as Store); nil
	// means the rule API is not served (its paths are 404).
	Rules RuleStore
	// Assets is updated after each asset write; nil means no cache to
	// update.
	Assets AssetCache
	// MaxBodyBytes limits webhook bodies (413 above it); zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Ops, when set, answers GET /healthz, /readyz and /metrics (usually
	// NewOps); nil means those paths are 404. Its requests are passed to it
	// untouched, so it records its own HTTP metrics.
	Ops http.Handler
	// Logger receives the request log (debug level) and server-side
	// failures; nil discards. The caller adds any component attribute.
	Logger *slog.Logger
	// Registerer receives the HTTP and intake metrics; nil means do not
	// register.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Notifications serves the policy, silences and notification records
	// (notifications.go); without its Store those routes are 404.
	Notifications NotificationOptions
	// History, when set, answers the time buckets, top N and trends of
	// GET /api/v1/events/analytics (interval, top, limit, since, until)
	// and GET /api/v1/events/trends; nil means those parameters are
	// unknown and /trends is 404.
	History HistoryStore
	// Maintenance, when set, stores the maintenance windows of
	// /api/v1/maintenance; nil means those routes are 404.
	Maintenance MaintenanceStore
	// Context, when set, answers GET /api/v1/context; nil means 404.
	Context ContextAnalyzer
	// Patterns serves /api/v1/patterns (patterns.go); without its Store
	// those routes are 404.
	Patterns PatternOptions
	// PrepareTest, if set, runs on the normalized event of a rule test
	// the pipeline's stages that depend on nothing but the event (the
	// server's enricher and severity scorer), before the rule is matched.
	PrepareTest func(ctx context.Context, e *event.Event) error
	// Incidents serves /api/v1/incidents (incidents.go); without its Store
	// those routes are 404.
	Incidents IncidentOptions
	// Routes are the endpoints of the HTTP adapters (Alertmanager,
	// Grafana, remote write, InfluxDB line protocol), served beside the
	// webhook behind the same authentication.
	Routes []Route
}

// Route is an endpoint an HTTP adapter serves on the events service.
type Route struct {
	// Pattern is the http.ServeMux pattern, method included
	// ("POST /api/v1/events/alertmanager").
	Pattern string
	// Scope is the scope the request's key needs (default events:write).
	Scope string
	// Handler serves the request once it is authenticated.
	Handler http.Handler
	// Credentials, if set, extracts the API key from a request that does
	// not carry it as a bearer token (InfluxDB clients send "Token KEY" or
	// ?p=KEY): it returns the key, or "" to fall back to the bearer token.
	Credentials func(r *http.Request) string
}

// eventsAPI holds the handlers of the Event Processing Service.
type eventsAPI struct {
	store   EventStore
	auth    *auth.Authenticator
	submit  Submitter
	decode  Decoder
	webhook webhook.Options
	assets  AssetCache
	rules   RuleStore
	// normalizer normalizes the events of rule tests; prepareTest, when
	// set, runs the later stages that read only the event.
	normalizer  *normalize.Stage
	prepareTest func(ctx context.Context, e *event.Event) error
	history     *history.Analyzer // nil: no history routes
	contextual  ContextAnalyzer   // nil: no context route
	assetMu     sync.Mutex        // serializes asset writes (store, then cache)
	maxBody     int64
	logger      *slog.Logger
	intake      *intakeMetrics
	now         func() time.Time
}

// NewEvents returns the HTTP handler of the Event Processing Service. It
// serves the API under /api/v1/ (every route needs a bearer key with the
// route's scope) and passes the unauthenticated /healthz, /readyz and
// /metrics to opts.Ops (see NewOps). It fails when a required option is missing or metrics
// cannot be registered.
func NewEvents(opts EventsOptions) (http.Handler, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("api: new events: Options.Store is required")
	case opts.Auth == nil:
		return nil, errors.New("api: new events: Options.Auth is required")
	case opts.Submit == nil:
		return nil, errors.New("api: new events: Options.Submit is required")
	}
	s := &eventsAPI{
		store:   opts.Store,
		auth:    opts.Auth,
		submit:  opts.Submit,
		decode:  opts.Decode,
		webhook: opts.Webhook,
		assets:  opts.Assets,
		rules:   opts.Rules,
		maxBody: opts.MaxBodyBytes,
		logger:  opts.Logger,
		now:     opts.Now,

		prepareTest: opts.PrepareTest,
	}
	if s.decode == nil {
		s.decode = webhook.Decode
	}
	if opts.History != nil {
		s.history, _ = history.New(opts.History) // fails only without a store
	}
	s.contextual = opts.Context
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	hm, err := newHTTPMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("api: new events: %w", err)
	}
	if s.intake, err = newIntakeMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("api: new events: %w", err)
	}
	if s.normalizer, err = newTestNormalizer(); err != nil {
		return nil, fmt.Errorf("api: new events: %w", err)
	}

	rt := newRouter("events", s.logger, hm, s.now)
	rt.ops = opts.Ops
	mux := rt.mux

	mux.Handle("POST /api/v1/events/webhook", s.with(auth.ScopeEventsWrite, s.postWebhook))
	mux.Handle("GET /api/v1/events", s.with(auth.ScopeEventsRead, s.listEvents))
	mux.Handle("GET /api/v1/events/analytics", s.with(auth.ScopeEventsRead, s.analytics))
	if s.history != nil {
		mux.Handle("GET /api/v1/events/trends", s.with(auth.ScopeEventsRead, s.trends))
	}
	mux.Handle("GET /api/v1/events/{id}", s.with(auth.ScopeEventsRead, s.getEvent))
	mux.Handle("GET /api/v1/events/{id}/correlations", s.with(auth.ScopeEventsRead, s.correlations))

	mux.Handle("GET /api/v1/assets", s.with(auth.ScopeEventsRead, s.listAssets))
	mux.Handle("GET /api/v1/assets/{host}", s.with(auth.ScopeEventsRead, s.getAsset))
	mux.Handle("PUT /api/v1/assets/{host}", s.with(auth.ScopeAdmin, s.putAsset))
	mux.Handle("DELETE /api/v1/assets/{host}", s.with(auth.ScopeAdmin, s.deleteAsset))

	mux.Handle("POST /api/v1/keys", s.with(auth.ScopeAdmin, s.createKey))
	mux.Handle("GET /api/v1/keys", s.with(auth.ScopeAdmin, s.listKeys))
	mux.Handle("DELETE /api/v1/keys/{id}", s.with(auth.ScopeAdmin, s.revokeKey))
	if s.rules != nil {
		s.routeRules(mux)
	}
	s.notificationRoutes(mux, opts.Notifications)
	s.maintenanceRoutes(mux, opts.Maintenance)
	if s.contextual != nil {
		mux.Handle("GET /api/v1/context", s.with(auth.ScopeEventsRead, s.context))
	}
	s.incidentRoutes(mux, opts.Incidents)
	s.patternRoutes(mux, opts.Patterns)
	for _, r := range opts.Routes {
		scope := r.Scope
		if scope == "" {
			scope = auth.ScopeEventsWrite
		}
		h := s.with(scope, func(w http.ResponseWriter, req *http.Request, _ auth.Principal) { r.Handler.ServeHTTP(w, req) })
		if r.Credentials != nil {
			h = bearerFrom(r.Credentials, h)
		}
		mux.Handle(r.Pattern, h)
	}
	return rt, nil
}

// bearerFrom passes a request whose key creds finds on to h as a bearer
// token (a request that carries one already keeps it).
func bearerFrom(creds func(r *http.Request) string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key := creds(r); key != "" && !strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+key)
		}
		h.ServeHTTP(w, r)
	})
}

// handlerFunc is a handler that runs for an authenticated principal.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal)

// with authenticates the request and checks that its principal has scope
// before running h (see authenticated).
func (s *eventsAPI) with(scope string, h handlerFunc) http.Handler {
	return authenticated(s.auth, s.unavailable, scope, h)
}

// authenticated authenticates the request with a and checks that its
// principal has scope before running h: 401 (with WWW-Authenticate)
// without a valid key, 403 naming the scope without it, and a failure of
// the key store through unavailable.
func authenticated(a *auth.Authenticator, unavailable func(http.ResponseWriter, *http.Request, error, string),
	scope string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r.Context(), r)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				challenge := `Bearer realm="reflex"`
				if !errors.Is(err, auth.ErrNoCredentials) {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
				writeError(w, http.StatusUnauthorized, trimPrefixes(err.Error(), "auth: "), "")
				return
			}
			unavailable(w, r, err, "authenticate")
			return
		}
		infoFrom(r.Context()).keyID = p.KeyID
		if p.KeyID == "" {
			infoFrom(r.Context()).keyID = p.Name
		}
		if !p.Has(scope) {
			writeJSON(w, http.StatusForbidden, ErrorBody{
				Error: fmt.Sprintf("API key %q lacks the scope %q", p.Name, scope),
				Scope: scope,
			})
			return
		}
		h(w, r, p)
	})
}

// unavailable answers a failure of a dependency (see unavailable).
func (s *eventsAPI) unavailable(w http.ResponseWriter, r *http.Request, err error, what string) {
	unavailable(s.logger, w, r, err, what)
}

// unavailable answers a failure of a dependency (store, intake log): 503
// with Retry-After, logged; or, when the client left, no answer (counted as
// 499).
func unavailable(logger *slog.Logger, w http.ResponseWriter, r *http.Request, err error, what string) {
	if canceled(r, err) {
		clientGone(w)
		return
	}
	logger.LogAttrs(r.Context(), slog.LevelError, "api: "+what+" failed",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Any("err", err),
	)
	w.Header().Set("Retry-After", retryUnavailable)
	writeError(w, http.StatusServiceUnavailable, what+": service unavailable, retry later", "")
}
