// Package httpapi serves the read-only character API over HTTP.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/rickmorty/rickmorty/pkg/cache"
	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// Store is what the API reads from; *postgres.Store implements it.
type Store interface {
	List(ctx context.Context, q character.ListQuery) (character.Page, error)
	Get(ctx context.Context, id int) (character.Character, character.Snapshot, error)
	Stats(ctx context.Context) (postgres.Stats, error)
	// DataVersion returns the version the primary holds now.
	DataVersion(ctx context.Context) (int64, error)
}

// Cache holds rendered responses, so a hit costs no encoding at all.
type Cache = cache.Cache[*entry]

// NewCache returns the response cache, registering its metrics with reg.
func NewCache(cfg cache.Config, reg prometheus.Registerer) *Cache {
	return cache.New[*entry](cfg, reg)
}

// Config holds the HTTP-level settings.
type Config struct {
	// RequestTimeout bounds the work done for one request.
	RequestTimeout time.Duration
	// BodyLimit is the largest request body accepted, in bytes. The API
	// reads no bodies, so this only refuses abuse early.
	BodyLimit int64
	// RateLimit is the sustained requests per second allowed per client
	// IP; 0 turns rate limiting off. RateBurst is the bucket size.
	RateLimit float64
	RateBurst int
	// RateMaxClients bounds the limiter's memory: beyond it, idle then
	// arbitrary clients are forgotten (and start with a full bucket).
	RateMaxClients int
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxRefreshAge makes /healthcheck report degraded when the last
	// successful ingest is older; 0 disables the check.
	MaxRefreshAge time.Duration
	// RetryAfter is what 503 answers advise clients to wait.
	RetryAfter time.Duration
	// CompressMinBytes is the smallest answer sent compressed (to clients
	// that accept gzip, br or zstd); 0 means the default, 1024.
	CompressMinBytes int
	// CacheControl is what successful list and item answers tell browsers
	// and shared caches (a CDN, the ingress); the zero value says no-cache.
	CacheControl CacheControl
	// CORSAllowedOrigins may read the API from a browser page of another
	// origin (see ParseCORSOrigins; "*" alone is any origin). Empty: CORS
	// is off, and no CORS header is ever sent.
	CORSAllowedOrigins []string
}

// CacheControl holds the Cache-Control directives of successful list and
// item answers, in whole seconds. Every answer carries an ETag and a
// Last-Modified, so a cache can always revalidate with a 304.
type CacheControl struct {
	MaxAge               time.Duration // max-age: how long any cache (a browser too) may reuse an answer
	SharedMaxAge         time.Duration // s-maxage: the same for shared caches only, overriding max-age there
	StaleWhileRevalidate time.Duration // stale-while-revalidate: served stale while a revalidation runs
	StaleIfError         time.Duration // stale-if-error: served stale while the API fails
}

// Header renders the directives: "no-cache" (store, but revalidate every
// time) when none is set, as every answer said before these settings.
func (cc CacheControl) Header() string {
	if cc == (CacheControl{}) {
		return "no-cache"
	}
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	h := "public, max-age=" + secs(cc.MaxAge)
	if cc.SharedMaxAge > 0 {
		h += ", s-maxage=" + secs(cc.SharedMaxAge)
	}
	if cc.StaleWhileRevalidate > 0 {
		h += ", stale-while-revalidate=" + secs(cc.StaleWhileRevalidate)
	}
	if cc.StaleIfError > 0 {
		h += ", stale-if-error=" + secs(cc.StaleIfError)
	}
	return h
}

// Deps are the server's collaborators.
type Deps struct {
	Store    Store
	Cache    *Cache
	Listener interface{ Connected() bool }
	Logger   *slog.Logger
	// Registry gets the HTTP metrics and is served on /metrics.
	Registry *prometheus.Registry
	// TracerProvider, when set, gets a server span per request (named by
	// route pattern, continuing an incoming W3C traceparent) and a
	// cache.fill span per cache miss. Nil: no tracing, and no cost.
	TracerProvider trace.TracerProvider
}

// Server is the API's http.Handler.
type Server struct {
	cfg      Config
	store    Store
	cache    *Cache
	listener interface{ Connected() bool }
	log      *slog.Logger
	registry *prometheus.Registry
	echo     *echo.Echo
	metrics  *httpMetrics
	limiter  *limiter
	// traced wraps echo in server spans; nil when tracing is off.
	traced http.Handler
	tracer trace.Tracer

	notifications *prometheus.CounterVec
	cacheControl  []string // the prebuilt Cache-Control of list and item answers

	ready    atomic.Bool
	draining atomic.Bool
}

// NewServer builds the router and middleware around deps.
func NewServer(cfg Config, deps Deps) *Server {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 4 << 10
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 2 * time.Second
	}
	if cfg.CompressMinBytes <= 0 {
		cfg.CompressMinBytes = 1024
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Cache == nil {
		deps.Cache = NewCache(cache.Config{}, nil)
	}
	if deps.Listener == nil {
		deps.Listener = notListening{}
	}
	s := &Server{
		cfg:      cfg,
		store:    deps.Store,
		cache:    deps.Cache,
		listener: deps.Listener,
		log:      deps.Logger,
		registry: deps.Registry,
		metrics:  newHTTPMetrics(deps.Registry),

		notifications: newNotificationCounter(deps.Registry),
		cacheControl:  []string{cfg.CacheControl.Header()},
	}
	if cfg.RateLimit > 0 {
		s.limiter = newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.RateMaxClients)
	}
	if deps.TracerProvider != nil {
		s.tracer = deps.TracerProvider.Tracer(tracerName)
		s.store = tracedStore{Store: s.store, tracer: s.tracer}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Echo's default RealIP believes X-Forwarded-For and X-Real-IP from
	// anyone (GO-2026-6872); ours only believes configured proxies.
	e.IPExtractor = func(r *http.Request) string { return clientAddr(r, cfg.TrustedProxies).String() }
	e.HTTPErrorHandler = s.handleError
	s.echo = e
	s.routes()
	if deps.TracerProvider != nil {
		s.traced = otelhttp.NewHandler(e, "http.server",
			otelhttp.WithTracerProvider(deps.TracerProvider),
			otelhttp.WithPropagators(telemetry.Propagator()),
			// The Prometheus metrics already cover requests.
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			// Probes and scrapes would be most of the traces and tell nothing.
			otelhttp.WithFilter(func(r *http.Request) bool { return !untracedPaths[r.URL.Path] }),
		)
	}
	return s
}

const tracerName = "github.com/rickmorty/rickmorty/pkg/httpapi"

// untracedPaths get no server span.
var untracedPaths = map[string]bool{routeHealthz: true, routeReadyz: true, routeMetrics: true}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.traced != nil {
		s.traced.ServeHTTP(w, r)
		return
	}
	s.echo.ServeHTTP(w, r)
}

// SetReady marks the pod ready once it has reached the database and seen
// the expected schema. Readiness is never withdrawn for a database outage:
// every pod would go unready at once and the Service would have no
// endpoints left to serve cached pages from.
func (s *Server) SetReady() { s.ready.Store(true) }

// StartDraining makes /readyz fail so load balancers stop sending new
// requests before the server shuts down.
func (s *Server) StartDraining() { s.draining.Store(true) }

type notListening struct{}

func (notListening) Connected() bool { return false }

// tracedStore puts a cache.fill span around the store reads. The handlers
// call List and Get only to fill the cache on a miss, so the span covers
// exactly the work a miss costs, with the database spans as its children.
type tracedStore struct {
	Store
	tracer trace.Tracer
}

func (s tracedStore) List(ctx context.Context, q character.ListQuery) (character.Page, error) {
	ctx, span := s.tracer.Start(ctx, "cache.fill", trace.WithAttributes(attribute.String("cache.key", "list "+q.Key())))
	defer span.End()
	p, err := s.Store.List(ctx, q)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return p, err
}

func (s tracedStore) Get(ctx context.Context, id int) (character.Character, character.Snapshot, error) {
	ctx, span := s.tracer.Start(ctx, "cache.fill", trace.WithAttributes(attribute.String("cache.key", "item "+strconv.Itoa(id))))
	defer span.End()
	c, v, err := s.Store.Get(ctx, id)
	if err != nil && character.ErrorCode(err) != character.ENOTFOUND { // a 404 is cached, not a failure
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return c, v, err
}
