package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/config"
	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
)

// api is one run() of the real program on a free port.
type api struct {
	t    *testing.T
	base string
	stop func() error
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// startAPI runs the program with env (plus HTTP_ADDR=127.0.0.1:0), finds
// its address in the log and waits until /healthz and /readyz answer.
func startAPI(t *testing.T, env map[string]string) *api {
	t.Helper()
	env["HTTP_ADDR"] = "127.0.0.1:0"
	if _, ok := env["SHUTDOWN_DRAIN_DELAY"]; !ok {
		env["SHUTDOWN_DRAIN_DELAY"] = "0s"
	}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &syncBuffer{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n")) //nolint:errcheck // in memory
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, getenv, pw)
		_ = pw.Close() // a PipeWriter's Close always returns nil
	}()
	var stopped atomic.Bool
	var stopErr error
	stop := func() error {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("run did not return after cancel")
			}
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	a := &api{t: t, stop: stop, logs: logs}
	select {
	case s := <-addr:
		a.base = "http://" + s
	case err := <-done:
		t.Fatalf("run returned before listening: %v\n%s", err, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("no listening address logged:\n%s", logs.String())
	}
	a.eventually("ready", func() bool { return a.get("/healthz").status == 200 && a.get("/readyz").status == 200 })
	// The listener's first connect flushes the cache; tests that count
	// queries or hits start after it.
	a.eventually("listener", func() bool { return a.metric("rickmorty_listener_connected") == 1 })
	return a
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (a *api) get(path string) resp {
	a.t.Helper()
	r, err := http.Get(a.base + path)
	if err != nil {
		return resp{status: -1, body: err.Error()}
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, string(b)}
}

func (a *api) eventually(what string, cond func() bool) {
	a.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, a.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric returns the value of one sample line of /metrics, or 0.
func (a *api) metric(sample string) float64 {
	a.t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(a.get("/metrics").body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func seeded(t *testing.T, n int) string {
	t.Helper()
	dbURL := pgtest.New(t)
	apitest.Ingest(t, dbURL, apitest.Change{Upsert: apitest.Characters(n)})
	return dbURL
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "CACHE_TTL": "soon"}, "CACHE_TTL"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "CACHE_MAX_ENTRIES": "0"}, "CACHE_MAX_ENTRIES"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "TRUSTED_PROXIES": "10.0.0.0/8, nope"}, "TRUSTED_PROXIES"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "CORS_ALLOWED_ORIGINS": "https://app.example.com/"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "RATE_LIMIT_RPS": "-1"}, "RATE_LIMIT_RPS"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "CACHE_CONTROL_MAX_AGE": "500ms"}, "CACHE_CONTROL_MAX_AGE"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "CACHE_CONTROL_STALE_IF_ERROR": "1.5s"}, "whole number of seconds"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "CACHE_CONTROL_S_MAXAGE": "8761h"}, "CACHE_CONTROL_S_MAXAGE"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "COMPRESSION_MIN_BYTES": "0"}, "COMPRESSION_MIN_BYTES"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "HTTP_ADDR": "8080"}, "HTTP_ADDR"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "DATABASE_READ_URL": "mysql://x/y"}, "DATABASE_READ_URL"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "DATABASE_READ_URL": "host=x port=notaport"}, "DATABASE_READ_URL"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "LOG_FILE_MAX_BYTES": "1"}, "LOG_FILE_MAX_BYTES"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "LOG_FILE": "/dev/null/api.log"}, "LOG_FILE"},
	} {
		err := run(context.Background(), func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v: error %v does not name %s", tc.env, err, tc.want)
		}
	}
}

func TestLoadConfigDefaultsAndProxies(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://u:secret@h/db", "TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8080" || cfg.CacheTTL != 5*time.Minute || cfg.RateLimitRPS != 0 || cfg.CacheMaxEntries != 10_000 {
		t.Errorf("defaults = %+v", cfg)
	}
	if got, want := fmt.Sprint(cfg.TrustedProxies), "[10.0.0.0/8 192.0.2.1/32]"; got != want {
		t.Errorf("proxies = %s, want %s", got, want)
	}
	if cfg.DatabaseReadURL != "" {
		t.Errorf("DATABASE_READ_URL defaults to %q, want unset", cfg.DatabaseReadURL)
	}
	cfg, err = loadConfig(func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://u@h/db", "DATABASE_READ_URL": "postgres://u:pw@replica:6432/db"}[k]
	})
	if err != nil || cfg.DatabaseReadURL != "postgres://u:pw@replica:6432/db" {
		t.Errorf("DATABASE_READ_URL = %q, %v", cfg.DatabaseReadURL, err)
	}
	if logged := fmt.Sprint(cfg.LogValue()); strings.Contains(logged, "pw@") {
		t.Errorf("the read URL's password is logged: %s", logged)
	}
}

// TestLogFileHoldsTheSameJSONLog runs the API with LOG_FILE (no database
// needed: it starts unready) and checks that the file gets exactly what
// stdout gets.
func TestLogFileHoldsTheSameJSONLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "api.log")
	env := map[string]string{
		"DATABASE_URL": "postgres://rickmorty@127.0.0.1:1/rickmorty?connect_timeout=1", "HTTP_ADDR": "127.0.0.1:0",
		"SHUTDOWN_DRAIN_DELAY": "0s", "LOG_FILE": path, "LOG_FILE_MAX_BYTES": "1048576",
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, stdout) }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(readFileString(t, path), `"msg":"listening"`) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no listening record in %s; stdout:\n%s", path, stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	got := readFileString(t, path)
	if got != stdout.String() {
		t.Errorf("LOG_FILE differs from stdout:\nfile:\n%s\nstdout:\n%s", got, stdout.String())
	}
	for _, want := range []string{`"msg":"starting"`, `"LOG_FILE":"` + path + `"`, `"LOG_FILE_MAX_BYTES":1048576`, `"msg":"stopped"`} {
		if !strings.Contains(got, want) {
			t.Errorf("LOG_FILE lacks %s:\n%s", want, got)
		}
	}
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartsLogsMaskedConfigAndShutsDownGracefully(t *testing.T) {
	t.Parallel()
	// A role with a password (pgtest.RolePassword), whichever the server's
	// authentication, so that the log has one to mask.
	dbURL := pgtest.SelectOnlyRole(t, seeded(t, 3))
	a := startAPI(t, map[string]string{"DATABASE_URL": dbURL, "SHUTDOWN_DRAIN_DELAY": "500ms"})
	if r := a.get("/characters/1"); r.status != 200 {
		t.Fatalf("GET /characters/1 = %d %s", r.status, r.body)
	}
	logs := a.logs.String()
	if strings.Contains(logs, pgtest.RolePassword) || !strings.Contains(logs, "xxxxx") {
		t.Errorf("the password is not masked in the logs:\n%s", logs)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- a.stop() }()
	a.eventually("readyz to fail while draining", func() bool { return a.get("/readyz").status == http.StatusServiceUnavailable })
	if r := a.get("/characters/1"); r.status != 200 {
		t.Errorf("a request during the drain delay got %d", r.status)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return")
	}
	if r := a.get("/healthz"); r.status != -1 {
		t.Errorf("still serving after shutdown: %d", r.status)
	}
}

func TestNotifyClearsTheCacheWithinASecond(t *testing.T) {
	t.Parallel()
	dbURL := seeded(t, 3)
	a := startAPI(t, map[string]string{"DATABASE_URL": dbURL, "CACHE_TTL": "1h"})
	a.eventually("listener", func() bool { return strings.Contains(a.get("/healthcheck").body, `"listener_connected":true`) })
	before := a.get("/characters/1")
	if hits := a.metric("rickmorty_cache_hits_total"); a.get("/characters/1").body != before.body ||
		a.metric("rickmorty_cache_hits_total") != hits+1 {
		t.Fatal("the second read was not a cache hit")
	}

	renamed := apitest.Characters(1)[0]
	renamed.Name = "Zeta"
	start := time.Now()
	apitest.Ingest(t, dbURL, apitest.Change{Upsert: []character.Character{renamed}})
	for {
		r := a.get("/characters/1")
		if strings.Contains(r.body, `"name":"Zeta"`) {
			if r.header.Get("ETag") == before.header.Get("ETag") {
				t.Error("new data under the old ETag")
			}
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("still serving the old character %s after a second", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("cache cleared %s after the commit", time.Since(start))
}

func TestListenerRecoversAfterTerminationAndFlushes(t *testing.T) {
	t.Parallel()
	dbURL := seeded(t, 3)
	a := startAPI(t, map[string]string{"DATABASE_URL": dbURL, "CACHE_TTL": "1h"})
	a.eventually("listener", func() bool { return strings.Contains(a.get("/healthcheck").body, `"listener_connected":true`) })
	a.get("/characters/2") // cached

	// A change whose notification the API never gets.
	renamed := apitest.Characters(2)[1]
	renamed.Name = "Zulu"
	apitest.IngestSilently(t, dbURL, apitest.Change{Upsert: []character.Character{renamed}})
	if strings.Contains(a.get("/characters/2").body, "Zulu") {
		t.Fatal("the cache was bypassed")
	}

	admin, err := pgx.Connect(context.Background(), pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	dbName := strings.TrimPrefix(mustParse(t, dbURL).Path, "/")
	var killed int
	if err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = 'rickmorty-api-listener' AND datname = $1`, dbName).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener backends, want 1", killed)
	}
	a.eventually("the listener to reconnect", func() bool { return a.metric("rickmorty_listener_reconnects_total") >= 1 })
	a.eventually("the reconnect to flush the cache", func() bool { return strings.Contains(a.get("/characters/2").body, "Zulu") })
	if !strings.Contains(a.get("/healthcheck").body, `"listener_connected":true`) {
		t.Error("healthcheck does not report the listener connected again")
	}
}

func TestHundredConcurrentMissesMakeOneQuery(t *testing.T) {
	t.Parallel()
	dbURL := seeded(t, 50)
	a := startAPI(t, map[string]string{"DATABASE_URL": dbURL, "CACHE_TTL": "1h"})
	const sample = `rickmorty_db_query_duration_seconds_count{query="list"}`
	before := a.metric(sample)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			<-start
			if r := a.get("/characters?sort=created&order=desc&page=3&page_size=9"); r.status != 200 {
				t.Errorf("status %d", r.status)
			}
		})
	}
	close(start)
	wg.Wait()
	if got, want := a.metric(sample)-before, 1.0; got != want {
		t.Errorf("list queries for 100 concurrent requests = %v, want %v", got, want)
	}
}

func TestDatabaseOutageServesCacheThenRecovers(t *testing.T) {
	t.Parallel()
	dbURL := seeded(t, 5)
	proxy, viaProxy := pgtest.NewProxy(t, dbURL)
	a := startAPI(t, map[string]string{"DATABASE_URL": viaProxy, "CACHE_TTL": "1h", "REQUEST_TIMEOUT": "2s"})
	a.eventually("listener", func() bool { return strings.Contains(a.get("/healthcheck").body, `"listener_connected":true`) })
	warm := a.get("/characters?page_size=2")

	proxy.Down()
	if r := a.get("/characters?page_size=2"); r.status != 200 || r.body != warm.body {
		t.Errorf("cached page during the outage: %d", r.status)
	}
	miss := a.get("/characters?page_size=4")
	if miss.status != http.StatusServiceUnavailable || miss.header.Get("Retry-After") == "" ||
		miss.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("miss during the outage: %d %v %s", miss.status, miss.header, miss.body)
	}
	if r := a.get("/readyz"); r.status != 200 {
		t.Errorf("readyz during the outage: %d", r.status)
	}
	a.eventually("healthcheck to report degraded", func() bool {
		r := a.get("/healthcheck")
		return r.status == 503 && strings.Contains(r.body, `"db_ok":false`) && strings.Contains(r.body, `"listener_connected":false`)
	})

	proxy.Up()
	a.eventually("misses to be served again", func() bool { return a.get("/characters?page_size=4").status == 200 })
	a.eventually("healthcheck ok", func() bool { return a.get("/healthcheck").status == 200 })
}

func TestWorksWithASelectOnlyRole(t *testing.T) {
	t.Parallel()
	dbURL := seeded(t, 4)
	ctx := context.Background()
	role := fmt.Sprintf("rm_api_ro_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	dbName := strings.TrimPrefix(mustParse(t, dbURL).Path, "/")

	admin, err := pgx.Connect(ctx, pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, pgtest.LoginRole(role)); err != nil {
		t.Fatal(err)
	}
	owner, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	t.Cleanup(func() {
		// Runs before the database is dropped: clear the role's grants there, then drop it.
		owner.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())       //nolint:errcheck // best effort
		admin.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()) //nolint:errcheck // best effort
	})
	// The documented grants scripts, each as the role its header names
	// (here the database's owner is a superuser, which may do all three).
	vars := map[string]string{"api_role": role, "dbname": dbName, "ingester_role": "postgres"}
	for _, file := range []string{"api_readonly.sql", "api_role.sql"} {
		if err := pgtest.ApplyPSQL(t, dbURL, "../../db/grants/"+file, vars); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}

	roleURL := pgtest.AsRole(t, dbURL, role)
	a := startAPI(t, map[string]string{"DATABASE_URL": roleURL})
	for _, path := range []string{"/characters", "/characters/2", "/characters?sort=name&order=desc&page=2&page_size=3"} {
		if r := a.get(path); r.status != 200 {
			t.Errorf("%s as the SELECT-only role: %d %s", path, r.status, r.body)
		}
	}
	a.eventually("healthcheck ok", func() bool { return a.get("/healthcheck").status == 200 })

	// The role cannot write, even when it asks for a read-write transaction.
	conn, err := pgx.Connect(ctx, roleURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE data_version SET version = version + 1"); err == nil ||
		!strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("a write in the role's default session: err = %v, want refused as read-only", err)
	}
	if _, err := conn.Exec(ctx, "SET default_transaction_read_only = off"); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"INSERT INTO characters (id, name, status, species, type, gender, origin_name, origin_url, location_name, location_url, image, episode, url, created) VALUES (999, 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', '{}', 'x', now())",
		"UPDATE data_version SET version = version + 1",
		"DELETE FROM ingest_runs",
		"TRUNCATE characters",
		"CREATE TABLE public.evil (x int)",
	} {
		if _, err := conn.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: err = %v, want permission denied", stmt, err)
		}
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConfigListsEverySetting(t *testing.T) {
	t.Parallel()
	if err := config.Validate(settings(&Config{})); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"config", "--help"} {
		var out strings.Builder
		if code := command([]string{arg}, &out, io.Discard); code != 0 {
			t.Fatalf("api %s: exit code %d", arg, code)
		}
		for _, s := range settings(&Config{}) {
			if !strings.Contains(out.String(), s.Name) || !strings.Contains(out.String(), s.Usage) {
				t.Errorf("api %s does not list %s", arg, s.Name)
			}
		}
		if !strings.Contains(out.String(), "0s - 24h") {
			t.Errorf("api %s does not show CACHE_TTL's range:\n%s", arg, out.String())
		}
	}
	if code := command([]string{"serve-now"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("api serve-now: exit code %d, want 2", code)
	}
}

func TestPrimaryPoolSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{map[string]string{}, 8},
		{map[string]string{"DB_MAX_CONNS": "12"}, 12},
		{map[string]string{"DB_PRIMARY_MAX_CONNS": "2"}, 8}, // no read URL: the primary takes every read
		{map[string]string{"DB_PRIMARY_MAX_CONNS": "2", "DATABASE_READ_URL": "postgres://r/db"}, 2},
		{map[string]string{"DB_MAX_CONNS": "12", "DATABASE_READ_URL": "postgres://r/db"}, 12},
	} {
		tc.env["DATABASE_URL"] = "postgres://p/db"
		cfg, err := loadConfig(func(k string) string { return tc.env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.primaryPoolSize(); got != tc.want {
			t.Errorf("%v: primary pool %d, want %d", tc.env, got, tc.want)
		}
	}
}
