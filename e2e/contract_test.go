package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestErrorContract: invalid parameters are 422, unknown resources and
// routes 404, a wrong method 405, all as application/problem+json whose
// detail names the offending parameter; unknown query parameters are
// ignored.
func TestErrorContract(t *testing.T) {
	sys.baseline(t)
	cases := []struct {
		path   string
		status int
		param  string
	}{
		{"/characters?page=0", 422, "page"},
		{"/characters?page=-1", 422, "page"},
		{"/characters?page=abc", 422, "page"},
		{"/characters?page=1.5", 422, "page"},
		{"/characters?page=99999999999999999999999", 422, "page"},
		{"/characters?page_size=0", 422, "page_size"},
		{"/characters?page_size=101", 422, "page_size"},
		{"/characters?page_size=ten", 422, "page_size"},
		{"/characters?sort=height", 422, "sort"},
		{"/characters?order=up", 422, "order"},
		{"/characters?sort=name&order=sideways&page=2", 422, "order"},
		{"/characters?page=1&page=2", 422, "page"},
		{"/characters/abc", 422, "id"},
		{"/characters/+1", 422, "id"},
		{"/characters?page=+1", 422, "page"},
		{"/characters?gender=robot", 422, "gender"},
		{"/characters?gender=male&gender=female", 422, "gender"},
		{"/characters?name=" + strings.Repeat("r", 101), 422, "name"},
		{"/characters?origin=earth%00", 422, "origin"},
		{"/characters?location=%ff%fe", 422, "location"},
		{"/characters?name=abc&name=bcd", 422, "name"},
		{"/characters?name=ri", 422, "name"},
		{"/characters?origin=%25%25%25", 422, "origin"},
		{"/characters/2147483000", 404, ""},
		{"/nope", 404, ""},
		{"/characters/1/episodes", 404, ""},
		{"/api/character", 404, ""},
	}
	for _, api := range sys.apis {
		for _, c := range cases {
			u := api + c.path
			r := sys.get(t, u)
			checkProblem(t, "GET "+u, r, c.status, c.param)
			if p, err := url.Parse(u); err == nil && !strings.Contains(string(r.body), `"instance":"`+p.Path+`"`) {
				t.Errorf("GET %s: %s: instance is not the request path %q", u, r, p.Path)
			}
		}
		r, err := sys.request(http.MethodPost, api+"/characters", []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		checkProblem(t, "POST "+api+"/characters", r, http.StatusMethodNotAllowed, "")

		// Parameters the API does not know are ignored (cache busters,
		// tracking tags), not refused.
		if r := sys.get(t, api+"/characters?utm_source=e2e&page_size=3"); r.status != http.StatusOK {
			t.Errorf("GET %s/characters?utm_source=e2e&page_size=3: %s, want 200", api, r)
		}
	}
}

// TestConditionalGet: answers carry an ETag; If-None-Match with it gets 304
// and no body, from every replica (the validator is the data version, shared
// by all); after an ingest that changes the data the old ETag gets a 200
// with a new one.
func TestConditionalGet(t *testing.T) {
	_, want := sys.baseline(t)
	api0 := sys.apis[0]
	dies := want[2] // on the first page of the list checked below
	paths := []string{
		"/characters?page_size=5",
		"/characters?sort=name&order=desc&page=2&page_size=10",
		"/characters/" + strconv.Itoa(want[0].ID),
	}
	etags := map[string]string{}
	for _, path := range paths {
		r := sys.get(t, api0+path)
		etag := r.header.Get("ETag")
		if r.status != http.StatusOK || etag == "" {
			t.Fatalf("GET %s%s: %s with ETag %q, want 200 with an ETag", api0, path, r, etag)
		}
		if !strings.HasSuffix(etag, `"`) || !(strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/"`)) {
			t.Errorf("GET %s%s: ETag %s is not a quoted entity tag", api0, path, etag)
		}
		etags[path] = etag
		opaque := strings.TrimPrefix(etag, "W/")
		for _, api := range sys.apis {
			for _, inm := range []string{etag, "W/" + opaque, `"e2e-other", ` + etag, "*"} {
				r := sys.get(t, api+path, "If-None-Match", inm)
				if r.status != http.StatusNotModified || len(r.body) != 0 {
					t.Errorf("GET %s%s with If-None-Match %s: %s, want 304 with no body", api, path, inm, r)
				}
				if got := r.header.Get("ETag"); got != etag {
					t.Errorf("GET %s%s with If-None-Match %s: 304 with ETag %q, want %q", api, path, inm, got, etag)
				}
			}
			if r := sys.get(t, api+path, "If-None-Match", `"e2e-other"`); r.status != http.StatusOK || len(r.body) == 0 {
				t.Errorf("GET %s%s with a non-matching If-None-Match: %s, want 200 with the body", api, path, r)
			}
		}
	}

	sys.patchFake(t, dies.ID, map[string]any{"status": "Dead"})
	sys.ingest(t, true)
	list := paths[0]
	sys.waitAll(t, propagationDeadline, func(api string) error {
		r, err := sys.request(http.MethodGet, api+list, nil, "If-None-Match", etags[list])
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("GET %s with the old ETag %s: %d, want 200 after the data changed", list, etags[list], r.status)
		}
		if got := r.header.Get("ETag"); got == "" || got == etags[list] {
			return fmt.Errorf("GET %s: ETag %q after the data changed, want a new one", list, got)
		}
		if strings.Contains(string(r.body), fmt.Sprintf(`"id":%d,`, dies.ID)) {
			return fmt.Errorf("GET %s: still lists %d, who died", list, dies.ID)
		}
		return nil
	})
}
