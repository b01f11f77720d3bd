package httpapi

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: telemetry.Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe counts and times every request and renders its error, so the
// recorded status is the one the client gets. Labels are the route
// pattern, never the raw path, to keep cardinality bounded.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if !knownRoutes[route] {
			route = "unmatched"
		}
		code := c.Response().Status
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(route, methodLabel(c.Request().Method), statusLabel(code)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
		ctx := c.Request().Context()
		if err != nil && code >= http.StatusInternalServerError && s.tracer != nil {
			// otelhttp marks the span failed from the status; this says why.
			trace.SpanFromContext(ctx).RecordError(err)
		}
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.DebugContext(ctx, "request", "method", c.Request().Method, "route", route, "path", c.Request().URL.Path,
				"status", code, "duration_ms", float64(elapsed.Microseconds())/1000, "client", c.RealIP())
		}
		return nil
	}
}

// traceRoute names the server span after the route pattern, as in
// "GET /characters/:id", and sets http.route, once routing is known: the
// span is started by otelhttp before Echo routes. Unmatched requests keep
// the bare method as their name. Installed only when tracing is on.
func (s *Server) traceRoute(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if route := c.Path(); knownRoutes[route] {
			span := trace.SpanFromContext(c.Request().Context())
			span.SetName(spanMethod(c.Request().Method) + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		return next(c)
	}
}

// spanMethod is the method as span names have it: unknown ones are "HTTP".
func spanMethod(m string) string {
	if l := methodLabel(m); l != "OTHER" {
		return l
	}
	return "HTTP"
}

// methodLabel folds unknown methods into one value: clients may send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

var statusLabels = func() map[int]string {
	m := make(map[int]string)
	for code := 100; code < 600; code++ {
		m[code] = strconv.Itoa(code)
	}
	return m
}()

func statusLabel(code int) string {
	if l, ok := statusLabels[code]; ok {
		return l
	}
	return "other"
}

func bodyLimitString(n int64) string { return strconv.FormatInt(n, 10) + "B" }

// rateLimit refuses clients over their budget with 429 and Retry-After.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	if s.limiter == nil {
		return next
	}
	return func(c echo.Context) error {
		if unlimitedRoutes[c.Path()] {
			return next(c)
		}
		key := limitKey(clientAddr(c.Request(), s.cfg.TrustedProxies))
		if ok, wait := s.limiter.allow(key, time.Now()); !ok {
			c.Response().Header().Set("Retry-After", retryAfterSeconds(wait))
			return character.Errorf(character.ERATELIMITED, "Too many requests from your address; retry after %s seconds.", retryAfterSeconds(wait))
		}
		return next(c)
	}
}

// clientAddr is the address requests are attributed to. X-Forwarded-For is
// believed only when the direct peer is a trusted proxy, and then read
// from the right, skipping trusted hops: entries further left were written
// by the client and may be anything.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	addr := peer
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop := strings.TrimSpace(hops[j])
			hop = strings.TrimSuffix(strings.TrimPrefix(hop, "["), "]")
			a, err := netip.ParseAddr(hop)
			if err != nil {
				// Garbage where a trusted proxy should have written an
				// address: attribute the request to the last hop we trust.
				return addr
			}
			a = a.Unmap().WithZone("")
			if !isTrusted(a, trusted) {
				return a
			}
			addr = a
		}
	}
	return addr
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.IPv4Unspecified()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limitKey groups IPv6 clients by /64: one host usually owns a whole /64
// and could otherwise rotate addresses to get fresh buckets.
func limitKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// limiter holds one token bucket per client with bounded memory.
type limiter struct {
	limit      rate.Limit
	burst      int
	maxClients int
	// idle is how long an untouched bucket takes to refill completely;
	// after that forgetting it changes nothing.
	idle time.Duration

	mu        sync.Mutex
	clients   map[netip.Addr]*client
	lastSweep time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(rps float64, burst, maxClients int) *limiter {
	burst = max(burst, 1)
	if maxClients <= 0 {
		maxClients = 100_000
	}
	idle := time.Duration(float64(burst) / rps * float64(time.Second))
	return &limiter{
		limit:      rate.Limit(rps),
		burst:      burst,
		maxClients: maxClients,
		idle:       max(idle, time.Second),
		clients:    make(map[netip.Addr]*client),
	}
}

// allow takes a token for key, or says how long until one is available.
func (l *limiter) allow(key netip.Addr, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.idle {
		l.sweep(now)
	}
	cl, ok := l.clients[key]
	if !ok {
		for k := range l.clients { // full: forget an arbitrary client
			if len(l.clients) < l.maxClients {
				break
			}
			delete(l.clients, k)
		}
		cl = &client{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = cl
	}
	cl.seen = now
	r := cl.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, cl := range l.clients {
		if now.Sub(cl.seen) > l.idle {
			delete(l.clients, k)
		}
	}
}
