package opscheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// exposition is what a set of /metrics pages offers to queries: every
// sample name (a histogram family x gives x_bucket, x_sum and x_count), with
// the label names and values seen on it.
type exposition map[string]map[string]map[string]bool

func (e exposition) add(name string, m *dto.Metric, extra ...string) {
	if e[name] == nil {
		e[name] = map[string]map[string]bool{}
	}
	set := func(k, v string) {
		if e[name][k] == nil {
			e[name][k] = map[string]bool{}
		}
		e[name][k][v] = true
	}
	for _, lp := range m.GetLabel() {
		set(lp.GetName(), lp.GetValue())
	}
	for i := 0; i+1 < len(extra); i += 2 {
		set(extra[i], extra[i+1])
	}
}

// parseExposition reads the Prometheus text format and records the sample
// names a query can select.
func parseExposition(t testing.TB, e exposition, body []byte) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				for _, b := range m.GetHistogram().GetBucket() {
					e.add(name+"_bucket", m, "le", fmt.Sprint(b.GetUpperBound()))
				}
				e.add(name+"_bucket", m, "le", "+Inf")
				e.add(name+"_sum", m)
				e.add(name+"_count", m)
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					e.add(name, m, "quantile", fmt.Sprint(q.GetQuantile()))
				}
				e.add(name+"_sum", m)
				e.add(name+"_count", m)
			default: // counter (its text-format family name ends in _total), gauge, untyped
				e.add(name, m)
			}
		}
	}
}

// TestMetricNamesExistInRealExposition builds the real binaries, runs one
// ingest through the fake upstream and some API traffic, scrapes both
// /metrics pages and checks every series the dashboard and the rules
// select: its name is exported (or listed in externalSeries), and the label
// names it matches or groups by exist on it. A renamed metric or label fails.
func TestMetricNamesExistInRealExposition(t *testing.T) {
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		if os.Getenv("CI") != "" || os.Getenv("OPSCHECK_REQUIRE_LIVE") != "" {
			t.Fatal("TEST_DATABASE_URL is unset: set it to a Postgres URL whose user may CREATE DATABASE (scripts/ops-test.sh does)")
		}
		t.Skip("TEST_DATABASE_URL is unset; scripts/ops-test.sh sets it")
	}
	queries := append(dashboardQueries(t), ruleQueries(t)...)
	if t.Failed() {
		t.FailNow()
	}

	exp := liveExposition(t, admin)

	usedExternal := map[string]bool{}
	for _, q := range queries {
		for _, vs := range selectors(q.ast) {
			name := metricName(vs)
			if name == "" {
				t.Errorf("%s: selector %s has no exact metric name, so it cannot be checked", q.where, vs)
				continue
			}
			if _, ok := externalSeries[name]; ok {
				usedExternal[name] = true
				continue
			}
			series, ok := exp[name]
			if !ok {
				t.Errorf("%s: %s is not exported by the api or the ingester%s", q.where, name, nearNames(exp, name))
				continue
			}
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel || targetLabels[m.Name] {
					continue
				}
				values, ok := series[m.Name]
				if !ok {
					t.Errorf("%s: %s has no label %q (it has %v)", q.where, name, m.Name, sortedKeys(series))
					continue
				}
				if m.Type == labels.MatchEqual && m.Value != "" && !values[m.Value] {
					t.Errorf("%s: %s{%s=%q}: no such value exported (seen %v)", q.where, name, m.Name, m.Value, sortedKeys(values))
				}
			}
		}
		for _, g := range groupings(q.ast) {
			for _, l := range g.labels {
				if targetLabels[l] || slices.ContainsFunc(g.metrics, func(n string) bool {
					_, external := externalSeries[n]
					return external || n == "" || exp[n][l] != nil
				}) {
					continue
				}
				t.Errorf("%s: aggregates by %q, which none of %v has", q.where, l, g.metrics)
			}
		}
	}
	for name := range externalSeries {
		if !usedExternal[name] {
			t.Errorf("externalSeries lists %s, which no query uses: remove it", name)
		}
	}
	if !t.Failed() {
		t.Logf("checked %d queries against %d exported series names", len(queries), len(exp))
	}
}

// nearNames suggests exported names sharing the metric's first words, to
// make a rename obvious in the failure message.
func nearNames(exp exposition, name string) string {
	parts := strings.Split(name, "_")
	prefix := strings.Join(parts[:max(1, min(2, len(parts)-1))], "_") + "_"
	var near []string
	for n := range exp {
		if strings.HasPrefix(n, prefix) {
			near = append(near, n)
		}
	}
	if len(near) == 0 {
		return ""
	}
	slices.Sort(near)
	if len(near) > 8 {
		near = append(near[:8], "...")
	}
	return fmt.Sprintf(" (exported with the prefix %s: %s)", prefix, strings.Join(near, ", "))
}

// liveExposition runs the system and returns what its /metrics pages offer.
func liveExposition(t *testing.T, admin string) exposition {
	root := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/api", "./cmd/ingester", "./cmd/fakeupstream")
	build.Dir = root
	// Build the application as its own module or workspace would, not with
	// this test module's GOWORK=off.
	build.Env = append(withoutEnv(os.Environ(), "GOWORK"), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}

	dbURL := createDatabase(t, admin)
	env := func(kv ...string) []string {
		return append(withoutEnv(os.Environ(), "GOWORK"), kv...)
	}

	migrate := exec.Command(filepath.Join(bin, "ingester"), "migrate")
	migrate.Env = env("DATABASE_URL=" + dbURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("ingester migrate: %v\n%s", err, out)
	}

	fake := startProcess(t, "fakeupstream", filepath.Join(bin, "fakeupstream"), []string{"-addr", "127.0.0.1:0"}, env(),
		func(line string) (string, bool) {
			return strings.TrimSpace(line), strings.HasPrefix(line, "http://")
		})
	upstreamURL := fake.waitAddr(t, 15*time.Second)
	// One 503 and one 429 before success: retries and non-2xx codes get
	// exported too.
	putJSON(t, strings.TrimSuffix(upstreamURL, "/api")+"/_fake/faults",
		`{"fail_pages":{"2":1},"status":503,"rate_limit_pages":{"3":1},"retry_after":"0"}`)

	ing := startProcess(t, "ingester", filepath.Join(bin, "ingester"), []string{"serve"}, env(
		"DATABASE_URL="+dbURL,
		"UPSTREAM_URL="+upstreamURL,
		"METRICS_ADDR=127.0.0.1:0",
		"INGEST_SCHEDULE=@every 1h", // the ingest at start only
		"UPSTREAM_RETRY_WAIT_MIN=10ms",
		"UPSTREAM_RETRY_WAIT_MAX=100ms",
	), jsonLogAddr("serving metrics and health"))
	ingURL := "http://" + ing.waitAddr(t, 30*time.Second)

	api := startProcess(t, "api", filepath.Join(bin, "api"), nil, env(
		"DATABASE_URL="+dbURL,
		"HTTP_ADDR=127.0.0.1:0",
		"SHUTDOWN_DRAIN_DELAY=0s",
	), jsonLogAddr("listening"))
	apiURL := "http://" + api.waitAddr(t, 30*time.Second)

	// One ingest.
	waitFor(t, 60*time.Second, "the first ingest to succeed", func() (bool, error) {
		body := string(get(t, ingURL+"/metrics", 200))
		switch {
		case strings.Contains(body, `rickmorty_ingest_runs_total{result="success"} 1`):
			return true, nil
		case strings.Contains(body, `rickmorty_ingest_runs_total{result="failed"} 1`):
			return false, fmt.Errorf("the ingest failed; ingester log:\n%s", ing.logs())
		}
		return false, nil
	})

	// API traffic: list, item, cache hits, 404, 422, probes, metrics.
	waitFor(t, 30*time.Second, "the API to be ready", func() (bool, error) {
		return status(t, apiURL+"/readyz") == 200, nil
	})
	for _, c := range []struct {
		path string
		want int
	}{
		{"/characters", 200},
		{"/characters", 200}, // cache hit
		{"/characters?page=2&sort=name&order=desc", 200},
		{"/characters/1", 200},
		{"/characters/1", 200},
		{"/characters/99999999", 404},
		{"/characters?sort=bogus", 422},
		{"/no-such-route", 404},
		{"/healthz", 200},
		{"/readyz", 200},
		{"/healthcheck", 200},
		{"/openapi.json", 200},
		{"/metrics", 200},
	} {
		if got := status(t, apiURL+c.path); got != c.want {
			t.Errorf("GET %s: status %d, want %d", c.path, got, c.want)
		}
	}

	exp := exposition{}
	parseExposition(t, exp, get(t, ingURL+"/metrics", 200))
	parseExposition(t, exp, get(t, apiURL+"/metrics", 200))
	// Guard against a silently empty scrape making everything "missing".
	for _, name := range []string{"rickmorty_build_info", "rickmorty_http_requests_total", "rickmorty_ingest_runs_total"} {
		if exp[name] == nil {
			t.Fatalf("scrape lacks %s; api log:\n%s\ningester log:\n%s", name, api.logs(), ing.logs())
		}
	}
	return exp
}

func withoutEnv(env []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
}

// createDatabase makes an empty database for this test on the admin
// server and drops it afterwards.
func createDatabase(t *testing.T, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	defer conn.Close(context.Background())
	name := fmt.Sprintf("opscheck_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000_000)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// process is a child process whose output is kept and scanned for the
// address it listens on.
type process struct {
	name string
	cmd  *exec.Cmd
	addr chan string
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startProcess(t *testing.T, name, path string, args, env []string, findAddr func(line string) (string, bool)) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(path, args...), addr: make(chan string, 1), done: make(chan struct{})}
	p.cmd.Env = env
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	scan := func(r io.Reader) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if a, ok := findAddr(line); ok {
				select {
				case p.addr <- a:
				default:
				}
			}
		}
	}
	wg.Add(2)
	go scan(stdout)
	go scan(stderr)
	go func() {
		wg.Wait()
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.logs())
		}
	})
	return p
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *process) waitAddr(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case a := <-p.addr:
		return a
	case <-p.done:
		t.Fatalf("%s exited before listening:\n%s", p.name, p.logs())
	case <-time.After(timeout):
		t.Fatalf("%s did not report its address within %s:\n%s", p.name, timeout, p.logs())
	}
	return ""
}

// jsonLogAddr finds the "addr" of the JSON log line whose msg is msg.
func jsonLogAddr(msg string) func(string) (string, bool) {
	return func(line string) (string, bool) {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != msg || rec.Addr == "" {
			return "", false
		}
		return rec.Addr, true
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func status(t *testing.T, u string) int {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func get(t *testing.T, u string, want int) []byte {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", u, resp.StatusCode, want, body)
	}
	return body
}

func putJSON(t *testing.T, u, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: status %d: %s", u, resp.StatusCode, b)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
