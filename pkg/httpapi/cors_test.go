package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/httpapi"
)

const (
	appOrigin   = "https://app.example.com"
	otherOrigin = "https://evil.example.net"
)

// preflight is what a browser sends before a GET with If-None-Match.
func preflight(origin string) map[string]string {
	return map[string]string{
		"Origin":                         origin,
		"Access-Control-Request-Method":  http.MethodGet,
		"Access-Control-Request-Headers": "if-none-match",
	}
}

// corsHeaders returns the response's Access-Control-* headers.
func corsHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = h.Get(k)
		}
	}
	return out
}

func varies(h http.Header, field string) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), field) {
				return true
			}
		}
	}
	return false
}

// Without CORS_ALLOWED_ORIGINS nothing changes: OPTIONS answers 204 with
// Allow, other methods 405 problem+json, and no CORS header is sent.
func TestCORSOffSendsNoCORSHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	for _, path := range []string{"/characters", "/characters/1", "/openapi.json"} {
		r := e.do(http.MethodOptions, path, preflight(appOrigin))
		if r.status != http.StatusNoContent || r.header.Get("Allow") != "OPTIONS, GET, HEAD" || len(corsHeaders(r.header)) != 0 {
			t.Errorf("preflight %s: %d, Allow %q, CORS %v", path, r.status, r.header.Get("Allow"), corsHeaders(r.header))
		}
		g := e.do(http.MethodGet, path, map[string]string{"Origin": appOrigin})
		if g.status != http.StatusOK || len(corsHeaders(g.header)) != 0 || varies(g.header, "Origin") {
			t.Errorf("GET %s from another origin: %d, CORS %v, Vary %v", path, g.status, corsHeaders(g.header), g.header.Values("Vary"))
		}
	}
	decodeProblem(t, e.do(http.MethodPost, "/characters", map[string]string{"Origin": appOrigin}), http.StatusMethodNotAllowed)
}

func TestCORSAllowsTheListedOriginsOnly(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 30, cfg: httpapi.Config{CORSAllowedOrigins: []string{"http://127.0.0.1:3000", appOrigin}}})
	for _, path := range []string{"/characters?page_size=5", "/characters/1", "/openapi.json"} {
		p := e.do(http.MethodOptions, path, preflight(appOrigin))
		want := map[string]string{
			"Access-Control-Allow-Origin":  appOrigin,
			"Access-Control-Allow-Methods": "GET,HEAD",
			"Access-Control-Allow-Headers": "If-None-Match,If-Modified-Since",
			"Access-Control-Max-Age":       "7200",
		}
		if got := corsHeaders(p.header); p.status != http.StatusNoContent || len(got) != len(want) {
			t.Errorf("preflight %s: %d %v, want 204 %v", path, p.status, got, want)
		}
		for k, v := range want {
			if got := p.header.Get(k); got != v {
				t.Errorf("preflight %s: %s = %q, want %q", path, k, got, v)
			}
		}
		if !varies(p.header, "Origin") || len(p.body) != 0 {
			t.Errorf("preflight %s: Vary %v, %d body bytes", path, p.header.Values("Vary"), len(p.body))
		}

		g := e.do(http.MethodGet, path, map[string]string{"Origin": appOrigin})
		if g.status != http.StatusOK || g.header.Get("Access-Control-Allow-Origin") != appOrigin || !varies(g.header, "Origin") {
			t.Errorf("GET %s: %d, CORS %v, Vary %v", path, g.status, corsHeaders(g.header), g.header.Values("Vary"))
		}
		exposed := g.header.Get("Access-Control-Expose-Headers")
		for _, h := range []string{"ETag", "Link", "Last-Modified", "Retry-After"} {
			if !strings.Contains(","+exposed+",", ","+h+",") {
				t.Errorf("GET %s: Access-Control-Expose-Headers %q lacks %s", path, exposed, h)
			}
		}

		// Another origin, even a look-alike, gets no CORS header at all.
		for _, origin := range []string{otherOrigin, "https://app.example.com.evil.net", "http://app.example.com", "null"} {
			p := e.do(http.MethodOptions, path, preflight(origin))
			g := e.do(http.MethodGet, path, map[string]string{"Origin": origin})
			if len(corsHeaders(p.header)) != 0 || len(corsHeaders(g.header)) != 0 || g.status != http.StatusOK {
				t.Errorf("%s from %s: preflight CORS %v, GET %d CORS %v", path, origin, corsHeaders(p.header), g.status, corsHeaders(g.header))
			}
			if !varies(g.header, "Origin") {
				t.Errorf("GET %s from %s: no Vary: Origin, so a cache could hand it to an allowed origin", path, origin)
			}
		}
	}

	// A revalidation and an error are readable too; the problem is unchanged.
	first := e.do(http.MethodGet, "/characters", map[string]string{"Origin": appOrigin})
	nm := e.do(http.MethodGet, "/characters", map[string]string{"Origin": appOrigin, "If-None-Match": first.header.Get("ETag")})
	if nm.status != http.StatusNotModified || nm.header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("304 from an allowed origin: %d, CORS %v", nm.status, corsHeaders(nm.header))
	}
	nf := e.do(http.MethodGet, "/characters/999", map[string]string{"Origin": appOrigin})
	decodeProblem(t, nf, http.StatusNotFound)
	if nf.header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("404 from an allowed origin: CORS %v", corsHeaders(nf.header))
	}
	// Requests without Origin (curl, servers) and the other methods are as before.
	if r := e.do(http.MethodOptions, "/characters", nil); r.status != http.StatusNoContent || r.header.Get("Allow") != "OPTIONS, GET, HEAD" || len(corsHeaders(r.header)) != 0 {
		t.Errorf("OPTIONS without Origin: %d, Allow %q, CORS %v", r.status, r.header.Get("Allow"), corsHeaders(r.header))
	}
	if r := e.do(http.MethodOptions, "/characters", preflight(appOrigin)); r.header.Get("Allow") != "OPTIONS, GET, HEAD" {
		t.Errorf("preflight: Allow %q", r.header.Get("Allow"))
	}
	decodeProblem(t, e.do(http.MethodPost, "/characters", map[string]string{"Origin": appOrigin}), http.StatusMethodNotAllowed)
	decodeProblem(t, e.do(http.MethodOptions, "/nope", preflight(appOrigin)), http.StatusNotFound)
	// Probes, metrics and the docs page are not offered to other origins.
	for _, path := range []string{"/healthz", "/metrics", "/docs"} {
		if r := e.do(http.MethodGet, path, map[string]string{"Origin": appOrigin}); len(corsHeaders(r.header)) != 0 {
			t.Errorf("GET %s from an allowed origin: CORS %v", path, corsHeaders(r.header))
		}
	}
}

func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3, cfg: httpapi.Config{CORSAllowedOrigins: []string{"*"}}})
	for _, origin := range []string{appOrigin, otherOrigin, "http://localhost:5173"} {
		p := e.do(http.MethodOptions, "/characters", preflight(origin))
		if p.status != http.StatusNoContent || p.header.Get("Access-Control-Allow-Origin") != "*" ||
			p.header.Get("Access-Control-Allow-Headers") != "If-None-Match,If-Modified-Since" {
			t.Errorf("preflight from %s: %d %v", origin, p.status, corsHeaders(p.header))
		}
		g := e.do(http.MethodGet, "/characters/2", map[string]string{"Origin": origin})
		if g.status != http.StatusOK || g.header.Get("Access-Control-Allow-Origin") != "*" || g.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("GET from %s: %d %v", origin, g.status, corsHeaders(g.header))
		}
	}
}

// A client over its budget learns how long to wait: the 429 and its
// Retry-After are readable from the allowed origin.
func TestCORSRateLimitedAnswerIsReadable(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3, cfg: httpapi.Config{CORSAllowedOrigins: []string{appOrigin}, RateLimit: 0.001, RateBurst: 1}})
	e.do(http.MethodGet, "/characters", map[string]string{"Origin": appOrigin})
	r := e.do(http.MethodGet, "/characters", map[string]string{"Origin": appOrigin})
	decodeProblem(t, r, http.StatusTooManyRequests)
	if r.header.Get("Access-Control-Allow-Origin") != appOrigin || r.header.Get("Retry-After") == "" ||
		!strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("429: Retry-After %q, CORS %v", r.header.Get("Retry-After"), corsHeaders(r.header))
	}
}

func TestParseCORSOrigins(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                        "",
		" , ":                     "",
		"*":                       "*",
		"https://app.example.com": "https://app.example.com",
		"https://a.example.com, http://b.test:8080": "https://a.example.com http://b.test:8080",
		"http://127.0.0.1:3000,http://[::1]:3000":   "http://127.0.0.1:3000 http://[::1]:3000",
		"chrome-extension://abcdefghijklmnop":       "chrome-extension://abcdefghijklmnop",
	} {
		got, err := httpapi.ParseCORSOrigins(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"app.example.com", "https://app.example.com/", "https://app.example.com/api", "https://app.example.com?x",
		"https://app.example.com#x", "https://user@app.example.com", "https://*.example.com", "https://app.example.com:*",
		"https://App.Example.com", "HTTPS://app.example.com", "https://app.example.com:443", "http://app.example.com:80",
		"https://app.example.com:0", "https://app.example.com:65536", "https://app.example.com:", "https://", "null",
		"*, https://app.example.com", "https://a_b.example.com", "http://[::1", "http://[0:0::1]:3000", "file:///etc",
		"https://ok.example.com, https://bad.example.com/",
	} {
		if got, err := httpapi.ParseCORSOrigins(in); err == nil {
			t.Errorf("%q: accepted as %q", in, got)
		}
	}
}
