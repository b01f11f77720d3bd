package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/rickmorty/rickmorty/pkg/cache"
	"github.com/rickmorty/rickmorty/pkg/httpapi"
	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// tracedEnv is a server on a real database with tracing into memory.
type tracedEnv struct {
	srv   *httpapi.Server
	spans *tracetest.InMemoryExporter
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range bytes.Lines(b.b.Bytes()) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func setupTraced(t *testing.T) *tracedEnv {
	t.Helper()
	dbURL := pgtest.New(t)
	apitest.Ingest(t, dbURL, apitest.Change{Upsert: apitest.Characters(30)})
	exp := tracetest.NewInMemoryExporter()
	// A synchronous processor: a span is exported the moment it ends.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	pool, err := postgres.OpenPool(context.Background(), dbURL, postgres.PoolConfig{ReadOnly: true, MaxConns: 4, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	srv := httpapi.NewServer(httpapi.Config{}, httpapi.Deps{
		Store:          postgres.NewStore(pool, reg),
		Cache:          httpapi.NewCache(cache.Config{TTL: time.Hour, MaxEntries: 100}, reg),
		Registry:       reg,
		Logger:         telemetry.NewLogger(logs, slog.LevelDebug, "api"),
		TracerProvider: tp,
	})
	srv.SetReady()
	return &tracedEnv{srv: srv, spans: exp, logs: logs}
}

// serve runs one request through the handler and returns the spans it
// produced. The handler returns only after the server span has ended.
func (e *tracedEnv) serve(t *testing.T, path string, header map[string]string) (int, tracetest.SpanStubs) {
	t.Helper()
	e.spans.Reset()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return w.Code, e.spans.GetSpans()
}

func attr(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func byName(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func isDB(s tracetest.SpanStub) bool {
	v, ok := attr(s, "db.system.name")
	return ok && v.AsString() == "postgresql"
}

// one returns the only span named name.
func one(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	got := byName(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %s", len(got), name, names(spans))
	}
	return got[0]
}

// descends reports whether s has ancestor among the spans in byID.
func descends(byID map[trace.SpanID]tracetest.SpanStub, s tracetest.SpanStub, ancestor trace.SpanID) bool {
	for range len(byID) {
		if s.Parent.SpanID() == ancestor {
			return true
		}
		p, ok := byID[s.Parent.SpanID()]
		if !ok {
			return false
		}
		s = p
	}
	return false
}

func names(spans tracetest.SpanStubs) string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

// A cache miss is one trace: the server span, named by route, parents a
// cache.fill span which parents the database spans. The hit that follows
// has a server span and nothing under it.
func TestTracingCachedMiss(t *testing.T) {
	e := setupTraced(t)

	code, spans := e.serve(t, "/characters", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	server := one(t, spans, "GET /characters")
	if server.SpanKind != trace.SpanKindServer {
		t.Errorf("server span kind %v", server.SpanKind)
	}
	if server.Parent.IsValid() {
		t.Errorf("server span has parent %v; want a root", server.Parent)
	}
	if v, _ := attr(server, "http.route"); v.AsString() != "/characters" {
		t.Errorf("http.route = %q, want /characters", v.AsString())
	}
	if v, _ := attr(server, "http.response.status_code"); v.AsInt64() != http.StatusOK {
		t.Errorf("http.response.status_code = %v", v.String())
	}
	traceID := server.SpanContext.TraceID()

	fill := one(t, spans, "cache.fill")
	if fill.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("cache.fill's parent is %v, want the server span %v", fill.Parent.SpanID(), server.SpanContext.SpanID())
	}
	if v, _ := attr(fill, "cache.key"); !strings.HasPrefix(v.AsString(), "list ") {
		t.Errorf("cache.key = %q", v.AsString())
	}

	var db []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q is in trace %v, want %v", s.Name, s.SpanContext.TraceID(), traceID)
		}
		if isDB(s) {
			db = append(db, s)
		}
	}
	if len(db) == 0 {
		t.Fatalf("no database span; spans: %s", names(spans))
	}
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	selects := 0
	for _, s := range db {
		if !descends(byID, s, fill.SpanContext.SpanID()) {
			t.Errorf("db span %q does not descend from cache.fill", s.Name)
		}
		if s.SpanKind != trace.SpanKindClient {
			t.Errorf("db span %q kind %v", s.Name, s.SpanKind)
		}
		if s.Name == "query SELECT" {
			selects++
			if s.Parent.SpanID() != fill.SpanContext.SpanID() {
				t.Errorf("query span's parent is %v, want cache.fill %v", s.Parent.SpanID(), fill.SpanContext.SpanID())
			}
			if v, _ := attr(s, "db.query.text"); !strings.Contains(v.AsString(), "FROM characters") {
				t.Errorf("query span's db.query.text = %q", v.AsString())
			}
		}
	}
	if selects != 1 {
		t.Errorf("%d query SELECT spans, want 1; spans: %s", selects, names(spans))
	}
	if len(spans) != 2+len(db) {
		t.Errorf("unexpected spans: %s", names(spans))
	}

	// The access log line carries the trace.
	var found bool
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "request" && l["route"] == "/characters" {
			found = true
			if l["trace_id"] != traceID.String() || l["span_id"] != server.SpanContext.SpanID().String() {
				t.Errorf("request log has trace_id %v span_id %v, want %v %v", l["trace_id"], l["span_id"], traceID, server.SpanContext.SpanID())
			}
		}
	}
	if !found {
		t.Error("no request log line")
	}

	// The same request again is a hit: no fill, no database.
	code, spans = e.serve(t, "/characters", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	hit := one(t, spans, "GET /characters")
	if len(spans) != 1 {
		t.Errorf("a cache hit produced spans %s, want only the server span", names(spans))
	}
	if hit.SpanContext.TraceID() == traceID {
		t.Error("the second request joined the first one's trace")
	}
}

// An incoming W3C traceparent is continued: the server span is its child.
func TestTracingContinuesIncomingTrace(t *testing.T) {
	e := setupTraced(t)
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	code, spans := e.serve(t, "/characters/3", map[string]string{"traceparent": "00-" + traceID + "-" + spanID + "-01"})
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	server := one(t, spans, "GET /characters/:id")
	if v, _ := attr(server, "http.route"); v.AsString() != "/characters/:id" {
		t.Errorf("http.route = %q", v.AsString())
	}
	if got := server.Parent.SpanID().String(); got != spanID || !server.Parent.IsRemote() {
		t.Errorf("server span's parent is %s (remote %v), want the caller's %s", got, server.Parent.IsRemote(), spanID)
	}
	for _, s := range spans {
		if got := s.SpanContext.TraceID().String(); got != traceID {
			t.Errorf("span %q is in trace %s, want the caller's %s", s.Name, got, traceID)
		}
	}
	if v, _ := attr(one(t, spans, "cache.fill"), "cache.key"); v.AsString() != "item 3" {
		t.Errorf("cache.key = %q, want item 3", v.AsString())
	}
}

// Unmatched paths keep the bare method as span name; probes and scrapes
// are not traced at all.
func TestTracingUnmatchedAndProbes(t *testing.T) {
	e := setupTraced(t)
	code, spans := e.serve(t, "/no/such/thing", nil)
	if code != http.StatusNotFound {
		t.Fatalf("status %d", code)
	}
	s := one(t, spans, "GET")
	if _, ok := attr(s, "http.route"); ok {
		t.Error("an unmatched request has http.route")
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if _, spans := e.serve(t, p, nil); len(spans) != 0 {
			t.Errorf("%s produced spans %s", p, names(spans))
		}
	}
	if _, spans := e.serve(t, "/healthcheck", nil); len(byName(spans, "GET /healthcheck")) != 1 {
		t.Errorf("/healthcheck spans: %s", names(spans))
	}
}
