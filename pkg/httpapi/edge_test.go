package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/httpapi"
	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
)

// decode undoes a Content-Encoding.
func decode(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected Content-Encoding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	return out
}

func TestAnswersAreCompressedAsTheClientAccepts(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 60})
	const page = "/characters?page_size=50"
	plain := e.raw(http.MethodGet, page, nil)
	if plain.status != 200 || plain.header.Get("Content-Encoding") != "" || len(plain.body) < 10_000 {
		t.Fatalf("identity: status %d, encoding %q, %d bytes", plain.status, plain.header.Get("Content-Encoding"), len(plain.body))
	}
	version := strings.Trim(plain.header.Get("ETag"), `"`)

	for _, tc := range []struct{ accept, want string }{
		{"", ""},
		{"gzip", "gzip"},
		{"br", "br"},
		{"zstd", "zstd"},
		{"gzip, deflate, br, zstd", "br"}, // browsers: ties go to br
		{"deflate, gzip", "gzip"},
		{"GZIP", "gzip"},
		{"gzip;q=0.5, zstd;q=0.8", "zstd"},
		{"br;q=0, gzip", "gzip"},
		{"br;q=0.1, gzip;q=0.2, identity;q=0.3", ""},
		{"*", "br"},
		{"*;q=0.5, gzip;q=0", "br"},
		{"identity", ""},
		{"compress, deflate", ""},
		{"identity;q=0", ""}, // nothing acceptable on offer: identity anyway, never a 406
		{"gzip;q=1.5", ""},   // malformed q-values refuse the coding
		{" br ; q=1.0 ", "br"},
	} {
		r := e.raw(http.MethodGet, page, map[string]string{"Accept-Encoding": tc.accept})
		if got := r.header.Get("Content-Encoding"); r.status != 200 || got != tc.want {
			t.Errorf("Accept-Encoding %q: status %d, Content-Encoding %q, want %q", tc.accept, r.status, got, tc.want)
			continue
		}
		if got := decode(t, tc.want, r.body); !bytes.Equal(got, plain.body) {
			t.Errorf("Accept-Encoding %q: the decoded body differs from the identity body", tc.accept)
		}
		if got, want := r.header.Get("Content-Length"), strconv.Itoa(len(r.body)); got != want {
			t.Errorf("Accept-Encoding %q: Content-Length %s for %s bytes", tc.accept, got, want)
		}
		if got, want := r.header.Get("Vary"), "Accept-Encoding"; got != want {
			t.Errorf("Accept-Encoding %q: Vary %q, want %q", tc.accept, got, want)
		}
		wantTag := `"` + version + `"`
		if tc.want != "" {
			wantTag = `"` + version + "-" + tc.want + `"`
			if len(r.body) > len(plain.body)/3 {
				t.Errorf("%s: %d bytes of %d, hardly compressed", tc.want, len(r.body), len(plain.body))
			}
		}
		if got := r.header.Get("ETag"); got != wantTag {
			t.Errorf("Accept-Encoding %q: ETag %s, want %s", tc.accept, got, wantTag)
		}
	}
	// Every coding was served from the one cached fill.
	if got := e.store.lists.Load(); got != 1 {
		t.Errorf("store lists = %d, want 1: each coding is made once, when the entry is stored", got)
	}
	// HEAD: the same headers, no body.
	h := e.raw(http.MethodHead, page, map[string]string{"Accept-Encoding": "gzip"})
	if h.status != 200 || h.header.Get("Content-Encoding") != "gzip" || len(h.body) != 0 || h.header.Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d, encoding %q, %d body bytes, length %q", h.status, h.header.Get("Content-Encoding"), len(h.body), h.header.Get("Content-Length"))
	}
}

func TestSmallAnswersAreNotCompressed(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	for _, path := range []string{"/characters/1", "/characters?page_size=1"} {
		r := e.raw(http.MethodGet, path, map[string]string{"Accept-Encoding": "br, gzip, zstd"})
		if r.status != 200 || r.header.Get("Content-Encoding") != "" || len(r.body) >= 1024 {
			t.Errorf("%s: status %d, Content-Encoding %q, %d bytes; want a plain answer under 1 KiB",
				path, r.status, r.header.Get("Content-Encoding"), len(r.body))
		}
		if r.header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: Vary %q", path, r.header.Get("Vary"))
		}
	}
	// The threshold is a setting: 1 compresses everything worth it.
	e = setup(t, options{seed: 3, cfg: httpapi.Config{CompressMinBytes: 1}})
	if r := e.raw(http.MethodGet, "/characters/1", map[string]string{"Accept-Encoding": "gzip"}); r.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("COMPRESSION_MIN_BYTES=1: item answered with Content-Encoding %q, want gzip", r.header.Get("Content-Encoding"))
	}
}

func TestConditionalGetPerRepresentation(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 60})
	const page = "/characters?page_size=50"
	tagOf := func(accept string) string {
		return e.raw(http.MethodGet, page, map[string]string{"Accept-Encoding": accept}).header.Get("ETag")
	}
	plain, gz, br := tagOf(""), tagOf("gzip"), tagOf("br")
	if plain == gz || gz == br || plain == br {
		t.Fatalf("representations share an ETag: identity %s, gzip %s, br %s", plain, gz, br)
	}
	for _, tc := range []struct {
		accept, inm string
		want        int
		wantTag     string
	}{
		{"gzip", gz, 304, gz},
		{"", plain, 304, plain},
		{"br", br, 304, br},
		{"br", gz, 200, br},  // the client holds other bytes than it would get
		{"", gz, 200, plain}, // likewise
		{"br", gz + ", " + br, 304, br},
		{"gzip", "W/" + gz, 304, gz}, // If-None-Match compares weakly
		{"gzip", "*", 304, gz},
	} {
		r := e.raw(http.MethodGet, page, map[string]string{"Accept-Encoding": tc.accept, "If-None-Match": tc.inm})
		if r.status != tc.want || r.header.Get("ETag") != tc.wantTag {
			t.Errorf("Accept-Encoding %q, If-None-Match %s: status %d ETag %s, want %d %s", tc.accept, tc.inm, r.status, r.header.Get("ETag"), tc.want, tc.wantTag)
		}
		if tc.want == 304 && (len(r.body) != 0 || r.header.Get("Vary") != "Accept-Encoding" || r.header.Get("Content-Encoding") != "") {
			t.Errorf("304 for %q: body %d bytes, Vary %q, Content-Encoding %q", tc.accept, len(r.body), r.header.Get("Vary"), r.header.Get("Content-Encoding"))
		}
	}
}

func TestLastModifiedAndIfModifiedSince(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 5})
	var committed time.Time
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SELECT updated_at FROM data_version").Scan(&committed); err != nil {
		t.Fatal(err)
	}
	want := committed.UTC().Truncate(time.Second).Format(http.TimeFormat)
	for _, path := range []string{"/characters", "/characters/2"} {
		r := e.raw(http.MethodGet, path, nil)
		lm := r.header.Get("Last-Modified")
		if lm != want {
			t.Fatalf("%s: Last-Modified %q, want %q (the data version's commit)", path, lm, want)
		}
		at, _ := http.ParseTime(lm)
		for _, tc := range []struct {
			name   string
			header map[string]string
			want   int
		}{
			{"same date", map[string]string{"If-Modified-Since": lm}, 304},
			{"later date", map[string]string{"If-Modified-Since": past(at.Add(time.Second)).Format(http.TimeFormat)}, 304},
			{"earlier date", map[string]string{"If-Modified-Since": at.Add(-time.Second).Format(http.TimeFormat)}, 200},
			{"not a date", map[string]string{"If-Modified-Since": "yesterday"}, 200},
			{"a date in the future", map[string]string{"If-Modified-Since": time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat)}, 200},
			{"If-None-Match wins when it does not match", map[string]string{"If-Modified-Since": lm, "If-None-Match": `"v0"`}, 200},
			{"If-None-Match wins when it matches", map[string]string{"If-Modified-Since": at.Add(-time.Hour).Format(http.TimeFormat), "If-None-Match": r.header.Get("ETag")}, 304},
		} {
			got := e.raw(http.MethodGet, path, tc.header)
			if got.status != tc.want {
				t.Errorf("%s, %s: status %d, want %d", path, tc.name, got.status, tc.want)
			}
			if got.status == 304 && got.header.Get("Last-Modified") != lm {
				t.Errorf("%s, %s: 304 without the Last-Modified", path, tc.name)
			}
		}
	}

	// Header lines: If-None-Match's combine into one list; two
	// If-Modified-Since are no valid date.
	lists := httptest.NewRequest(http.MethodGet, e.base+"/characters", nil)
	lists.RequestURI = ""
	lists.Header.Add("If-None-Match", `"other"`)
	lists.Header.Add("If-None-Match", e.raw(http.MethodGet, "/characters", nil).header.Get("ETag"))
	if got := statusOf(t, lists); got != http.StatusNotModified {
		t.Errorf("If-None-Match in two lines, the second matching: %d, want 304", got)
	}
	twice := httptest.NewRequest(http.MethodGet, e.base+"/characters", nil)
	twice.RequestURI = ""
	twice.Header.Add("If-Modified-Since", want)
	twice.Header.Add("If-Modified-Since", "garbage")
	if got := statusOf(t, twice); got != http.StatusOK {
		t.Errorf("two If-Modified-Since lines: %d, want 200 (ignored)", got)
	}

	// A new version is newer than any date the client holds.
	time.Sleep(1100 * time.Millisecond) // HTTP dates have whole seconds
	v2 := apitest.Ingest(t, e.dbURL, apitest.Change{Delete: []int{5}})
	e.cache.SetVersion(v2)
	r := e.raw(http.MethodGet, "/characters", map[string]string{"If-Modified-Since": want})
	if r.status != 200 || r.header.Get("Last-Modified") == want {
		t.Errorf("after an ingest: status %d, Last-Modified %q; want 200 with a later date than %q", r.status, r.header.Get("Last-Modified"), want)
	}
}

func TestCacheControlSettings(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	if got := e.raw(http.MethodGet, "/characters", nil).header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("default Cache-Control %q, want no-cache", got)
	}
	e = setup(t, options{seed: 3, cfg: httpapi.Config{CacheControl: httpapi.CacheControl{
		MaxAge: 10 * time.Second, SharedMaxAge: 5 * time.Minute, StaleWhileRevalidate: 30 * time.Second, StaleIfError: 24 * time.Hour,
	}}})
	const want = "public, max-age=10, s-maxage=300, stale-while-revalidate=30, stale-if-error=86400"
	for _, path := range []string{"/characters", "/characters/1"} {
		r := e.raw(http.MethodGet, path, nil)
		if got := r.header.Get("Cache-Control"); got != want {
			t.Errorf("%s: Cache-Control %q, want %q", path, got, want)
		}
		if r304 := e.raw(http.MethodGet, path, map[string]string{"If-None-Match": r.header.Get("ETag")}); r304.status != 304 || r304.header.Get("Cache-Control") != want {
			t.Errorf("%s 304: status %d, Cache-Control %q", path, r304.status, r304.header.Get("Cache-Control"))
		}
	}
	// Errors are never stored by anyone.
	for _, path := range []string{"/characters/99", "/characters?page=0", "/characters?gender=x", "/nope"} {
		if got := e.raw(http.MethodGet, path, nil).header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, got)
		}
	}
	// Only the set directives appear; max-age is always there.
	for cc, want := range map[httpapi.CacheControl]string{
		{}:                                  "no-cache",
		{SharedMaxAge: time.Minute}:         "public, max-age=0, s-maxage=60",
		{MaxAge: 1500 * time.Millisecond}:   "public, max-age=1",
		{StaleIfError: time.Hour}:           "public, max-age=0, stale-if-error=3600",
		{StaleWhileRevalidate: time.Second}: "public, max-age=0, stale-while-revalidate=1",
	} {
		if got := cc.Header(); got != want {
			t.Errorf("%+v: %q, want %q", cc, got, want)
		}
	}
}

func TestListFiltersOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	all := apitest.Characters(30)
	for i := range all {
		switch i % 3 {
		case 0:
			all[i].Name, all[i].Gender = "Rick "+strconv.Itoa(i), "Male"
		case 1:
			all[i].Name, all[i].Gender, all[i].LocationName = "Beth "+strconv.Itoa(i), "Female", "Earth (Replacement Dimension)"
		default:
			all[i].Name, all[i].Gender, all[i].OriginName = "50% Morty_"+strconv.Itoa(i), "unknown", "Earth (Evil Morty Dimension)"
		}
	}
	v := apitest.Ingest(t, e.dbURL, apitest.Change{Upsert: all})
	e.cache.SetVersion(v)

	count := func(query string) int {
		t.Helper()
		p := decodePage(t, e.get("/characters?"+query))
		return *p.TotalCount
	}
	// The reference: case-insensitive substrings (ASCII here), AND-ed.
	has := func(field, sub string) bool { return strings.Contains(strings.ToLower(field), strings.ToLower(sub)) }
	for _, f := range []character.Filter{
		{}, {Name: "rick"}, {Name: "RICK 1"}, {Name: "0% mor"}, {Name: "rty_"}, {Name: "morty_2"}, {Name: "nobody"},
		{Gender: "female"}, {Gender: "MALE"}, {Gender: "unknown"}, {Gender: "genderless"},
		{Origin: "evil"}, {Location: "replacement"}, {Location: "replacement", Name: "bet"}, {Location: "replacement", Gender: "male"},
	} {
		want := 0
		for _, c := range all {
			if has(c.Name, f.Name) && has(c.OriginName, f.Origin) && has(c.LocationName, f.Location) &&
				(f.Gender == "" || strings.EqualFold(c.Gender, f.Gender)) {
				want++
			}
		}
		q := url.Values{}
		for k, v := range map[string]string{"name": f.Name, "origin": f.Origin, "location": f.Location, "gender": f.Gender} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if got := count(q.Encode()); got != want {
			t.Errorf("%q: total_count %d, want %d", q.Encode(), got, want)
		}
		if f.Name == "0% mor" && want != 10 {
			t.Errorf(`the cast has %d names with "0%% mor", want 10`, want)
		}
	}

	// Paging, sorting and Link keep the filter.
	r := e.get("/characters?gender=Female&page_size=3&sort=name&order=desc&name=beth")
	p := decodePage(t, r)
	if *p.TotalCount != 10 || *p.TotalPages != 4 || len(p.Results) != 3 {
		t.Fatalf("filtered page: total %d pages %d results %d", *p.TotalCount, *p.TotalPages, len(p.Results))
	}
	next := linkRel(r.header, "next")
	u, err := url.Parse(next)
	if err != nil || u.Query().Get("name") != "beth" || u.Query().Get("gender") != "female" || u.Query().Get("page") != "2" {
		t.Fatalf("next link %q does not keep the filters", next)
	}
	seen := map[any]bool{}
	for link := next; link != ""; {
		r := e.get(link)
		for _, c := range decodePage(t, r).Results {
			if c["gender"] != "Female" || !strings.HasPrefix(c["name"].(string), "Beth") || seen[c["id"]] {
				t.Errorf("page %s: %v", link, c)
			}
			seen[c["id"]] = true
		}
		link = linkRel(r.header, "next")
	}
	if len(seen) != 7 {
		t.Errorf("walking next links after page 1 found %d characters, want 7", len(seen))
	}

	// Filters are part of the cache key: two filters, two answers.
	a, b := e.get("/characters?name=rick"), e.get("/characters?name=beth")
	if bytes.Equal(a.body, b.body) {
		t.Error("name=rick and name=beth share an answer")
	}

	// Bad values are 422 problems naming the parameter.
	for query, param := range map[string]string{
		"gender=robot": "gender",
		"name=" + strings.Repeat("x", character.MaxFilterLength+1): "name",
		"origin=a%00b":              "origin",
		"location=%ff":              "location",
		"name=abc&name=bcd":         "name",
		"name=ri":                   "name",
		"gender=male&gender=female": "gender",
	} {
		pr := decodeProblem(t, e.get("/characters?"+query), http.StatusUnprocessableEntity)
		if pr.Param != param {
			t.Errorf("%.40s: problem names %q, want %q", query, pr.Param, param)
		}
	}
	// Unknown parameters are still ignored.
	if got := count("species=robot&status=dead"); got != 30 {
		t.Errorf("unknown parameters filtered: total %d", got)
	}
	var body map[string]any
	if err := json.Unmarshal(e.get("/characters?name=zzz").body, &body); err != nil || body["total_count"] != float64(0) {
		t.Errorf("no match: %v %v", body, err)
	}
}

// With the cache off each answer is made for its request alone: only the
// coding it gets is compressed, and it still gets it.
func TestUncachedAnswersAreCompressedToo(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 60, cacheTTL: -1})
	plain := e.raw(http.MethodGet, "/characters?page_size=50", nil)
	for _, coding := range []string{"", "br", "zstd", "gzip"} {
		r := e.raw(http.MethodGet, "/characters?page_size=50", map[string]string{"Accept-Encoding": coding})
		if got := r.header.Get("Content-Encoding"); got != coding || !bytes.Equal(decode(t, coding, r.body), plain.body) {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q (%d bytes)", coding, got, len(r.body))
		}
	}
	if got := e.store.lists.Load(); got != 5 {
		t.Errorf("store lists = %d, want 5 (no cache)", got)
	}
}

// past waits, if need be, until t is no longer in the future, and returns
// it: a date ahead of the server's clock is ignored.
func past(t time.Time) time.Time {
	time.Sleep(time.Until(t) + 10*time.Millisecond)
	return t
}

// The contract, which /docs loads on every visit, comes gzipped to clients
// that accept it and with an ETag to revalidate.
func TestOpenAPIDocumentIsCompressedAndRevalidated(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	plain := e.raw(http.MethodGet, "/openapi.json", nil)
	gz := e.raw(http.MethodGet, "/openapi.json", map[string]string{"Accept-Encoding": "gzip, br"})
	if gz.header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decode(t, "gzip", gz.body), plain.body) || len(gz.body)*3 > len(plain.body) {
		t.Errorf("gzip: Content-Encoding %q, %d bytes of %d", gz.header.Get("Content-Encoding"), len(gz.body), len(plain.body))
	}
	for _, r := range []response{plain, gz} {
		if r.header.Get("Cache-Control") != "no-cache" || r.header.Get("ETag") == "" {
			t.Errorf("Cache-Control %q, ETag %q", r.header.Get("Cache-Control"), r.header.Get("ETag"))
		}
	}
	if plain.header.Get("ETag") == gz.header.Get("ETag") {
		t.Error("the plain and the gzipped document share an ETag")
	}
	if r := e.raw(http.MethodGet, "/openapi.json", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gz.header.Get("ETag")}); r.status != 304 {
		t.Errorf("revalidation: %d, want 304", r.status)
	}
}

func TestDocsWithASlashRedirects(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r := e.send(noFollow, http.MethodGet, "/docs/", nil)
	if r.status != http.StatusPermanentRedirect || r.header.Get("Location") != "/docs" {
		t.Errorf("GET /docs/: %d to %q, want 308 to /docs", r.status, r.header.Get("Location"))
	}
	if r := e.get("/docs/"); r.status != 200 || !bytes.Contains(r.body, []byte("swagger-ui")) {
		t.Errorf("following it: %d", r.status)
	}
}

// statusOf sends req as it is (header lines included) and returns the status.
func statusOf(t *testing.T, req *http.Request) int {
	t.Helper()
	r, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}
