package main

// Tests with a real headless Chromium, driven through the DevTools protocol
// (chromedp), against the real program (run) on loopback and a real
// Postgres: the /docs page, and CORS as a page of another origin sees it.
// They need Chromium (or Google Chrome): scripts/ensure-chromium.sh installs
// it, and make test runs it first. Without a browser they fail and say so;
// SKIP_BROWSER_TESTS=1 skips them on a machine that cannot have one.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rickmorty/rickmorty/pkg/config/configtest"
)

const skipBrowserTests = "SKIP_BROWSER_TESTS"

// browserPath finds the browser as scripts/ensure-chromium.sh does.
func browserPath(t *testing.T) string {
	t.Helper()
	if os.Getenv(skipBrowserTests) == "1" {
		t.Skipf("%s=1: the browser tests are skipped", skipBrowserTests)
	}
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no browser for the browser tests: none of %s is on PATH and CHROMIUM is not set.\n"+
		"Install Chromium with scripts/ensure-chromium.sh (make test runs it), or set CHROMIUM to a Chromium or Chrome binary;\n"+
		"%s=1 skips these tests on a machine that cannot have a browser.", strings.Join(names, ", "), skipBrowserTests)
	return ""
}

// newBrowser starts a headless browser with a profile of its own, for the
// test's lifetime.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1600),
		// Chromium cannot use its sandbox as root (make test on this
		// project's machines), nor where user namespaces are restricted
		// (GitHub's Ubuntu 24.04 runners); the pages are the test's own.
		chromedp.NoSandbox,
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Do binds the browser's life to its context, so it gets no
	// timeout of its own; a browser that does not start is stopped instead.
	hung := time.AfterFunc(2*time.Minute, cancel)
	err := chromedp.Do(ctx)
	hung.Stop()
	if err != nil {
		t.Fatalf("starting the browser: %v", err)
	}
	return ctx
}

// tab is a browser tab that records what the page did: every request, and
// every error the page met or reported.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string // "METHOD URL", in order
	urls     map[network.RequestID]string
	errors   []string            // console.error/assert, uncaught exceptions, Log errors, failed or 4xx/5xx loads
	corsFail []network.CorsError // loads blocked by CORS
	notes    []string            // warnings, logged at the end
}

func openTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	tb := &tab{t: t, urls: map[network.RequestID]string{}}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithListener(tb.record))
	t.Cleanup(func() {
		cancel()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, n := range tb.notes {
			t.Log("browser:", n)
		}
	})
	tb.ctx = ctx
	// Opens the tab, with the listener attached from its start. As for the
	// browser, the first Do binds the tab's life to its context.
	hung := time.AfterFunc(time.Minute, cancel)
	err := chromedp.Do(ctx)
	hung.Stop()
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tb
}

// record runs on the tab's event loop: it must only take notes.
func (tb *tab) record(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if !strings.HasPrefix(ev.Request.URL, "about:") {
			tb.requests = append(tb.requests, ev.Request.Method+" "+ev.Request.URL)
		}
		tb.urls[ev.RequestID] = ev.Request.URL
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			tb.errors = append(tb.errors, fmt.Sprintf("HTTP %d for %s", ev.Response.Status, ev.Response.URL))
		}
	case *network.EventLoadingFailed:
		if ev.CorsErrorStatus != nil {
			tb.corsFail = append(tb.corsFail, ev.CorsErrorStatus.CorsError)
		}
		if !ev.Canceled {
			tb.errors = append(tb.errors, fmt.Sprintf("loading %s failed: %s %s", tb.urls[ev.RequestID], ev.ErrorText, ev.BlockedReason))
		}
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			tb.errors = append(tb.errors, "console."+string(ev.Type)+": "+remoteText(ev.Args))
		case runtime.ConsoleAPICalledTypeWarning:
			tb.notes = append(tb.notes, "console.warn: "+remoteText(ev.Args))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		tb.errors = append(tb.errors, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		msg := fmt.Sprintf("log (%s): %s %s", e.Source, e.Text, e.URL)
		switch e.Level {
		case cdplog.EntryLevelError:
			tb.errors = append(tb.errors, msg)
		case cdplog.EntryLevelWarning:
			tb.notes = append(tb.notes, msg)
		}
	}
}

func remoteText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

func (tb *tab) snapshot() (requests, errors []string, cors []network.CorsError) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.requests...), append([]string(nil), tb.errors...), append([]network.CorsError(nil), tb.corsFail...)
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		_, errs, _ := tb.snapshot()
		tb.t.Fatalf("browser: %v\nerrors the page met: %q", err, errs)
	}
}

// waitJS polls expr (a boolean expression) from Go: chromedp's own polling
// compiles its predicate with new Function, which the docs page's CSP forbids.
func (tb *tab) waitJS(what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.screenshot("timeout")
			_, errs, _ := tb.snapshot()
			tb.t.Fatalf("timed out waiting for %s (%s: %v)\nerrors the page met: %q", what, expr, err, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves a PNG of the whole page into the artifacts directory
// ($ARTIFACTS_DIR, else .cache/artifacts at the repository root), which CI
// uploads.
func (tb *tab) screenshot(name string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		tb.t.Errorf("screenshot: %v", err)
		return ""
	}
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join(configtest.RepoRoot(tb.t), ".cache", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // the directory the developer or CI chose for artifacts
		tb.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil { //nolint:gosec // a test artifact, meant to be read
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
	return path
}

// hostsOf returns the hosts (host:port) of requests, data: URLs aside.
func hostsOf(t *testing.T, requests []string) map[string]bool {
	t.Helper()
	hosts := map[string]bool{}
	for _, r := range requests {
		_, raw, _ := strings.Cut(r, " ")
		if strings.HasPrefix(raw, "data:") {
			continue // never leaves the page
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to an unparsable URL %q", raw)
			continue
		}
		hosts[u.Scheme+"://"+u.Host] = true
	}
	return hosts
}

// TestDocsPageInABrowser loads /docs, runs GET /characters from it with
// "Try it out" and "Execute", and checks that nothing went wrong on the
// way: no console error, no exception, no CSP violation, no request to any
// host but the API.
func TestDocsPageInABrowser(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	a := startAPI(t, map[string]string{"DATABASE_URL": seeded(t, 30)})
	tb := openTab(t, browser)

	tb.do(chromedp.Navigate(a.base + "/docs"))
	op := "#operations-default-listCharacters"
	tb.waitJS("the GET /characters operation", `!!document.querySelector('`+op+` .opblock-summary-path[data-path="/characters"]')`)
	tb.do(chromedp.Click(chromedp.CSS(op + " .opblock-summary-control")))
	tb.waitJS(`"Try it out"`, `!!document.querySelector('`+op+` .try-out__btn')`)
	tb.do(chromedp.Click(chromedp.CSS(op + " .try-out__btn")))
	tb.waitJS(`"Execute"`, `!!document.querySelector('`+op+` .btn.execute')`)
	tb.do(chromedp.Click(chromedp.CSS(op + " .btn.execute")))
	status := `document.querySelector('` + op + ` .live-responses-table tr.response .response-col_status')`
	tb.waitJS("the live response", `!!`+status+` && `+status+`.textContent.trim() !== ''`)
	tb.screenshot("docs")

	got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[map[string]string](`({
		status: `+status+`.textContent.trim(),
		body: document.querySelector('`+op+` .live-responses-table tr.response .response-col_description pre').textContent,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got["status"], "200") {
		t.Errorf("Execute answered %q, want 200", got["status"])
	}
	var page struct {
		TotalCount int              `json:"total_count"`
		Results    []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(got["body"]), &page); err != nil || page.TotalCount != 30 || len(page.Results) != 20 {
		t.Errorf("the response body shown is not the first page of the 30 characters (%v): %.300s", err, got["body"])
	}

	requests, errs, _ := tb.snapshot()
	for _, e := range errs {
		t.Errorf("the page met an error: %s", e)
	}
	for host := range hostsOf(t, requests) {
		if host != a.base {
			t.Errorf("the page sent a request to %s; only the API (%s) is allowed", host, a.base)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^GET /docs$`),
		regexp.MustCompile(`^GET /docs/assets/[^/]+/swagger-ui-bundle\.js$`),
		regexp.MustCompile(`^GET /docs/assets/[^/]+/swagger-ui\.css$`),
		regexp.MustCompile(`^GET /docs/assets/[^/]+/init\.js$`),
		regexp.MustCompile(`^GET /openapi\.json$`),
		regexp.MustCompile(`^GET /characters(\?.*)?$`),
	} {
		found := false
		for _, r := range requests {
			found = found || want.MatchString(strings.Replace(r, a.base, "", 1))
		}
		if !found {
			t.Errorf("no request matches %s; the page made %q", want, requests)
		}
	}
}

// corsPage is a page of another origin that reads the API the way an app
// would: a GET with If-None-Match (not a CORS-safelisted header, so the
// browser sends a preflight first), reading the exposed ETag and Link, then
// a revalidation with the ETag it got.
const corsPage = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>another origin</title></head>
<body><script>
async function readAPI(api) {
  const out = {ok: false};
  try {
    const r = await fetch(api + "/characters?page_size=2", {headers: {"If-None-Match": '"v0"'}});
    out.status = r.status;
    out.etag = r.headers.get("ETag");
    out.link = r.headers.get("Link");
    out.results = (await r.json()).results.length;
    const again = await fetch(api + "/characters?page_size=2", {headers: {"If-None-Match": out.etag}});
    out.revalidated = again.status;
    out.ok = true;
  } catch (e) {
    out.error = String(e);
  }
  return out;
}
</script></body></html>`

type corsResult struct {
	OK          bool   `json:"ok"`
	Status      int    `json:"status"`
	ETag        string `json:"etag"`
	Link        string `json:"link"`
	Results     int    `json:"results"`
	Revalidated int    `json:"revalidated"`
	Error       string `json:"error"`
}

// TestCORSInABrowser: a page served from another origin (a second loopback
// server, so another port) reads the API when CORS_ALLOWED_ORIGINS lists
// its origin, and the browser refuses it the answer when it does not.
func TestCORSInABrowser(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(corsPage))
	}))
	t.Cleanup(pageSrv.Close)
	origin := pageSrv.URL
	dbURL := seeded(t, 5)
	preflights := `rickmorty_http_requests_total{code="204",method="OPTIONS",route="/characters"}`
	gets := `rickmorty_http_requests_total{code="200",method="GET",route="/characters"}`

	read := func(t *testing.T, allowed string) (*api, *tab, corsResult) {
		a := startAPI(t, map[string]string{"DATABASE_URL": dbURL, "CORS_ALLOWED_ORIGINS": allowed})
		tb := openTab(t, browser)
		tb.do(chromedp.Navigate(origin + "/"))
		res, err := chromedp.Run(tb.ctx, chromedp.Evaluate[corsResult]("readAPI("+strconv.Quote(a.base)+")", chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		requests, _, _ := tb.snapshot()
		for host := range hostsOf(t, requests) {
			if host != a.base && host != origin {
				t.Errorf("the page sent a request to %s; only %s and the API (%s) were expected", host, origin, a.base)
			}
		}
		return a, tb, res
	}

	t.Run("allowed", func(t *testing.T) {
		a, tb, res := read(t, "https://app.example.com, "+origin)
		if !res.OK || res.Status != http.StatusOK || res.Results != 2 {
			t.Errorf("the page could not read the API: %+v", res)
		}
		if !regexp.MustCompile(`^"v[0-9]+"$`).MatchString(res.ETag) || !strings.Contains(res.Link, `rel="next"`) {
			t.Errorf("the exposed headers are not readable: ETag %q, Link %q", res.ETag, res.Link)
		}
		if res.Revalidated != http.StatusNotModified {
			t.Errorf("revalidation with the ETag answered %d, want 304", res.Revalidated)
		}
		if n := a.metric(preflights); n < 1 {
			t.Errorf("the API answered %v preflights; the If-None-Match header should have caused one", n)
		}
		_, errs, _ := tb.snapshot()
		for _, e := range errs {
			t.Errorf("the page met an error: %s", e)
		}
	})

	t.Run("not allowed", func(t *testing.T) {
		a, tb, res := read(t, "https://app.example.com")
		if res.OK || !strings.Contains(res.Error, "Failed to fetch") {
			t.Errorf("the page read the API although its origin is not allowed: %+v", res)
		}
		if n := a.metric(preflights); n < 1 {
			t.Errorf("the API answered %v preflights, want the one the browser sent", n)
		}
		if n := a.metric(gets); n != 0 {
			t.Errorf("the API answered %v GETs: the browser should have stopped at the preflight", n)
		}
		_, errs, cors := tb.snapshot()
		if len(cors) == 0 {
			t.Errorf("no load was blocked by CORS; errors: %q", errs)
		}
		for _, e := range errs {
			if !strings.Contains(e, "CORS") && !strings.Contains(e, "net::ERR_FAILED") {
				t.Errorf("the page met an error other than the CORS refusal: %s", e)
			}
		}
	})
}
