package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is configured with the standard OpenTelemetry variables only.
// These decide whether and where spans go; the SDK reads the rest (sampler,
// batching, OTLP headers, timeouts, TLS, resource attributes) from the
// process environment itself.
const (
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envServiceName    = "OTEL_SERVICE_NAME"
	envSDKDisabled    = "OTEL_SDK_DISABLED"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
)

// OTLP protocols SetupTracing can export with.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// TracingEnabled reports whether SetupTracing would export spans: an OTLP
// endpoint is set, the SDK is not disabled and the traces exporter is not
// "none". When it is false the process keeps OpenTelemetry's no-op
// globals and components get no tracer provider at all.
func TracingEnabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv(envSDKDisabled)), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv(envTracesExporter)), "none") {
		return false
	}
	return strings.TrimSpace(getenv(envEndpoint)) != "" || strings.TrimSpace(getenv(envTracesEndpoint)) != ""
}

// Propagator is the context propagation every component uses: W3C Trace
// Context and W3C Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// ServiceName is OTEL_SERVICE_NAME, or rickmorty-<component> when unset.
func ServiceName(component string, getenv func(string) string) string {
	if s := strings.TrimSpace(getenv(envServiceName)); s != "" {
		return s
	}
	return "rickmorty-" + component
}

// SetupTracing installs the global tracer provider and propagator when
// TracingEnabled, exporting spans over OTLP (OTEL_EXPORTER_OTLP_PROTOCOL:
// http/protobuf, the default, or grpc) in batches. Otherwise it changes
// nothing and returns a shutdown that does nothing. The shutdown flushes
// spans still buffered; call it before exiting.
func SetupTracing(ctx context.Context, component string, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if !TracingEnabled(getenv) {
		return noop, nil
	}
	if e := strings.TrimSpace(getenv(envTracesExporter)); e != "" && !strings.EqualFold(e, "otlp") {
		return noop, fmt.Errorf("%s=%q: only otlp and none are supported", envTracesExporter, e)
	}
	exp, err := newExporter(ctx, getenv)
	if err != nil {
		return noop, err
	}
	res, err := newResource(ctx, component, getenv)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return noop, err
	}
	// No WithSampler: the SDK reads OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on), and the batch
	// processor OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())
	return tp.Shutdown, nil
}

// StartTracing is SetupTracing as a main uses it: it also sends the SDK's
// errors to log and says whether tracing is on. The provider is nil when
// tracing is off, so components skip instrumentation entirely. stop
// flushes buffered spans (bounded to 5s, even after ctx has ended).
func StartTracing(ctx context.Context, component string, getenv func(string) string, log *slog.Logger) (tp trace.TracerProvider, stop func(), err error) {
	shutdown, err := SetupTracing(ctx, component, getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("tracing: could not flush spans at exit", "err", err)
		}
	}
	if !TracingEnabled(getenv) {
		return nil, stop, nil
	}
	LogOTelErrors(log)
	log.Info("tracing enabled", "service_name", ServiceName(component, getenv))
	return otel.GetTracerProvider(), stop, nil
}

// newExporter builds the OTLP exporter. The endpoint is passed explicitly
// (the SDK would read the same variables, but only from the process
// environment, and silently fall back to localhost on a malformed URL).
func newExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	protocol := strings.TrimSpace(getenv(envTracesProtocol))
	if protocol == "" {
		protocol = strings.TrimSpace(getenv(envProtocol))
	}
	if protocol == "" {
		protocol = ProtocolHTTP
	}
	endpoint, name := strings.TrimSpace(getenv(envTracesEndpoint)), envTracesEndpoint
	signalSpecific := endpoint != ""
	if !signalSpecific {
		endpoint, name = strings.TrimSpace(getenv(envEndpoint)), envEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q: want an http:// or https:// URL", name, endpoint)
	}
	switch protocol {
	case ProtocolHTTP:
		if !signalSpecific {
			// The generic endpoint is a base URL: the signal's path goes after it.
			u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		}
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
		if err != nil {
			return nil, fmt.Errorf("OTLP HTTP exporter: %w", err)
		}
		return exp, nil
	case ProtocolGRPC:
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(u.String()))
		if err != nil {
			return nil, fmt.Errorf("OTLP gRPC exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("%s=%q: supported are %s and %s", envProtocol, protocol, ProtocolHTTP, ProtocolGRPC)
}

// newResource describes this process: service.name (OTEL_SERVICE_NAME or
// rickmorty-<component>), service.version, rickmorty.component, the SDK,
// and whatever OTEL_RESOURCE_ATTRIBUTES adds.
func newResource(ctx context.Context, component string, getenv func(string) string) (*resource.Resource, error) {
	opts := []resource.Option{
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", "rickmorty-"+component),
			attribute.String("service.version", Version),
			attribute.String("rickmorty.component", component),
		),
		// Later options win: OTEL_RESOURCE_ATTRIBUTES overrides the defaults.
		resource.WithFromEnv(),
	}
	if s := strings.TrimSpace(getenv(envServiceName)); s != "" {
		// OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES.
		opts = append(opts, resource.WithAttributes(attribute.String("service.name", s)))
	}
	res, err := resource.New(ctx, opts...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	if err != nil {
		// A partial resource (say, a malformed OTEL_RESOURCE_ATTRIBUTES
		// entry) still names the service: report it and go on.
		otel.Handle(err)
	}
	return res, nil
}

// LogOTelErrors sends the OpenTelemetry SDK's internal errors (failed
// exports, dropped spans) to log instead of the standard library's logger,
// so they come out as JSON lines like everything else.
func LogOTelErrors(log *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", "err", err)
	}))
}
