package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// TestListFilters: name, origin and location match case-insensitive
// substrings, gender one of four values in any case; they combine with each
// other, with sorting and with paging, and total_count and the Link header
// follow them. Checked against the fake upstream's data, on every replica.
func TestListFilters(t *testing.T) {
	_, want := sys.baseline(t)
	if len(want) < 10 {
		t.Fatalf("the curated set has %d characters; the filters need more to narrow", len(want))
	}
	// Filters taken from the data itself, in a case the data does not use.
	// A filter must hold 3 letters or digits in a row: the longest word's
	// middle part, upper-cased.
	mid := func(s string) string {
		var longest string
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			if len([]rune(w)) > len([]rune(longest)) {
				longest = w
			}
		}
		r := []rune(longest)
		if len(r) < 3 {
			t.Fatalf("%q has no word of 3 letters to filter by", s)
		}
		return strings.ToUpper(string(r[(len(r)-3)/2 : (len(r)-3)/2+3]))
	}
	first, other := want[0], want[len(want)/2]
	filters := []url.Values{
		{"name": {mid(first.Name)}},
		{"origin": {strings.ToLower(other.Origin.Name)}},
		{"location": {mid(other.Location.Name)}},
		{"gender": {strings.ToUpper(first.Gender)}},
		{"name": {"ick"}, "gender": {strings.ToLower(other.Gender)}, "sort": {"name"}, "order": {"desc"}},
		{"origin": {"earth ("}, "location": {mid(first.Location.Name)}, "sort": {"created"}},
		{"name": {"no character is called this"}},
	}
	for _, f := range filters {
		var match []fakeCharacter
		for _, c := range want {
			if contains(c.Name, f.Get("name")) && contains(c.Origin.Name, f.Get("origin")) &&
				contains(c.Location.Name, f.Get("location")) && (f.Get("gender") == "" || strings.EqualFold(c.Gender, f.Get("gender"))) {
				match = append(match, c)
			}
		}
		sort, order := f.Get("sort"), f.Get("order")
		if sort == "" {
			sort = "id"
		}
		if order == "" {
			order = "asc"
		}
		wantIDs := ids(sorted(t, match, sort, order))
		for _, api := range sys.apis {
			q := url.Values{}
			for k, v := range f {
				q[k] = v
			}
			q.Set("page_size", "3")
			var got []int
			next := api + "/characters?" + q.Encode()
			for pages := 0; next != ""; pages++ {
				if pages > 1000 {
					t.Fatalf("%s: the next links loop", next)
				}
				var p apiPage
				r := sys.getJSON(t, next, &p)
				if p.TotalCount != len(match) {
					t.Errorf("GET %s: total_count %d, want %d", next, p.TotalCount, len(match))
				}
				if wantPages := (len(match) + 2) / 3; p.TotalPages != wantPages {
					t.Errorf("GET %s: total_pages %d, want %d", next, p.TotalPages, wantPages)
				}
				for _, c := range p.Results {
					got = append(got, c.ID)
				}
				l, err := links(r.header, api)
				if err != nil {
					t.Fatalf("GET %s: %v", next, err)
				}
				next = l["next"]
				for rel, link := range l {
					lu, err := url.Parse(link)
					if err != nil {
						t.Fatalf("%s link %q: %v", rel, link, err)
					}
					for k := range f {
						if got, want := strings.ToLower(lu.Query().Get(k)), strings.ToLower(f.Get(k)); got != want {
							t.Errorf("GET %s: %s link %q has %s=%q, want %q", next, rel, link, k, got, want)
						}
					}
				}
			}
			if !slices.Equal(got, wantIDs) {
				t.Errorf("%s?%s: ids\n got %v\nwant %v", api, q.Encode(), got, wantIDs)
			}
		}
	}
}

func contains(field, sub string) bool {
	return strings.Contains(strings.ToLower(field), strings.ToLower(sub))
}

func ids(chars []fakeCharacter) []int {
	out := []int{}
	for _, c := range chars {
		out = append(out, c.ID)
	}
	return out
}

// TestCompressedAnswers: an answer of a page of 100 comes in the coding the
// client accepts (br, zstd, gzip, or none), decodes to the same bytes, says
// Vary: Accept-Encoding, and has an ETag of its own that gets a 304 for
// that coding only. Small answers are not compressed.
func TestCompressedAnswers(t *testing.T) {
	sys.baseline(t)
	for _, api := range sys.apis {
		page := api + "/characters?page_size=100"
		plain := sys.get(t, page)
		if plain.status != http.StatusOK || plain.header.Get("Content-Encoding") != "" {
			t.Fatalf("GET %s: %s, Content-Encoding %q", page, plain, plain.header.Get("Content-Encoding"))
		}
		tags := map[string]string{"": plain.header.Get("ETag")}
		for _, coding := range []string{"br", "zstd", "gzip"} {
			r := sys.get(t, page, "Accept-Encoding", coding)
			if got := r.header.Get("Content-Encoding"); r.status != http.StatusOK || got != coding {
				t.Errorf("GET %s, Accept-Encoding %s: %d, Content-Encoding %q", page, coding, r.status, got)
				continue
			}
			if body := decodeBody(t, coding, r.body); !bytes.Equal(body, plain.body) {
				t.Errorf("GET %s in %s: decodes to other bytes than the plain answer", page, coding)
			}
			if len(r.body) >= len(plain.body)/2 {
				t.Errorf("GET %s in %s: %d bytes of %d", page, coding, len(r.body), len(plain.body))
			}
			if got := strings.Join(r.header.Values("Vary"), ", "); !strings.Contains(got, "Accept-Encoding") {
				t.Errorf("GET %s in %s: Vary %q", page, coding, got)
			}
			tags[coding] = r.header.Get("ETag")
		}
		seen := map[string]bool{}
		for coding, tag := range tags {
			if seen[tag] {
				t.Errorf("GET %s: two codings share the ETag %s", page, tag)
			}
			seen[tag] = true
			if r := sys.get(t, page, "Accept-Encoding", coding, "If-None-Match", tag); r.status != http.StatusNotModified {
				t.Errorf("GET %s in %q with its own ETag: %d, want 304", page, coding, r.status)
			}
		}
		if r := sys.get(t, page, "Accept-Encoding", "br", "If-None-Match", tags["gzip"]); r.status != http.StatusOK {
			t.Errorf("GET %s in br with the gzip ETag: %d, want 200 (other bytes)", page, r.status)
		}
		small := sys.get(t, api+"/characters?page_size=1", "Accept-Encoding", "br, gzip")
		if small.header.Get("Content-Encoding") != "" || len(small.body) >= 1024 {
			t.Errorf("a page of 1 (%d bytes) came with Content-Encoding %q", len(small.body), small.header.Get("Content-Encoding"))
		}
	}
}

func decodeBody(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", coding, err)
	}
	return out
}

// TestCacheHeaders: successful answers say Cache-Control as configured
// (E2E_CACHE_CONTROL, "no-cache" by default) and Last-Modified, the same on
// every replica (the commit time of the data version); If-Modified-Since
// with it is a 304, with an earlier date a 200; errors say no-store.
func TestCacheHeaders(t *testing.T) {
	_, want := sys.baseline(t)
	wantCC := sys.cacheControl
	for _, path := range []string{"/characters?page_size=7", "/characters/" + strconv.Itoa(want[0].ID)} {
		lastModified := ""
		for _, api := range sys.apis {
			r := sys.get(t, api+path)
			if got := r.header.Get("Cache-Control"); got != wantCC {
				t.Errorf("GET %s%s: Cache-Control %q, want %q", api, path, got, wantCC)
			}
			lm := r.header.Get("Last-Modified")
			at, err := http.ParseTime(lm)
			if err != nil || time.Since(at) > 24*time.Hour || time.Until(at) > time.Minute {
				t.Errorf("GET %s%s: Last-Modified %q (%v), want a recent HTTP date", api, path, lm, err)
				continue
			}
			if lastModified != "" && lm != lastModified {
				t.Errorf("GET %s%s: Last-Modified %q, another replica said %q", api, path, lm, lastModified)
			}
			lastModified = lm
			if r := sys.get(t, api+path, "If-Modified-Since", lm); r.status != http.StatusNotModified || len(r.body) != 0 {
				t.Errorf("GET %s%s with If-Modified-Since %s: %s, want 304", api, path, lm, r)
			}
			earlier := at.Add(-time.Second).Format(http.TimeFormat)
			if r := sys.get(t, api+path, "If-Modified-Since", earlier); r.status != http.StatusOK {
				t.Errorf("GET %s%s with If-Modified-Since %s: %d, want 200", api, path, earlier, r.status)
			}
		}
	}
	for _, api := range sys.apis {
		for _, path := range []string{"/characters?gender=robot", "/characters/2147483000", "/nope"} {
			if got := sys.get(t, api+path).header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("GET %s%s: Cache-Control %q, want no-store", api, path, got)
			}
		}
	}
}

// TestCORS: with E2E_CORS_ORIGIN, a preflight from that origin for a GET
// with If-None-Match is allowed and the answer exposes ETag and Link to the
// page; another origin gets no CORS header. Without it, CORS is off: no
// origin gets one.
func TestCORS(t *testing.T) {
	sys.baseline(t)
	const stranger = "https://stranger.e2e.example"
	for _, api := range sys.apis {
		u := api + "/characters?page_size=2"
		preflight := func(origin string) response {
			r, err := sys.request(http.MethodOptions, u, nil, "Origin", origin,
				"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "if-none-match")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := preflight(stranger); r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("OPTIONS %s from %s: allowed (%q)", u, stranger, r.header.Get("Access-Control-Allow-Origin"))
		}
		if r := sys.get(t, u, "Origin", stranger); r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET %s from %s: %d, Access-Control-Allow-Origin %q", u, stranger, r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
		if sys.corsOrigin == "" {
			continue
		}
		r := preflight(sys.corsOrigin)
		if r.status >= 300 || r.header.Get("Access-Control-Allow-Origin") != sys.corsOrigin {
			t.Errorf("OPTIONS %s from %s: %d, Access-Control-Allow-Origin %q", u, sys.corsOrigin, r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
		if got := strings.ToLower(r.header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "if-none-match") {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Headers %q lacks If-None-Match", u, got)
		}
		if got := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "GET") {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Methods %q lacks GET", u, got)
		}
		g := sys.get(t, u, "Origin", sys.corsOrigin)
		if g.header.Get("Access-Control-Allow-Origin") != sys.corsOrigin {
			t.Errorf("GET %s from %s: Access-Control-Allow-Origin %q", u, sys.corsOrigin, g.header.Get("Access-Control-Allow-Origin"))
		}
		exposed := strings.ToLower(g.header.Get("Access-Control-Expose-Headers"))
		for _, h := range []string{"etag", "link", "last-modified"} {
			if !strings.Contains(exposed, h) {
				t.Errorf("GET %s: Access-Control-Expose-Headers %q lacks %s", u, exposed, h)
			}
		}
	}
}

// TestDocsPage: /docs is an HTML page with a Content-Security-Policy that
// allows only its own assets, and every asset it names (and the OpenAPI
// document it renders) is served by the API itself (gzipped for clients that accept it). The real browser test
// of the page is cmd/api's TestDocsPageInABrowser.
func TestDocsPage(t *testing.T) {
	for _, api := range sys.apis {
		r := sys.get(t, api+"/docs")
		if r.status != http.StatusOK || r.mediaType() != "text/html" {
			t.Fatalf("GET %s/docs: %d %q", api, r.status, r.header.Get("Content-Type"))
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s/docs: Content-Security-Policy %q", api, csp)
		}
		refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(r.body), -1)
		if len(refs) < 2 {
			t.Fatalf("GET %s/docs names %d assets", api, len(refs))
		}
		page, err := url.Parse(api + "/docs")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range refs {
			ref, err := page.Parse(m[1])
			if err != nil || ref.Host != page.Host || (!strings.HasPrefix(ref.Path, "/docs/") && ref.Path != "/openapi.json") {
				t.Errorf("%s/docs names %q: not one of its own assets", api, m[1])
				continue
			}
			a := sys.get(t, ref.String(), "Accept-Encoding", "gzip")
			if a.status != http.StatusOK || len(a.body) == 0 {
				t.Errorf("GET %s%s: %d", api, ref.Path, a.status)
			}
			if strings.HasSuffix(ref.Path, ".js") && a.header.Get("Content-Encoding") != "gzip" {
				t.Errorf("GET %s%s with Accept-Encoding gzip: Content-Encoding %q", api, ref.Path, a.header.Get("Content-Encoding"))
			}
		}
	}
}
