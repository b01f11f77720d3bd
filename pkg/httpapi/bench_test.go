package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkList measures one GET /characters through the whole handler
// chain: from the cache, and with the cache off (a database query and an
// encoding per request).
func BenchmarkList(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", time.Hour}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			e := setup(b, options{seed: 100, cacheTTL: bc.ttl})
			req := httptest.NewRequest(http.MethodGet, "/characters", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				e.srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
