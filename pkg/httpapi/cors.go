package httpapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// corsRoutes are the routes a page of another origin may read when CORS is
// on: the data and its contract. Probes, metrics and the docs page stay
// same-origin.
var corsRoutes = map[string]bool{routeCharacters: true, routeCharacter: true, routeOpenAPI: true}

// corsMaxAge is how long (seconds) a browser may reuse a preflight answer;
// Chromium caps it at two hours. A cached preflight only lets the browser
// send the request: an origin removed from the list still cannot read the
// answer, which then carries no Access-Control-Allow-Origin.
const corsMaxAge = 7200

// cors answers preflights and marks the answers of corsRoutes readable by
// the allowed origins, with Echo's middleware. It runs outside the rate
// limiter, so a 429 (and its Retry-After) is readable too, and preflights,
// which never reach a handler or the database, are not counted against
// the client. Requests without an Origin, other routes, and every request
// when origins is empty are left exactly as they were: OPTIONS answers 204
// with Allow, other methods 405.
func cors(origins []string) echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper:      func(c echo.Context) bool { return !corsRoutes[c.Path()] },
		AllowOrigins: origins,
		AllowMethods: []string{http.MethodGet, http.MethodHead},
		// Conditional requests: the ETag (and Last-Modified) a page keeps
		// revalidate its copy. Other request headers are refused.
		AllowHeaders: []string{"If-None-Match", "If-Modified-Since"},
		// Beyond the CORS-safelisted ones (Cache-Control, Content-Type, ...):
		// the validators, the paging links and how long to wait after a 429
		// or 503.
		ExposeHeaders: []string{"ETag", "Link", "Last-Modified", "Retry-After"},
		MaxAge:        corsMaxAge,
	})
}

var (
	originScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	hostLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// ParseCORSOrigins parses CORS_ALLOWED_ORIGINS: a comma-separated list of
// origins, each scheme://host[:port] exactly as a browser sends it in the
// Origin header (lower case, no path, no default port), or the single
// value "*" for any origin. Empty items are skipped; an empty list turns
// CORS off. Every invalid item is named in the error.
func ParseCORSOrigins(list string) ([]string, error) {
	var out []string
	var bad []string
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if item == "*" {
			out = append(out, item)
			continue
		}
		if err := checkOrigin(item); err != nil {
			bad = append(bad, fmt.Sprintf("%q %v", item, err))
			continue
		}
		out = append(out, item)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("not an origin (scheme://host[:port]): %s", strings.Join(bad, "; "))
	}
	for _, o := range out {
		if o == "*" && len(out) > 1 {
			return nil, fmt.Errorf(`"*" allows every origin: give it alone, not beside others`)
		}
	}
	return out, nil
}

// checkOrigin accepts what a browser serializes as an origin, so that the
// comparison with the Origin header, which Echo makes byte for byte, can
// match. Wildcards and the opaque "null" origin are refused.
func checkOrigin(o string) error {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || !originScheme.MatchString(scheme) {
		return fmt.Errorf("needs a lower-case scheme and ://")
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@\\*") {
		return fmt.Errorf("must have a host and no path (not even /), query, fragment, user or wildcard")
	}
	u, err := url.Parse(o)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("has no valid host")
	}
	host := u.Hostname()
	if strings.HasPrefix(rest, "[") { // an IPv6 literal
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" || "["+a.String()+"]" != rest[:strings.LastIndex(rest, "]")+1] {
			return fmt.Errorf("has an IPv6 address not in its canonical form")
		}
	} else {
		for label := range strings.SplitSeq(host, ".") {
			if !hostLabel.MatchString(label) {
				return fmt.Errorf("has a host that is not lower-case letters, digits and hyphens")
			}
		}
	}
	if p := u.Port(); p != "" || strings.HasSuffix(rest, ":") {
		n, err := strconv.Atoi(p)
		switch {
		case err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p:
			return fmt.Errorf("has an invalid port")
		case (scheme == "http" && n == 80) || (scheme == "https" && n == 443):
			return fmt.Errorf("names the default port, which browsers leave out")
		}
	}
	return nil
}
