package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// Route patterns, also used as the metrics' route label.
const (
	routeCharacters  = "/characters"
	routeCharacter   = "/characters/:id"
	routeHealthz     = "/healthz"
	routeReadyz      = "/readyz"
	routeHealthcheck = "/healthcheck"
	routeMetrics     = "/metrics"
	routeOpenAPI     = "/openapi.json"
	routeDocs        = "/docs"
	routeDocsSlash   = "/docs/"
	routeDocsAsset   = "/docs/assets/:version/:file"
)

// routes registers every route and the middleware chain. Order matters:
// observe is outermost (but for traceRoute, which only names the span) so
// it sees the final status of everything inside, including recovered
// panics and errors rendered as problems.
func (s *Server) routes() {
	e := s.echo
	if s.tracer != nil {
		e.Use(s.traceRoute)
	}
	e.Use(
		s.observe,
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			DisableStackAll:   true,
			DisablePrintStack: true,
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.log.ErrorContext(c.Request().Context(), "panic serving request", "err", err, "route", c.Path(), "stack", string(stack))
				return err
			},
		}),
	)
	if len(s.cfg.CORSAllowedOrigins) > 0 {
		e.Use(cors(s.cfg.CORSAllowedOrigins)) // outside the limiter: a 429 must be readable
	}
	e.Use(
		s.rateLimit,
		middleware.BodyLimit(bodyLimitString(s.cfg.BodyLimit)),
	)
	// Request timeouts are applied where work can block (a cache miss going
	// to the database, the health check), not here: a cache hit never
	// waits, and a timer per request would tax the hot path.

	get := []string{http.MethodGet, http.MethodHead}
	e.Match(get, routeCharacters, s.handleList())
	e.Match(get, routeCharacter, s.handleGet())
	e.Match(get, routeHealthz, s.handleHealthz())
	e.Match(get, routeReadyz, s.handleReadyz())
	e.Match(get, routeHealthcheck, s.handleHealthcheck())
	e.Match(get, routeMetrics, echo.WrapHandler(telemetry.MetricsHandler(s.registry)))
	e.Match(get, routeOpenAPI, s.handleOpenAPI())
	e.Match(get, routeDocs, s.handleDocs())
	// The page's asset URLs are relative to /docs: /docs/ would break them.
	// (Not in the OpenAPI document: a convenience, not part of the API.)
	e.Match(get, routeDocsSlash, func(c echo.Context) error {
		return c.Redirect(http.StatusPermanentRedirect, routeDocs)
	})
	e.Match(get, routeDocsAsset, s.handleDocsAsset())
}

// knownRoutes bounds the route label's values.
var knownRoutes = map[string]bool{
	routeCharacters: true, routeCharacter: true, routeHealthz: true, routeReadyz: true,
	routeHealthcheck: true, routeMetrics: true, routeOpenAPI: true,
	routeDocs: true, routeDocsSlash: true, routeDocsAsset: true,
}

// unlimitedRoutes are exempt from rate limiting: probes and scrapers come
// from few addresses at a steady rate and must never be refused.
var unlimitedRoutes = map[string]bool{routeHealthz: true, routeReadyz: true, routeMetrics: true}
