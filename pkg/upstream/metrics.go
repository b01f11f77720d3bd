package upstream

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the crawler's HTTP traffic.
type Metrics struct {
	Requests *prometheus.CounterVec // by code: the HTTP status, or "error" for transport failures
	Duration prometheus.Histogram
	Retries  prometheus.Counter
}

// NewMetrics creates the upstream metrics and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rickmorty", Subsystem: "upstream", Name: "requests_total",
			Help: "HTTP requests to the upstream API, every attempt counted, by status code (\"error\" when no response arrived).",
		}, []string{"code"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "rickmorty", Subsystem: "upstream", Name: "request_duration_seconds",
			Help:    "Time to the upstream's response headers, per attempt.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "rickmorty", Subsystem: "upstream", Name: "retries_total",
			Help: "Upstream page requests retried after an error, a 5xx, a 429 or an invalid body.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Duration, m.Retries)
	}
	return m
}

// instrumentedTransport records every attempt, including those that fail
// before a response arrives.
type instrumentedTransport struct {
	next    http.RoundTripper
	metrics *Metrics
}

func (t *instrumentedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	t.metrics.Duration.Observe(time.Since(start).Seconds())
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.metrics.Requests.WithLabelValues(code).Inc()
	return resp, err
}
