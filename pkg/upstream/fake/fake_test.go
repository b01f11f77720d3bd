package fake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// start serves a fake on loopback and returns it with its /api base URL.
func start(t *testing.T, chars []upstream.Character, opts ...fake.Option) (*fake.Server, string) {
	t.Helper()
	s := fake.New(chars, opts...)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL + "/api"
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

func get(t *testing.T, url string) response { t.Helper(); return do(t, http.MethodGet, url, "") }

// getPage fetches a page that must be served with 200.
func getPage(t *testing.T, url string) upstream.Page {
	t.Helper()
	res := get(t, url)
	if res.status != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", url, res.status, res.body)
	}
	var p upstream.Page
	if err := json.Unmarshal(res.body, &p); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return p
}

// crawl follows next links from page 1 and returns every result.
func crawl(t *testing.T, base, query string) []upstream.Character {
	t.Helper()
	var all []upstream.Character
	next := base + "/character?page=1" + query
	for next != "" {
		p := getPage(t, next)
		all = append(all, p.Results...)
		next = ""
		if p.Info.Next != nil {
			next = *p.Info.Next
		}
	}
	return all
}

func wantError(t *testing.T, res response, status int, msg string) {
	t.Helper()
	if got, want := res.status, status; got != want {
		t.Errorf("status = %d, want %d (body %s)", got, want, res.body)
	}
	if got, want := res.header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(res.body, &e); err != nil {
		t.Fatalf("error body %s: %v", res.body, err)
	}
	if got, want := e.Error, msg; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func TestPageShape(t *testing.T) {
	data := fake.Dataset()
	_, base := start(t, data)
	n := len(data)
	pages := (n + 19) / 20

	res := get(t, base+"/character?page=1")
	if got, want := res.header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	first := getPage(t, base+"/character?page=1")
	if got, want := first.Info.Count, n; got != want {
		t.Errorf("count = %d, want %d", got, want)
	}
	if got, want := first.Info.Pages, pages; got != want {
		t.Errorf("pages = %d, want %d", got, want)
	}
	if got, want := str(first.Info.Next), base+"/character?page=2"; got != want {
		t.Errorf("next = %s, want %s", got, want)
	}
	if got, want := str(first.Info.Prev), "<null>"; got != want {
		t.Errorf("prev = %s, want %s", got, want)
	}
	if got, want := len(first.Results), upstream.PageSize; got != want {
		t.Fatalf("len(results) = %d, want %d", got, want)
	}
	for i, c := range first.Results {
		if got, want := c.ID, i+1; got != want {
			t.Errorf("results[%d].id = %d, want %d", i, got, want)
		}
	}

	second := getPage(t, base+"/character?page=2")
	if got, want := str(second.Info.Prev), base+"/character?page=1"; got != want {
		t.Errorf("page 2 prev = %s, want %s", got, want)
	}
	if got, want := second.Results[0].ID, 21; got != want {
		t.Errorf("page 2 starts at id %d, want %d", got, want)
	}

	last := getPage(t, base+"/character?page="+itoa(pages))
	if got, want := str(last.Info.Next), "<null>"; got != want {
		t.Errorf("last next = %s, want %s", got, want)
	}
	if got, want := len(last.Results), n-(pages-1)*20; got != want {
		t.Errorf("last page has %d results, want %d", got, want)
	}
	if got, want := last.Results[len(last.Results)-1].ID, n; got != want {
		t.Errorf("last id = %d, want %d", got, want)
	}

	if got, want := len(crawl(t, base, "")), n; got != want {
		t.Errorf("crawl found %d characters, want %d", got, want)
	}
}

func TestCharactersAreServedExactly(t *testing.T) {
	data := fake.Dataset()
	_, base := start(t, data)
	// Raw bytes, not a round trip through Go structs: HTML-significant and
	// non-ASCII characters must arrive as the upstream writes them.
	res := get(t, base+"/character?page=11")
	for _, want := range []string{`"name":"Ab & <Co>"`, `"episode":[`} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("page 11 does not contain %s", want)
		}
	}
	got := crawl(t, base, "")
	for i := range data {
		if g, w := mustJSON(t, got[i]), mustJSON(t, data[i]); g != w {
			t.Fatalf("character %d served as %s, want %s", data[i].ID, g, w)
		}
	}
}

func TestLinksCarryFiltersAndPublicBase(t *testing.T) {
	_, base := start(t, fake.Dataset(), fake.WithPublicBase("https://upstream.example/api/"))
	p := getPage(t, base+"/character?page=2&gender=female&species=human&name=a")
	if got, want := str(p.Info.Next), "https://upstream.example/api/character?page=3&name=a&species=human&gender=female"; got != want {
		t.Errorf("next = %s, want %s", got, want)
	}
	if got, want := str(p.Info.Prev), "https://upstream.example/api/character?page=1&name=a&species=human&gender=female"; got != want {
		t.Errorf("prev = %s, want %s", got, want)
	}

	root := get(t, base)
	if got, want := string(root.body), `{"characters":"https://upstream.example/api/character","locations":"https://upstream.example/api/location","episodes":"https://upstream.example/api/episode"}`+"\n"; got != want {
		t.Errorf("root = %s, want %s", got, want)
	}

	// Values are query-escaped, so following the link repeats the same query.
	q := getPage(t, base+"/character?name=Tally%20Fenwick")
	if got, want := q.Info.Count, 5; got != want {
		t.Errorf("name=Tally Fenwick count = %d, want %d", got, want)
	}
	if got, want := str(q.Info.Next), "<null>"; got != want {
		t.Errorf("single-page next = %s, want %s", got, want)
	}
}

func TestRootDerivesBaseFromHost(t *testing.T) {
	_, base := start(t, fake.Dataset())
	for _, path := range []string{"", "/"} {
		res := get(t, base+path)
		var root map[string]string
		if err := json.Unmarshal(res.body, &root); err != nil {
			t.Fatal(err)
		}
		if got, want := root["characters"], base+"/character"; got != want {
			t.Errorf("GET %q: characters = %s, want %s", path, got, want)
		}
	}
}

func TestPageNormalisation(t *testing.T) {
	s, base := start(t, fake.Dataset())
	for _, page := range []string{"", "page=", "page=0", "page=-1", "page=abc", "page=1.5"} {
		p := getPage(t, base+"/character?"+page)
		if got, want := p.Results[0].ID, 1; got != want {
			t.Errorf("?%s: first id = %d, want %d", page, got, want)
		}
		if got, want := str(p.Info.Next), base+"/character?page=2"; got != want {
			t.Errorf("?%s: next = %s, want %s", page, got, want)
		}
	}
	if got, want := s.PageRequests(1), int64(6); got != want {
		t.Errorf("PageRequests(1) = %d, want %d", got, want)
	}
}

func TestPastTheEnd(t *testing.T) {
	data := fake.Dataset()
	_, base := start(t, data)
	wantError(t, get(t, base+"/character?page="+itoa((len(data)+19)/20+1)), http.StatusNotFound, "There is nothing here")
	wantError(t, get(t, base+"/character?page=9999"), http.StatusNotFound, "There is nothing here")
	// A filter matching nothing has zero pages, so even page 1 is past the end.
	wantError(t, get(t, base+"/character?name=nobody-has-this-name"), http.StatusNotFound, "There is nothing here")
}

func TestFilters(t *testing.T) {
	data := fake.Dataset()
	_, base := start(t, data)

	names := func(query string) map[string]bool {
		out := map[string]bool{}
		for _, c := range crawl(t, base, query) {
			out[c.Name] = true
		}
		return out
	}
	species := map[string]int{}
	for _, c := range crawl(t, base, "&species=human") {
		species[c.Species]++
		if !strings.Contains(strings.ToLower(c.Species), "human") {
			t.Errorf("species=human returned species %q", c.Species)
		}
	}
	for _, s := range []string{"Human", "Humanoid", "human", "Human "} {
		if species[s] == 0 {
			t.Errorf("species=human did not return species %q (got %v)", s, species)
		}
	}

	genders := map[string]int{}
	for _, c := range crawl(t, base, "&gender=male") {
		genders[c.Gender]++
	}
	if got, want := len(genders), 1; got != want || genders["Male"] == 0 {
		t.Errorf("gender=male returned %v, want only Male", genders)
	}
	// Unanchored otherwise: "ale" is inside both Male and Female.
	genders = map[string]int{}
	for _, c := range crawl(t, base, "&gender=ALE") {
		genders[c.Gender]++
	}
	if genders["Male"] == 0 || genders["Female"] == 0 {
		t.Errorf("gender=ALE returned %v, want Male and Female", genders)
	}

	if got := names("&name=X.Y"); !got["Dr. X.Y. Zed"] || got["XaY Zed"] {
		t.Errorf("name=X.Y returned %v: punctuation must match literally", got)
	}
	if got := names("&name=" + url.QueryEscape("(Clone)")); !got["Mr. Snorble (Clone)"] {
		t.Errorf("name=(Clone) returned %v", got)
	}
	if got := names("&name=" + url.QueryEscape("ZOË")); !got["Zoë Ångström"] {
		t.Errorf("name=ZOË returned %v: matching is case-insensitive beyond ASCII", got)
	}

	// Filters combine; the result equals the same substring test done locally.
	got := crawl(t, base, "&status=alive&species=human&type=")
	want := 0
	for _, c := range data {
		if strings.Contains(strings.ToLower(c.Status), "alive") && strings.Contains(strings.ToLower(c.Species), "human") {
			want++
		}
	}
	if len(got) != want {
		t.Errorf("status=alive&species=human returned %d, want %d", len(got), want)
	}
}

func TestUnknownPaths(t *testing.T) {
	_, base := start(t, fake.Dataset())
	root := strings.TrimSuffix(base, "/api")
	for _, res := range []response{
		get(t, base+"/nope"),
		get(t, base+"/characters"),
		get(t, root+"/"),
		get(t, root+"/character?page=1"),
		do(t, http.MethodPost, base+"/character", "{}"),
	} {
		wantError(t, res, http.StatusNotFound, "There is nothing here.")
	}
}

func TestCharacterByID(t *testing.T) {
	_, base := start(t, fake.Dataset())
	var c upstream.Character
	if err := json.Unmarshal(get(t, base+"/character/1").body, &c); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Name, "Pell Harrow"; got != want {
		t.Errorf("character 1 name = %q, want %q", got, want)
	}
	wantError(t, get(t, base+"/character/99999"), http.StatusNotFound, "Character not found")
	wantError(t, get(t, base+"/character/abc"), http.StatusNotFound, "Character not found")

	var many []upstream.Character
	if err := json.Unmarshal(get(t, base+"/character/3,1,99999,1").body, &many); err != nil {
		t.Fatal(err)
	}
	if got, want := len(many), 2; got != want {
		t.Fatalf("got %d characters, want %d", got, want)
	}
	if many[0].ID != 1 || many[1].ID != 3 {
		t.Errorf("ids = %d,%d, want 1,3", many[0].ID, many[1].ID)
	}
	if got, want := string(get(t, base+"/character/99998,99999").body), "[]\n"; got != want {
		t.Errorf("no match = %q, want %q", got, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
