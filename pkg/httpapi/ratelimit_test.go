package httpapi_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/httpapi"
)

func TestRateLimitIgnoresSpoofedForwardedFor(t *testing.T) {
	t.Parallel()
	// The test client connects from 127.0.0.1, which is not trusted here.
	e := setup(t, options{seed: 1, cfg: httpapi.Config{RateLimit: 0.001, RateBurst: 3}})
	for i := range 3 {
		spoof := map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i), "X-Real-IP": "203.0.113." + strconv.Itoa(i)}
		if r := e.do(http.MethodGet, "/characters", spoof); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.do(http.MethodGet, "/characters", map[string]string{"X-Forwarded-For": "198.51.100.77"})
	decodeProblem(t, r, http.StatusTooManyRequests)
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", r.header.Get("Retry-After"))
	}
	// Probes are never limited.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := e.get(path); r.status != http.StatusOK {
			t.Errorf("%s while limited: %d", path, r.status)
		}
	}
}

func TestRateLimitPerClientBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 1, cfg: httpapi.Config{
		RateLimit: 0.001, RateBurst: 2,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}})
	alice := map[string]string{"X-Forwarded-For": "198.51.100.1"}
	bob := map[string]string{"X-Forwarded-For": "198.51.100.2"}
	for range 2 {
		if r := e.do(http.MethodGet, "/characters", alice); r.status != http.StatusOK {
			t.Fatalf("alice within burst: %d", r.status)
		}
	}
	decodeProblem(t, e.do(http.MethodGet, "/characters", alice), http.StatusTooManyRequests)
	if r := e.do(http.MethodGet, "/characters", bob); r.status != http.StatusOK {
		t.Errorf("bob behind the same proxy was limited: %d", r.status)
	}
	// Alice cannot dodge by prepending a fake hop: the proxy appends her
	// real address on the right, which is what counts.
	dodge := map[string]string{"X-Forwarded-For": "203.0.113.50, 198.51.100.1"}
	decodeProblem(t, e.do(http.MethodGet, "/characters", dodge), http.StatusTooManyRequests)
}

func TestRateLimitOff(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 1})
	for i := range 50 {
		if r := e.get("/characters"); r.status != http.StatusOK {
			t.Fatalf("request %d without a limit: %d", i, r.status)
		}
	}
}
