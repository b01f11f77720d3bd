package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rickmorty/rickmorty/pkg/cache"
	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/httpapi"
	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

// countingStore counts the store calls that reach the database.
type countingStore struct {
	httpapi.Store
	lists, gets atomic.Int64
	delay       time.Duration
}

func (s *countingStore) List(ctx context.Context, q character.ListQuery) (character.Page, error) {
	s.lists.Add(1)
	time.Sleep(s.delay)
	return s.Store.List(ctx, q)
}

func (s *countingStore) Get(ctx context.Context, id int) (character.Character, character.Snapshot, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id)
}

type fakeListener struct{ connected atomic.Bool }

func (l *fakeListener) Connected() bool { return l.connected.Load() }

type env struct {
	t        testing.TB
	base     string
	dbURL    string
	proxy    *pgtest.Proxy
	srv      *httpapi.Server
	cache    *httpapi.Cache
	store    *countingStore
	listener *fakeListener
	registry *prometheus.Registry
}

type options struct {
	cfg        httpapi.Config
	cacheTTL   time.Duration
	maxEntries int
	seed       int  // characters to ingest before starting
	viaProxy   bool // reach the database through a proxy the test can take down
}

func setup(t testing.TB, o options) *env {
	t.Helper()
	e := &env{t: t, dbURL: pgtest.New(t), listener: &fakeListener{}}
	e.listener.connected.Store(true)
	if o.seed > 0 {
		apitest.Ingest(t, e.dbURL, apitest.Change{Upsert: apitest.Characters(o.seed)})
	}
	poolURL := e.dbURL
	if o.viaProxy {
		e.proxy, poolURL = pgtest.NewProxy(t, e.dbURL)
	}
	pool, err := postgres.OpenPool(context.Background(), poolURL, postgres.PoolConfig{ReadOnly: true, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.registry = prometheus.NewRegistry()
	e.store = &countingStore{Store: postgres.NewStore(pool, e.registry)}
	if o.cacheTTL == 0 {
		o.cacheTTL = time.Hour
	}
	if o.cacheTTL < 0 {
		o.cacheTTL = 0
	}
	if o.maxEntries == 0 {
		o.maxEntries = 1000
	}
	e.cache = httpapi.NewCache(cache.Config{TTL: o.cacheTTL, MaxEntries: o.maxEntries}, e.registry)
	e.srv = httpapi.NewServer(o.cfg, httpapi.Deps{
		Store: e.store, Cache: e.cache, Listener: e.listener, Registry: e.registry,
	})
	e.srv.SetReady()
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	e.base = ts.URL
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path string, header map[string]string) response {
	e.t.Helper()
	return e.send(http.DefaultClient, method, path, header)
}

func (e *env) send(client *http.Client, method, path string, header map[string]string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// rawClient sends exactly the headers given: no Accept-Encoding of its own, and
// no transparent decompression, so the test sees what the server sent.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func (e *env) raw(method, path string, header map[string]string) response {
	e.t.Helper()
	return e.send(rawClient, method, path, header)
}

func (e *env) get(path string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil)
}

type pageBody struct {
	Page       *int             `json:"page"`
	PageSize   *int             `json:"page_size"`
	TotalCount *int             `json:"total_count"`
	TotalPages *int             `json:"total_pages"`
	HasPrev    *bool            `json:"has_prev"`
	HasNext    *bool            `json:"has_next"`
	OutOfRange *bool            `json:"out_of_range"`
	Results    []map[string]any `json:"results"`
}

func decodePage(t *testing.T, r response) pageBody {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	if got, want := r.header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("content type = %q, want %q", got, want)
	}
	var p pageBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	if p.Page == nil || p.PageSize == nil || p.TotalCount == nil || p.TotalPages == nil || p.HasPrev == nil ||
		p.HasNext == nil || p.OutOfRange == nil || p.Results == nil {
		t.Fatalf("a page field is missing: %s", r.body)
	}
	return p
}

type problemBody struct {
	Type, Title, Detail, Instance, Param string
	Status                               int
}

func decodeProblem(t *testing.T, r response, status int) problemBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if got, want := r.header.Get("Content-Type"), "application/problem+json"; got != want {
		t.Errorf("content type = %q, want %q", got, want)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	for _, k := range []string{"type", "title", "status", "detail", "instance"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("problem lacks %q: %s", k, r.body)
		}
	}
	var p problemBody
	json.Unmarshal(r.body, &p) //nolint:errcheck // decoded above
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	return p
}

func TestListPageShapeAndFields(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 25})
	p := decodePage(t, e.get("/characters?page_size=10&page=2"))
	if *p.Page != 2 || *p.PageSize != 10 || *p.TotalCount != 25 || *p.TotalPages != 3 ||
		!*p.HasPrev || !*p.HasNext || *p.OutOfRange {
		t.Errorf("paging = %+v", p)
	}
	if got, want := len(p.Results), 10; got != want {
		t.Fatalf("results = %d, want %d", got, want)
	}
	want := apitest.Characters(11)[10]
	r := p.Results[0]
	wantFields := map[string]any{
		"id": float64(11), "name": want.Name, "status": want.Status, "species": want.Species, "type": want.Type,
		"gender": want.Gender, "origin": want.OriginName, "location": want.LocationName, "image": want.Image,
		"url": want.URL, "created": want.Created.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	for k, v := range wantFields {
		if r[k] != v {
			t.Errorf("result[%q] = %v, want %v", k, r[k], v)
		}
	}
	if len(r) != len(wantFields) {
		t.Errorf("result has fields %v, want exactly %v", r, wantFields)
	}

	// Defaults.
	p = decodePage(t, e.get("/characters"))
	if *p.Page != 1 || *p.PageSize != 20 || len(p.Results) != 20 || *p.HasPrev || !*p.HasNext {
		t.Errorf("default page = page %d size %d, %d results", *p.Page, *p.PageSize, len(p.Results))
	}
	if got := p.Results[0]["id"]; got != float64(1) {
		t.Errorf("default sort starts at id %v, want 1", got)
	}
	// Last, partial page.
	p = decodePage(t, e.get("/characters?page=3&page_size=10"))
	if len(p.Results) != 5 || !*p.HasPrev || *p.HasNext || *p.OutOfRange {
		t.Errorf("last page = %+v", p)
	}
}

func TestListSortsByEveryFieldBothWaysAcrossPages(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 11})
	all := apitest.Characters(11)
	for _, sort := range []string{"id", "name", "created"} {
		for _, order := range []string{"asc", "desc"} {
			var got []int
			seen := map[int]bool{}
			next := fmt.Sprintf("/characters?sort=%s&order=%s&page_size=4", sort, order)
			for pages := 0; next != ""; pages++ {
				if pages > 5 {
					t.Fatalf("%s %s: more pages than possible", sort, order)
				}
				r := e.get(next)
				p := decodePage(t, r)
				for _, c := range p.Results {
					id := int(c["id"].(float64))
					if seen[id] {
						t.Fatalf("%s %s: id %d appears on two pages", sort, order, id)
					}
					seen[id] = true
					got = append(got, id)
				}
				next = linkRel(r.header, "next")
				if (next != "") != *p.HasNext {
					t.Errorf("%s %s page %d: next link %q but has_next %v", sort, order, *p.Page, next, *p.HasNext)
				}
			}
			want := sortedIDs(all, sort, order)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s:\n got %v\nwant %v", sort, order, got, want)
			}
		}
	}
}

func sortedIDs(all []character.Character, sort, order string) []int {
	ids := make([]int, len(all))
	for i := range all {
		ids[i] = all[i].ID
	}
	less := func(a, b character.Character) bool {
		switch sort {
		case "name":
			if a.Name != b.Name {
				return a.Name < b.Name
			}
		case "created":
			if !a.Created.Equal(b.Created) {
				return a.Created.Before(b.Created)
			}
		}
		return a.ID < b.ID
	}
	byID := map[int]character.Character{}
	for _, c := range all {
		byID[c.ID] = c
	}
	for i := 1; i < len(ids); i++ { // insertion sort: tiny input, no import games
		for j := i; j > 0; j-- {
			a, b := byID[ids[j-1]], byID[ids[j]]
			outOfOrder := less(b, a)
			if order == "desc" {
				outOfOrder = less(a, b)
			}
			if !outOfOrder {
				break
			}
			ids[j-1], ids[j] = ids[j], ids[j-1]
		}
	}
	return ids
}

// linkRel returns the target of rel in the Link header, or "".
func linkRel(h http.Header, rel string) string {
	for _, part := range strings.Split(h.Get("Link"), ",") {
		part = strings.TrimSpace(part)
		if strings.HasSuffix(part, `rel="`+rel+`"`) {
			return part[strings.Index(part, "<")+1 : strings.Index(part, ">")]
		}
	}
	return ""
}

func TestListLinks(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 25})
	r := e.get("/characters?page=2&page_size=10&sort=name")
	if got, want := linkRel(r.header, "prev"), "/characters?sort=name&order=asc&page=1&page_size=10"; got != want {
		t.Errorf("prev = %q, want %q", got, want)
	}
	if got, want := linkRel(r.header, "next"), "/characters?sort=name&order=asc&page=3&page_size=10"; got != want {
		t.Errorf("next = %q, want %q", got, want)
	}
	r = e.get("/characters?page_size=10")
	if got := linkRel(r.header, "prev"); got != "" {
		t.Errorf("first page has prev %q", got)
	}
}

func TestListOutOfRange(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 5})
	for _, path := range []string{"/characters?page=2", "/characters?page=99999999999", "/characters?page=4&page_size=2&sort=name&order=desc"} {
		p := decodePage(t, e.get(path))
		if !*p.OutOfRange || *p.HasPrev || *p.HasNext || len(p.Results) != 0 || *p.TotalCount != 5 {
			t.Errorf("%s: %+v", path, p)
		}
	}

	empty := setup(t, options{})
	p := decodePage(t, empty.get("/characters"))
	if *p.OutOfRange || *p.TotalCount != 0 || *p.TotalPages != 0 || *p.HasNext || *p.HasPrev || len(p.Results) != 0 {
		t.Errorf("page 1 of an empty set: %+v", p)
	}
	p = decodePage(t, empty.get("/characters?page=2"))
	if !*p.OutOfRange || *p.HasPrev {
		t.Errorf("page 2 of an empty set: %+v", p)
	}
	if !strings.Contains(string(empty.get("/characters?page=2").body), `"results":[]`) {
		t.Error("results of an out-of-range page is not []")
	}
}

func TestInvalidParametersAre422NamingTheParameter(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	for _, tc := range []struct{ path, param string }{
		{"/characters?page=0", "page"},
		{"/characters?page=-1", "page"},
		{"/characters?page=abc", "page"},
		{"/characters?page=1.0", "page"},
		{"/characters?page=999999999999999999999999", "page"},
		{"/characters?page_size=0", "page_size"},
		{"/characters?page_size=101", "page_size"},
		{"/characters?page_size=ten", "page_size"},
		{"/characters?sort=foo", "sort"},
		{"/characters?sort=species", "sort"},
		{"/characters?order=up", "order"},
		{"/characters?page=1&page=2", "page"},
		{"/characters?page=%zz", "query"},
		{"/characters/abc", "id"},
		{"/characters/1.5", "id"},
		{"/characters/1e3", "id"},
	} {
		p := decodeProblem(t, e.get(tc.path), http.StatusUnprocessableEntity)
		if !strings.Contains(p.Detail, tc.param) || p.Param != tc.param {
			t.Errorf("%s: detail %q / param %q do not name %q", tc.path, p.Detail, p.Param, tc.param)
		}
		if p.Instance == "" {
			t.Errorf("%s: empty instance", tc.path)
		}
	}
	if e.store.lists.Load()+e.store.gets.Load() != 0 {
		t.Error("an invalid request reached the database")
	}
}

func TestGetCharacter(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	r := e.get("/characters/2")
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	var c map[string]any
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	if c["id"] != float64(2) || c["origin"] != "Earth (C-137)" || c["location"] != "Citadel of Ricks" {
		t.Errorf("character = %v", c)
	}
	for _, path := range []string{"/characters/4", "/characters/0", "/characters/99999999999999999999"} {
		decodeProblem(t, e.get(path), http.StatusNotFound)
	}
	// One rule for integers, as for page: decimal digits only.
	for _, path := range []string{"/characters/-5", "/characters/+1", "/characters/%201", "/characters/1e0"} {
		if p := decodeProblem(t, e.get(path), http.StatusUnprocessableEntity); p.Param != "id" {
			t.Errorf("%s: problem names %q, want id", path, p.Param)
		}
	}
	if r := e.get("/characters/02"); r.status != http.StatusOK {
		t.Errorf("/characters/02 = %d, want 200 like page=02", r.status)
	}
	// A cached 404 costs no second query.
	before := e.store.gets.Load()
	decodeProblem(t, e.get("/characters/4"), http.StatusNotFound)
	if e.store.gets.Load() != before {
		t.Error("a repeated 404 queried the database again")
	}
}

func TestUnknownRoutesMethodsAndBodies(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	decodeProblem(t, e.get("/nope"), http.StatusNotFound)
	decodeProblem(t, e.get("/characters/1/episodes"), http.StatusNotFound)
	decodeProblem(t, e.do(http.MethodPost, "/characters", nil), http.StatusMethodNotAllowed)
	decodeProblem(t, e.do(http.MethodDelete, "/characters/1", nil), http.StatusMethodNotAllowed)

	req, _ := http.NewRequest(http.MethodGet, e.base+"/characters", strings.NewReader(strings.Repeat("x", 1<<20)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	decodeProblem(t, response{resp.StatusCode, resp.Header, body}, http.StatusRequestEntityTooLarge)

	if r := e.do(http.MethodHead, "/characters", nil); r.status != http.StatusOK || len(r.body) != 0 {
		t.Errorf("HEAD = %d with %d body bytes", r.status, len(r.body))
	}
}

func TestETagAndConditionalGet(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	for _, path := range []string{"/characters?page_size=2", "/characters/1"} {
		r := e.get(path)
		tag := r.header.Get("ETag")
		if tag == "" {
			t.Fatalf("%s: no ETag", path)
		}
		if again := e.get(path).header.Get("ETag"); again != tag {
			t.Errorf("%s: ETag changed without a data change: %q then %q", path, tag, again)
		}
		for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
			nm := e.do(http.MethodGet, path, map[string]string{"If-None-Match": inm})
			if nm.status != http.StatusNotModified || len(nm.body) != 0 || nm.header.Get("ETag") != tag {
				t.Errorf("%s If-None-Match %s: status %d, %d bytes, ETag %q", path, inm, nm.status, len(nm.body), nm.header.Get("ETag"))
			}
		}
		if r := e.do(http.MethodGet, path, map[string]string{"If-None-Match": `"v999"`}); r.status != http.StatusOK {
			t.Errorf("%s: a stale tag got %d", path, r.status)
		}
	}
	before := e.get("/characters/1").header.Get("ETag")
	v := apitest.IngestSilently(t, e.dbURL, apitest.Change{}) // new version, same rows
	e.srv.OnNotify(strconv.FormatInt(v, 10))                  // what the listener does on NOTIFY
	after := e.get("/characters/1")
	if after.header.Get("ETag") == before {
		t.Error("ETag did not change with the data version")
	}
	if r := e.do(http.MethodGet, "/characters/1", map[string]string{"If-None-Match": before}); r.status != http.StatusOK {
		t.Errorf("old ETag after a new version: %d, want 200", r.status)
	}
}

func TestConcurrentMissesMakeOneQuery(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 30})
	e.store.delay = 50 * time.Millisecond // keep the fill open while the others arrive
	var wg sync.WaitGroup
	bodies := make([]string, 100)
	for i := range bodies {
		wg.Go(func() {
			r := e.get("/characters?page=2&page_size=7&sort=name")
			if r.status != http.StatusOK {
				t.Errorf("status %d", r.status)
			}
			bodies[i] = string(r.body)
		})
	}
	wg.Wait()
	if got, want := e.store.lists.Load(), int64(1); got != want {
		t.Errorf("database queries = %d, want %d", got, want)
	}
	for _, b := range bodies {
		if b != bodies[0] {
			t.Fatal("concurrent requests got different bodies")
		}
	}
}

func TestCacheBoundedUnderManyDistinctQueries(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3, maxEntries: 20})
	for i := 1; i <= 200; i++ {
		if r := e.get(fmt.Sprintf("/characters?page=%d", i)); r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
	}
	if got := e.cache.Len(); got > 20 {
		t.Errorf("cache holds %d entries, bound is 20", got)
	}
}

func TestDatabaseDownServesCachedPagesAnd503OnMisses(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 5, viaProxy: true})
	cached := e.get("/characters?page_size=2")
	if cached.status != http.StatusOK {
		t.Fatalf("warm-up: %d", cached.status)
	}
	e.proxy.Down()

	if r := e.get("/characters?page_size=2"); r.status != http.StatusOK || !bytes.Equal(r.body, cached.body) {
		t.Errorf("cached page while the database is down: %d %s", r.status, r.body)
	}
	miss := e.get("/characters?page_size=3")
	p := decodeProblem(t, miss, http.StatusServiceUnavailable)
	if miss.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if strings.Contains(string(miss.body), "dial") || strings.Contains(string(miss.body), "127.0.0.1") ||
		strings.Contains(p.Detail, "EOF") {
		t.Errorf("503 leaks internals: %s", miss.body)
	}
	if r := e.get("/readyz"); r.status != http.StatusOK {
		t.Errorf("readyz during an outage = %d, want 200", r.status)
	}
	var h map[string]any
	r := e.get("/healthcheck")
	json.Unmarshal(r.body, &h) //nolint:errcheck // checked through the fields
	if r.status != http.StatusServiceUnavailable || h["status"] != "degraded" || !isBool(h["db_ok"], false) {
		t.Errorf("healthcheck during an outage: %d %s", r.status, r.body)
	}

	e.proxy.Up()
	deadline := time.Now().Add(10 * time.Second)
	for e.get("/characters?page_size=3").status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("did not recover after the database returned")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 2})
	if r := e.get("/healthz"); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Errorf("healthz = %d %s", r.status, r.body)
	}

	var h map[string]any
	r := e.get("/healthcheck")
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || h["status"] != "ok" || !isBool(h["db_ok"], true) || h["character_count"] != float64(2) ||
		!isBool(h["listener_connected"], true) {
		t.Errorf("healthcheck = %d %s", r.status, r.body)
	}
	if age, ok := h["last_refresh_age"].(float64); !ok || age < 0 || age > 60 {
		t.Errorf("last_refresh_age = %v, want seconds since the seeding ingest", h["last_refresh_age"])
	}

	e.listener.connected.Store(false)
	r = e.get("/healthcheck")
	json.Unmarshal(r.body, &h) //nolint:errcheck // checked through the fields
	if r.status != http.StatusServiceUnavailable || h["status"] != "degraded" || !isBool(h["listener_connected"], false) {
		t.Errorf("healthcheck without listener = %d %s", r.status, r.body)
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.New(t)
	pool, err := postgres.OpenPool(context.Background(), dbURL, postgres.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	srv := httpapi.NewServer(httpapi.Config{}, httpapi.Deps{Store: postgres.NewStore(pool, nil)})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	status := func() int {
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got, want := status(), http.StatusServiceUnavailable; got != want {
		t.Errorf("before SetReady: %d, want %d", got, want)
	}
	srv.SetReady()
	if got, want := status(), http.StatusOK; got != want {
		t.Errorf("ready: %d, want %d", got, want)
	}
	srv.StartDraining()
	if got, want := status(), http.StatusServiceUnavailable; got != want {
		t.Errorf("draining: %d, want %d", got, want)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 2})
	e.get("/characters")
	e.get("/characters")
	e.get("/characters/1")
	e.get("/no/such/route/" + url.PathEscape("x"))
	e.cache.Flush()
	body := string(e.get("/metrics").body)
	for _, want := range []string{
		`rickmorty_http_requests_total{code="200",method="GET",route="/characters"} 2`,
		`rickmorty_http_requests_total{code="200",method="GET",route="/characters/:id"} 1`,
		`rickmorty_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`rickmorty_http_request_duration_seconds_bucket{route="/characters",le="+Inf"} 2`,
		`rickmorty_cache_hits_total 1`,
		`rickmorty_cache_misses_total 2`,
		`rickmorty_cache_evictions_total 0`,
		`rickmorty_cache_invalidations_total 1`,
		`rickmorty_db_query_duration_seconds_count{query="list"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "/no/such/route") {
		t.Error("a raw path became a label value")
	}
}

func TestNoInternalsInErrorBodies(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 1})
	for _, path := range []string{"/characters?page=abc", "/nope", "/characters/x"} {
		b := string(e.get(path).body)
		for _, leak := range []string{"goroutine", "pgx", "sql", "echo", ".go:"} {
			if strings.Contains(strings.ToLower(b), leak) {
				t.Errorf("%s: body mentions %q: %s", path, leak, b)
			}
		}
	}
}

// isBool reports whether v, a decoded JSON value, is the boolean want: a
// missing field or one of another type is neither true nor false.
func isBool(v any, want bool) bool {
	b, ok := v.(bool)
	return ok && b == want
}
