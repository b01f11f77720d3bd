package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/rickmorty/rickmorty/pkg/ingest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// headerLog records the traceparent of every request it passes on.
type headerLog struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (h *headerLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Get("traceparent"))
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

func (h *headerLog) traceparents() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func spanAttr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func spanNames(spans tracetest.SpanStubs) string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

// One ingest is one trace: ingest.run is the root; ingest.crawl parents one
// HTTP client span per upstream attempt (retries included), each of which
// sent its traceparent upstream; ingest.sync parents the database spans.
// The run's logs carry its trace id.
func TestTracingIngest(t *testing.T) {
	dbURL := pgtest.New(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	pool, err := postgres.OpenPool(context.Background(), dbURL, postgres.PoolConfig{MaxConns: 4, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	f := fake.New(fake.Dataset())
	f.SetFaults(fake.Faults{FailPages: map[int]int{2: 1}, Status: http.StatusBadGateway}) // one retry
	hl := &headerLog{next: f}
	srv := httptest.NewServer(hl)
	t.Cleanup(srv.Close)
	logs := &lockedBuffer{}
	log := telemetry.NewLogger(logs, slog.LevelInfo, "ingester")
	client := upstream.New(upstream.Config{
		BaseURL: srv.URL + "/api", Timeout: 5 * time.Second, Retries: 3,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, Concurrency: 4,
		TracerProvider: tp,
	}, log, nil)
	runner := ingest.NewRunner(client, postgres.NewIngests(pool), log, nil, ingest.Options{MaxDeleteRatio: 0.5, TracerProvider: tp})

	sum, err := runner.Run(context.Background(), false)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	spans := exp.GetSpans()

	var runs []tracetest.SpanStub
	for _, s := range spans {
		if !s.Parent.IsValid() {
			runs = append(runs, s)
		}
	}
	if len(runs) != 1 || runs[0].Name != "ingest.run" {
		t.Fatalf("root spans %v, want one ingest.run; all spans: %s", runs, spanNames(spans))
	}
	run := runs[0]
	traceID := run.SpanContext.TraceID()
	for key, want := range map[attribute.Key]int64{
		"ingest.pages": int64(sum.Pages), "ingest.fetched": int64(sum.Fetched), "ingest.kept": int64(sum.Kept),
		"ingest.inserted": int64(sum.Inserted), "ingest.updated": int64(sum.Updated), "ingest.deleted": int64(sum.Deleted),
		"ingest.run_id": sum.ID,
	} {
		if got := spanAttr(run, key).AsInt64(); got != want {
			t.Errorf("ingest.run %s = %d, want %d", key, got, want)
		}
	}
	if got := spanAttr(run, "ingest.result").AsString(); got != "success" {
		t.Errorf("ingest.run result %q", got)
	}
	if sum.Inserted == 0 {
		t.Error("nothing inserted: the span counts prove nothing")
	}

	children := map[trace.SpanID][]tracetest.SpanStub{}
	named := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q is in another trace", s.Name)
		}
		children[s.Parent.SpanID()] = append(children[s.Parent.SpanID()], s)
		named[s.Name] = append(named[s.Name], s)
	}
	if len(named["ingest.crawl"]) != 1 || len(named["ingest.sync"]) != 1 {
		t.Fatalf("want one ingest.crawl and one ingest.sync; spans: %s", spanNames(spans))
	}
	crawl, sync := named["ingest.crawl"][0], named["ingest.sync"][0]
	for _, s := range []tracetest.SpanStub{crawl, sync} {
		if s.Parent.SpanID() != run.SpanContext.SpanID() {
			t.Errorf("%s's parent is not ingest.run", s.Name)
		}
	}

	// The crawl: one client span per attempt, page 2's failure included.
	attempts := sum.Pages + 1
	var clientSpans []tracetest.SpanStub
	for _, s := range children[crawl.SpanContext.SpanID()] {
		if s.SpanKind != trace.SpanKindClient || s.Name != http.MethodGet {
			t.Errorf("unexpected child of ingest.crawl: %q (%v)", s.Name, s.SpanKind)
			continue
		}
		clientSpans = append(clientSpans, s)
	}
	if len(clientSpans) != attempts {
		t.Errorf("%d HTTP client spans under ingest.crawl, want %d (%d pages + 1 retry)", len(clientSpans), attempts, sum.Pages)
	}
	failed := 0
	clientIDs := map[string]bool{}
	for _, s := range clientSpans {
		clientIDs[s.SpanContext.SpanID().String()] = true
		if code := spanAttr(s, "http.response.status_code").AsInt64(); code == http.StatusBadGateway {
			failed++
			if s.Status.Code != codes.Error {
				t.Errorf("the 502 attempt's span status is %v", s.Status)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d client spans for the 502, want 1", failed)
	}

	// Every attempt sent its own span as the parent upstream.
	got := hl.traceparents()
	if len(got) != attempts {
		t.Errorf("the upstream saw %d requests, want %d", len(got), attempts)
	}
	for _, tpHeader := range got {
		parts := strings.Split(tpHeader, "-")
		if len(parts) != 4 || parts[1] != traceID.String() || !clientIDs[parts[2]] {
			t.Errorf("traceparent %q: want trace %s and one of the client spans", tpHeader, traceID)
		}
	}

	// The sync: database spans only, the COPY and the merge among them.
	syncIDs := map[trace.SpanID]bool{sync.SpanContext.SpanID(): true}
	var dbNames []string
	for changed := true; changed; {
		changed = false
		for _, s := range spans {
			if syncIDs[s.Parent.SpanID()] && !syncIDs[s.SpanContext.SpanID()] {
				syncIDs[s.SpanContext.SpanID()] = true
				changed = true
				if spanAttr(s, "db.system.name").AsString() != "postgresql" {
					t.Errorf("non-database span %q under ingest.sync", s.Name)
				}
				dbNames = append(dbNames, s.Name)
			}
		}
	}
	if len(dbNames) == 0 {
		t.Fatal("no database spans under ingest.sync")
	}
	if !strings.Contains(strings.Join(dbNames, ","), "copy_from") {
		t.Errorf("no COPY span under ingest.sync: %v", dbNames)
	}

	// The lock and the run record are database spans of ingest.run itself.
	var runDB int
	for _, s := range children[run.SpanContext.SpanID()] {
		if spanAttr(s, "db.system.name").AsString() == "postgresql" {
			runDB++
		}
	}
	if runDB == 0 {
		t.Error("no database spans directly under ingest.run (lock, run record)")
	}

	// The start and success logs carry the run's trace.
	want := map[string]bool{"ingest started": false, "ingest succeeded": false}
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msg, _ := m["msg"].(string)
		if _, ok := want[msg]; ok {
			want[msg] = true
			if m["trace_id"] != traceID.String() || m["span_id"] != run.SpanContext.SpanID().String() {
				t.Errorf("%q logged trace_id %v span_id %v, want ingest.run's", msg, m["trace_id"], m["span_id"])
			}
		}
	}
	for msg, seen := range want {
		if !seen {
			t.Errorf("no %q log line", msg)
		}
	}
}

// A failed run's span says so; a locked one is not an error.
func TestTracingIngestFailureAndLock(t *testing.T) {
	e := newEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	client := upstream.New(upstream.Config{
		BaseURL: e.url, Timeout: 5 * time.Second, Retries: 1,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond, TracerProvider: tp,
	}, quietLog(), nil)
	runner := ingest.NewRunner(client, postgres.NewIngests(e.pool), quietLog(), nil, ingest.Options{MaxDeleteRatio: 0.5, TracerProvider: tp})

	e.fake.SetFaults(fake.Faults{FailPages: map[int]int{1: -1}})
	if _, err := runner.Run(context.Background(), false); err == nil {
		t.Fatal("Run succeeded against a failing upstream")
	}
	var run, crawl tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		switch s.Name {
		case "ingest.run":
			run = s
		case "ingest.crawl":
			crawl = s
		}
	}
	if run.Status.Code != codes.Error || spanAttr(run, "ingest.result").AsString() != "failed" {
		t.Errorf("failed run: status %v, result %q", run.Status, spanAttr(run, "ingest.result").AsString())
	}
	if crawl.Status.Code != codes.Error {
		t.Errorf("failed crawl: status %v", crawl.Status)
	}

	exp.Reset()
	lock, err := postgres.NewIngests(e.pool).TryLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if _, err := runner.Run(context.Background(), false); !errors.Is(err, ingest.ErrLocked) {
		t.Fatalf("Run = %v, want ErrLocked", err)
	}
	for _, s := range exp.GetSpans() {
		if s.Name == "ingest.run" {
			if s.Status.Code == codes.Error || spanAttr(s, "ingest.result").AsString() != "locked" {
				t.Errorf("locked run: status %v, result %q", s.Status, spanAttr(s, "ingest.result").AsString())
			}
			return
		}
	}
	t.Error("no ingest.run span for the locked run")
}

// A scheduled run is the root of a trace of its own, whatever span the
// context given to Serve holds.
func TestTracingScheduledRunIsARoot(t *testing.T) {
	e := newEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	client := upstream.New(upstream.Config{BaseURL: e.url, Timeout: 5 * time.Second, TracerProvider: tp}, quietLog(), nil)
	runner := ingest.NewRunner(client, postgres.NewIngests(e.pool), quietLog(), nil, ingest.Options{MaxDeleteRatio: 0.5, TracerProvider: tp})
	schedule, err := ingest.ParseSchedule("@every 1h")
	if err != nil {
		t.Fatal(err)
	}

	ctx, parent := tp.Tracer("test").Start(context.Background(), "serve")
	defer parent.End()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ingest.Serve(ctx, runner, schedule, quietLog())
	}()
	var run tracetest.SpanStub
	waitFor(t, func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == "ingest.run" {
				run = s
				return true
			}
		}
		return false
	})
	cancel()
	<-done
	if run.Parent.IsValid() || run.SpanContext.TraceID() == parent.SpanContext().TraceID() {
		t.Errorf("the scheduled ingest.run has parent %v in trace %v; want a new root", run.Parent.SpanID(), run.SpanContext.TraceID())
	}
}
