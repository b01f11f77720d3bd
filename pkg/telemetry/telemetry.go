// Package telemetry builds the process's logger, Prometheus registry and
// OpenTelemetry tracing.
package telemetry

import (
	"io"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Version and Commit are stamped at build time with
// -ldflags "-X github.com/rickmorty/rickmorty/pkg/telemetry.Version=... -X ...Commit=...".
var (
	Version = "dev"
	Commit  = "unknown"
)

// Namespace prefixes every metric this project exports.
const Namespace = "rickmorty"

// NewLogger returns a JSON slog logger at level, tagged with the component
// name. Records logged with a context holding a span (InfoContext etc.)
// carry its trace_id and span_id.
func NewLogger(w io.Writer, level slog.Leveler, component string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(traceHandler{h}).With("component", component)
}

// NewRegistry returns a registry with the Go and process collectors and
// rickmorty_build_info{component,version,commit,goversion} = 1.
func NewRegistry(component string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "build_info",
		Help:      "Build information of the running binary; always 1.",
		ConstLabels: prometheus.Labels{
			"component": component,
			"version":   Version,
			"commit":    Commit,
			"goversion": runtime.Version(),
		},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}

// MetricsHandler serves reg in the Prometheus exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})
}
