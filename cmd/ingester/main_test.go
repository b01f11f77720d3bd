package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func runCmd(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = run(ctx, args, envOf(env), &out, &errOut)
	return code, out.String(), errOut.String()
}

// fakeUpstream starts the fake upstream and returns it with its base URL.
func fakeUpstream(t *testing.T) (*fake.Server, string) {
	t.Helper()
	f := fake.New(fake.Dataset())
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/api"
}

func TestOnceRunsOneIngestAndPrintsASummary(t *testing.T) {
	_, url := fakeUpstream(t)
	dbURL := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "LOG_LEVEL": "warn"}

	code, stdout, stderr := runCmd(t, context.Background(), env, "once")
	if code != exitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	re := regexp.MustCompile(`^ingest ok: pages=\d+ fetched=\d+ kept=\d+ inserted=\d+ updated=0 deleted=0 stored=\d+ version=1 duration=\S+\n$`)
	if !re.MatchString(stdout) {
		t.Errorf("stdout = %q, want one summary line matching %s", stdout, re)
	}
}

func TestOnceReportsTheLockWithExitCode3(t *testing.T) {
	f, url := fakeUpstream(t)
	pool, dbURL := pgtest.NewPool(t)
	lock, err := postgres.NewIngests(pool).TryLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()

	code, stdout, stderr := runCmd(t, context.Background(), map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url}, "once")
	if code != exitLocked {
		t.Errorf("exit code = %d, want %d", code, exitLocked)
	}
	if stdout != "" || !strings.Contains(stderr, "another ingest holds the lock") {
		t.Errorf("stdout %q, stderr %q: want the lock named on stderr", stdout, stderr)
	}
	if f.Requests() != 0 {
		t.Errorf("the locked-out run made %d upstream requests", f.Requests())
	}
}

func TestOnceFailsWithOneLineReason(t *testing.T) {
	f, url := fakeUpstream(t)
	f.SetFaults(fake.Faults{FailPages: map[int]int{2: -1}})
	dbURL := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "UPSTREAM_RETRIES": "1",
		"UPSTREAM_RETRY_WAIT_MIN": "1ms", "UPSTREAM_RETRY_WAIT_MAX": "2ms", "LOG_LEVEL": "error"}
	code, stdout, stderr := runCmd(t, context.Background(), env, "once")
	if code != exitFailed {
		t.Errorf("exit code = %d, want %d", code, exitFailed)
	}
	last := lastLine(stderr)
	if !strings.HasPrefix(last, "ingest failed: ") || !strings.Contains(last, "page 2") {
		t.Errorf("last stderr line = %q, want a one-line reason naming page 2", last)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	dbURL := pgtest.NewEmpty(t)
	for range 2 {
		code, stdout, stderr := runCmd(t, context.Background(), map[string]string{"DATABASE_URL": dbURL}, "migrate")
		if code != exitOK || stdout != fmt.Sprintf("migrate ok: schema version %d\n", db.SchemaVersion) {
			t.Fatalf("migrate: code %d, stdout %q, stderr %s", code, stdout, stderr)
		}
	}
}

func TestConfigurationErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "DATABASE_URL is required"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "INGEST_SCHEDULE": "every five minutes"}, "INGEST_SCHEDULE"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "UPSTREAM_URL": "rickandmortyapi.com"}, "UPSTREAM_URL"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "UPSTREAM_CONCURRENCY": "0"}, "UPSTREAM_CONCURRENCY"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "UPSTREAM_TIMEOUT": "10"}, "UPSTREAM_TIMEOUT"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "INGEST_MAX_DELETE_RATIO": "2"}, "INGEST_MAX_DELETE_RATIO"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "LOG_LEVEL": "chatty"}, "LOG_LEVEL"},
	}
	for _, tt := range tests {
		code, _, stderr := runCmd(t, context.Background(), tt.env, "once")
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("env %v: code %d, stderr %q; want %d naming %s", tt.env, code, stderr, exitUsage, tt.want)
		}
	}
}

func TestUnknownCommandAndArguments(t *testing.T) {
	for _, args := range [][]string{{"sync"}, {"once", "--bogus"}, {"migrate", "extra"}} {
		if code, _, _ := runCmd(t, context.Background(), nil, args...); code != exitUsage {
			t.Errorf("ingester %v: exit code %d, want %d", args, code, exitUsage)
		}
	}
}

func TestServeIngestsAtStartServesOpsEndpointsAndStopsOnSignal(t *testing.T) {
	_, url := fakeUpstream(t)
	pool, dbURL := pgtest.NewPool(t)
	addr := freeAddr(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "METRICS_ADDR": addr,
		"INGEST_SCHEDULE": "@every 1h", "LOG_LEVEL": "warn"}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(ctx, []string{"serve"}, envOf(env), io.Discard, &stderr) }()

	base := "http://" + addr
	waitFor(t, func() bool { return get(base+"/healthz") == http.StatusOK })
	// The first ingest runs right away, not an hour from now.
	waitFor(t, func() bool {
		var n int
		_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM ingest_runs WHERE result = 'success'").Scan(&n)
		return n == 1
	})
	if got := get(base + "/readyz"); got != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", got)
	}
	body := getBody(t, base+"/metrics")
	for _, series := range []string{
		`rickmorty_ingest_runs_total{result="success"} 1`,
		"rickmorty_ingest_duration_seconds_bucket",
		`rickmorty_ingest_rows_total{operation="inserted"}`,
		"rickmorty_characters_stored ",
		"rickmorty_ingest_last_success_timestamp_seconds ",
		"rickmorty_ingest_schedule_interval_seconds 3600\n", // INGEST_SCHEDULE=@every 1h
		`rickmorty_upstream_requests_total{code="200"}`,
		"rickmorty_upstream_request_duration_seconds_bucket",
		"rickmorty_upstream_retries_total",
		"rickmorty_build_info{",
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exit code = %d, stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s of the signal")
	}
}

func TestServeCancelsTheIngestInFlightOnSignal(t *testing.T) {
	f, url := fakeUpstream(t)
	f.SetFaults(fake.Faults{Latency: time.Minute})
	pool, dbURL := pgtest.NewPool(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "METRICS_ADDR": freeAddr(t), "LOG_LEVEL": "error"}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, envOf(env), io.Discard, io.Discard) }()
	waitFor(t, func() bool { return f.Requests() > 0 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s while an ingest was in flight")
	}
	var result string
	if err := pool.QueryRow(context.Background(), "SELECT result FROM ingest_runs").Scan(&result); err != nil {
		t.Fatal(err)
	}
	if result != "failed" {
		t.Errorf("the interrupted run is %q, want failed", result)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkOnce42Pages times `ingester once` (in process, fresh database
// each time) against the fake upstream with 42 pages and 100ms latency per
// page. The target is 1.5x of ceil(42/concurrency) x 100ms; see
// docs/benchmarks.md.
func BenchmarkOnce42Pages(b *testing.B) {
	f := fake.New(fake.DatasetOfSize(826))
	f.SetFaults(fake.Faults{Latency: 100 * time.Millisecond})
	srv := httptest.NewServer(f)
	defer srv.Close()
	for _, c := range []int{4, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			limit := time.Duration((42+c-1)/c) * 100 * time.Millisecond
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				env := map[string]string{"DATABASE_URL": pgtest.New(b), "UPSTREAM_URL": srv.URL + "/api",
					"UPSTREAM_CONCURRENCY": strconv.Itoa(c), "LOG_LEVEL": "error"}
				b.StartTimer()
				start := time.Now()
				if code := run(context.Background(), []string{"once"}, envOf(env), io.Discard, io.Discard); code != exitOK {
					b.Fatalf("once exited %d", code)
				}
				total += time.Since(start)
			}
			wall := total / time.Duration(b.N)
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.ReportMetric(float64(wall)/float64(limit), "x-limit")
		})
	}
}
