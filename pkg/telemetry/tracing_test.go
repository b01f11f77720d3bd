package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// restoreGlobals puts OpenTelemetry's globals back when t ends.
func restoreGlobals(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

func TestTracingEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"only a service name", map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{"sdk not disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"}, true},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := telemetry.TracingEnabled(envOf(tc.env)); got != tc.want {
				t.Errorf("TracingEnabled = %v, want %v", got, tc.want)
			}
		})
	}
}

// By default nothing is installed: the globals stay OpenTelemetry's no-ops.
func TestSetupTracingOffByDefault(t *testing.T) {
	restoreGlobals(t)
	before := otel.GetTracerProvider()
	for _, env := range []map[string]string{
		nil,
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
	} {
		shutdown, err := telemetry.SetupTracing(context.Background(), "api", envOf(env))
		if err != nil {
			t.Fatalf("SetupTracing(%v): %v", env, err)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if otel.GetTracerProvider() != before {
			t.Fatalf("SetupTracing(%v) replaced the global tracer provider", env)
		}
		_, span := otel.Tracer("test").Start(context.Background(), "x")
		if span.IsRecording() || span.SpanContext().IsValid() {
			t.Errorf("SetupTracing(%v): spans are recorded", env)
		}
		span.End()

		tp, stop, err := telemetry.StartTracing(context.Background(), "api", envOf(env), slog.New(slog.DiscardHandler))
		if err != nil || tp != nil {
			t.Errorf("StartTracing(%v) = %v, %v; want no provider", env, tp, err)
		}
		stop()
	}
}

func TestSetupTracingRejectsBadConfig(t *testing.T) {
	restoreGlobals(t)
	for name, env := range map[string]map[string]string{
		"protocol":     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
		"endpoint":     {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
		"exporter":     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "zipkin"},
		"traces proto": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := telemetry.SetupTracing(context.Background(), "api", envOf(env)); err == nil {
				t.Fatal("SetupTracing accepted it")
			}
		})
	}
}

// collector is an OTLP/HTTP receiver that keeps what it is sent.
type collector struct {
	mu       sync.Mutex
	paths    []string
	requests []*coltracepb.ExportTraceServiceRequest
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.requests = append(c.requests, &req)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// exported returns the service names and span names received, by path.
func (c *collector) exported() (paths []string, services, spans map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	services, spans = map[string]bool{}, map[string]bool{}
	for _, req := range c.requests {
		for _, rs := range req.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					services[a.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					spans[s.GetName()] = true
				}
			}
		}
	}
	return append([]string(nil), c.paths...), services, spans
}

// With an endpoint set, spans reach an OTLP/HTTP collector at
// {endpoint}/v1/traces, named after the service, and the W3C propagator is
// installed.
func TestSetupTracingExportsOverOTLPHTTP(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         func(url string) map[string]string
		wantPath    string
		wantService string
	}{
		{"defaults", func(u string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u + "/base/"}
		}, "/base/v1/traces", "rickmorty-ingester"},
		{"traces endpoint and service name", func(u string) map[string]string {
			return map[string]string{
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": u + "/custom",
				"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
				"OTEL_SERVICE_NAME":                  "my-ingester",
			}
		}, "/custom", "my-ingester"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restoreGlobals(t)
			col := &collector{}
			srv := httptest.NewServer(col)
			defer srv.Close()

			shutdown, err := telemetry.SetupTracing(context.Background(), "ingester", envOf(tc.env(srv.URL)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, span := otel.Tracer("test").Start(context.Background(), "test.span")
			if !span.IsRecording() {
				t.Fatal("the global tracer does not record")
			}
			carrier := propagation.MapCarrier{}
			otel.GetTextMapPropagator().Inject(ctx, carrier)
			if !strings.HasPrefix(carrier["traceparent"], "00-"+span.SpanContext().TraceID().String()) {
				t.Errorf("traceparent = %q, want the span's trace id", carrier["traceparent"])
			}
			span.End()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := shutdown(sctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}

			paths, services, spans := col.exported()
			if len(paths) == 0 {
				t.Fatal("nothing was exported")
			}
			for _, p := range paths {
				if p != tc.wantPath {
					t.Errorf("exported to %q, want %q", p, tc.wantPath)
				}
			}
			if !services[tc.wantService] || len(services) != 1 {
				t.Errorf("service.name values %v, want only %q", services, tc.wantService)
			}
			if !spans["test.span"] {
				t.Errorf("spans %v, want test.span", spans)
			}
		})
	}
}

// The gRPC exporter connects lazily, so it can be built without a collector.
func TestSetupTracingGRPC(t *testing.T) {
	restoreGlobals(t)
	shutdown, err := telemetry.SetupTracing(context.Background(), "api", envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range bytes.Lines(b) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// Records logged with a span in their context carry its ids; others don't.
func TestLoggerAddsTraceIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	sc := span.SpanContext()

	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, slog.LevelDebug, "api").With("run_id", 7)
	log.InfoContext(ctx, "with span")
	log.Info("without span")
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), "invalid span")
	log.DebugContext(ctx, "debug with span")

	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), buf.String())
	}
	for _, i := range []int{0, 3} {
		l := lines[i]
		if l["trace_id"] != sc.TraceID().String() || l["span_id"] != sc.SpanID().String() {
			t.Errorf("%q: trace_id %v span_id %v, want %s %s", l["msg"], l["trace_id"], l["span_id"], sc.TraceID(), sc.SpanID())
		}
	}
	for _, i := range []int{1, 2} {
		if _, ok := lines[i]["trace_id"]; ok {
			t.Errorf("%q has a trace_id", lines[i]["msg"])
		}
	}
	for _, l := range lines {
		if l["component"] != "api" || l["run_id"] != float64(7) {
			t.Errorf("%q lost its attributes: %v", l["msg"], l)
		}
	}
}

// Level filtering is unchanged by the wrapping.
func TestLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, slog.LevelInfo, "ingester")
	if log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled at info level")
	}
	log.Debug("hidden")
	if buf.Len() != 0 {
		t.Errorf("debug record written: %s", buf.String())
	}
}
