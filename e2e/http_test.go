package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// response is a fully read HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	b := bytes.TrimSpace(r.body)
	if len(b) > 400 {
		b = append(b[:400:400], "…"...)
	}
	return fmt.Sprintf("%d %s", r.status, b)
}

// mediaType is the Content-Type without parameters.
func (r response) mediaType() string {
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	return mt
}

// request sends one request; header is pairs of name, value.
func (s *system) request(method, u string, body []byte, header ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading the body: %w", method, u, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// get is request for GET that fails the test on a transport error.
func (s *system) get(t testing.TB, u string, header ...string) response {
	t.Helper()
	r, err := s.request(http.MethodGet, u, nil, header...)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return r
}

// getJSON GETs u, requires 200 and application/json, and decodes into v.
func (s *system) getJSON(t testing.TB, u string, v any) response {
	t.Helper()
	r := s.get(t, u)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %s, want 200", u, r)
	}
	if mt := r.mediaType(); mt != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json", u, r.header.Get("Content-Type"))
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s: decoding %s: %v", u, r, err)
	}
	return r
}

// apiCharacter is a character as the API represents it.
type apiCharacter struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Species  string `json:"species"`
	Type     string `json:"type"`
	Gender   string `json:"gender"`
	Origin   string `json:"origin"`
	Location string `json:"location"`
	Image    string `json:"image"`
	URL      string `json:"url"`
	Created  string `json:"created"`
}

// characterFields are the documented fields of a character.
var characterFields = []string{"id", "name", "status", "species", "type", "gender", "origin", "location", "image", "url", "created"}

// pageFields are the documented fields of a list response.
var pageFields = []string{"page", "page_size", "total_count", "total_pages", "has_prev", "has_next", "out_of_range", "results"}

// apiPage is one answer of GET /characters.
type apiPage struct {
	Page       int            `json:"page"`
	PageSize   int            `json:"page_size"`
	TotalCount int            `json:"total_count"`
	TotalPages int            `json:"total_pages"`
	HasPrev    bool           `json:"has_prev"`
	HasNext    bool           `json:"has_next"`
	OutOfRange bool           `json:"out_of_range"`
	Results    []apiCharacter `json:"results"`
}

// problem is an RFC 9457 problem detail as the API writes it.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Param    string `json:"param"`
}

// hasFields reports the documented fields missing from a JSON object.
func missingFields(raw []byte, fields []string) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			missing = append(missing, f)
		}
	}
	return missing, nil
}

// listURL is the API's list URL for one page.
func listURL(api, sort, order string, page, pageSize int) string {
	v := url.Values{}
	v.Set("sort", sort)
	v.Set("order", order)
	v.Set("page", strconv.Itoa(page))
	v.Set("page_size", strconv.Itoa(pageSize))
	return api + "/characters?" + v.Encode()
}

var linkRe = regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?([a-z]+)"?`)

// links parses Link headers into rel -> target URL, resolved against base.
func links(h http.Header, base string) (map[string]string, error) {
	out := map[string]string{}
	b, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	for _, v := range h.Values("Link") {
		for _, m := range linkRe.FindAllStringSubmatch(v, -1) {
			ref, err := url.Parse(m[1])
			if err != nil {
				return nil, fmt.Errorf("Link %q: %w", v, err)
			}
			for rel := range strings.FieldsSeq(m[2]) {
				out[rel] = b.ResolveReference(ref).String()
			}
		}
	}
	return out, nil
}

// listing is a whole sorted listing as one replica served it.
type listing struct {
	chars []apiCharacter
	etag  string // of the first page
	pages int
}

// walk reads every page of one sort order from api, starting at page 1 and
// following rel="next" links, and checks the paging facts of every page:
// numbering, sizes, counts, has_prev/has_next, links, and that the page past
// the last is reported out of range. Any inconsistency is an error, so a
// caller may poll with it.
func (s *system) walk(api, sort, order string, pageSize int) (listing, error) {
	var (
		out   listing
		total = -1
		next  = listURL(api, sort, order, 1, pageSize)
	)
	for n := 1; next != ""; n++ {
		if n > 10_000 {
			return out, fmt.Errorf("more than 10000 pages: the next links loop")
		}
		r, err := s.request(http.MethodGet, next, nil)
		if err != nil {
			return out, err
		}
		if r.status != http.StatusOK || r.mediaType() != "application/json" {
			return out, fmt.Errorf("GET %s: %s (Content-Type %q), want 200 application/json", next, r, r.header.Get("Content-Type"))
		}
		var p apiPage
		if err := json.Unmarshal(r.body, &p); err != nil {
			return out, fmt.Errorf("GET %s: %w", next, err)
		}
		switch missing, err := missingFields(r.body, pageFields); {
		case err != nil:
			return out, fmt.Errorf("GET %s: %w", next, err)
		case len(missing) > 0:
			return out, fmt.Errorf("GET %s: the page lacks fields %v", next, missing)
		}
		etag := r.header.Get("ETag")
		if etag == "" {
			return out, fmt.Errorf("GET %s: no ETag", next)
		}
		if n == 1 {
			total, out.etag = p.TotalCount, etag
		} else if etag != out.etag {
			return out, fmt.Errorf("GET %s: ETag %s differs from page 1's %s: the data changed during the walk", next, etag, out.etag)
		}
		wantPages := (total + pageSize - 1) / pageSize
		wantLen := pageSize
		if n == wantPages {
			wantLen = total - pageSize*(wantPages-1)
		}
		if wantPages == 0 {
			wantLen = 0
		}
		switch {
		case p.Page != n || p.PageSize != pageSize:
			return out, fmt.Errorf("GET %s: page %d page_size %d, want %d and %d", next, p.Page, p.PageSize, n, pageSize)
		case p.TotalCount != total || p.TotalPages != wantPages:
			return out, fmt.Errorf("GET %s: total_count %d total_pages %d, want %d and %d", next, p.TotalCount, p.TotalPages, total, wantPages)
		case p.OutOfRange:
			return out, fmt.Errorf("GET %s: out_of_range on page %d of %d", next, n, wantPages)
		case p.HasPrev != (n > 1) || p.HasNext != (n < wantPages):
			return out, fmt.Errorf("GET %s: has_prev %v has_next %v on page %d of %d", next, p.HasPrev, p.HasNext, n, wantPages)
		case len(p.Results) != wantLen:
			return out, fmt.Errorf("GET %s: %d results on page %d of %d, want %d", next, len(p.Results), n, wantPages, wantLen)
		}
		if n == 1 && len(p.Results) > 0 {
			var raw struct {
				Results []json.RawMessage `json:"results"`
			}
			if err := json.Unmarshal(r.body, &raw); err != nil {
				return out, err
			}
			switch missing, err := missingFields(raw.Results[0], characterFields); {
			case err != nil:
				return out, fmt.Errorf("GET %s: a character: %w", next, err)
			case len(missing) > 0:
				return out, fmt.Errorf("GET %s: a character lacks fields %v", next, missing)
			}
		}
		l, err := links(r.header, next)
		if err != nil {
			return out, err
		}
		if _, ok := l["prev"]; ok != p.HasPrev {
			return out, fmt.Errorf("GET %s: Link rel=prev present %v, has_prev %v", next, ok, p.HasPrev)
		}
		if _, ok := l["next"]; ok != p.HasNext {
			return out, fmt.Errorf("GET %s: Link rel=next present %v, has_next %v", next, ok, p.HasNext)
		}
		if p.HasPrev {
			if err := sameQuery(l["prev"], sort, order, n-1, pageSize); err != nil {
				return out, fmt.Errorf("GET %s: rel=prev: %w", next, err)
			}
		}
		if p.HasNext {
			if err := sameQuery(l["next"], sort, order, n+1, pageSize); err != nil {
				return out, fmt.Errorf("GET %s: rel=next: %w", next, err)
			}
		}
		out.chars = append(out.chars, p.Results...)
		out.pages = n
		next = l["next"]
	}

	// One past the last page is out of range, empty, and says so.
	past := max(out.pages, 1) + 1
	u := listURL(api, sort, order, past, pageSize)
	r, err := s.request(http.MethodGet, u, nil)
	if err != nil {
		return out, err
	}
	var p apiPage
	if r.status != http.StatusOK {
		return out, fmt.Errorf("GET %s: %s, want 200 with out_of_range", u, r)
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		return out, fmt.Errorf("GET %s: %w", u, err)
	}
	if !p.OutOfRange || len(p.Results) != 0 || p.HasNext || p.TotalCount != max(total, 0) {
		return out, fmt.Errorf("GET %s (past the last page): out_of_range %v, %d results, has_next %v, total_count %d; want true, 0, false, %d",
			u, p.OutOfRange, len(p.Results), p.HasNext, p.TotalCount, total)
	}
	return out, nil
}

// sameQuery checks that link asks for the same listing at page.
func sameQuery(link, sort, order string, page, pageSize int) error {
	u, err := url.Parse(link)
	if err != nil {
		return err
	}
	if u.Path != "/characters" && !strings.HasSuffix(u.Path, "/characters") {
		return fmt.Errorf("%s: path is not /characters", link)
	}
	q := u.Query()
	want := map[string]string{"sort": sort, "order": order, "page": strconv.Itoa(page), "page_size": strconv.Itoa(pageSize)}
	for k, v := range want {
		if got := q.Get(k); got != v {
			return fmt.Errorf("%s: %s=%q, want %q", link, k, got, v)
		}
	}
	return nil
}

// mustWalk is walk that fails the test on any error.
func (s *system) mustWalk(t testing.TB, api, sort, order string, pageSize int) listing {
	t.Helper()
	l, err := s.walk(api, sort, order, pageSize)
	if err != nil {
		t.Fatalf("%s: walking sort=%s order=%s page_size=%d: %v", api, sort, order, pageSize, err)
	}
	return l
}

// health is the part of /healthcheck the suite relies on.
type health struct {
	Status            string   `json:"status"`
	DBOK              bool     `json:"db_ok"`
	CharacterCount    *int     `json:"character_count"`
	DataVersion       *int64   `json:"data_version"`
	LastRefreshAt     *string  `json:"last_refresh_at"`
	LastRefreshAge    *float64 `json:"last_refresh_age"`
	ListenerConnected bool     `json:"listener_connected"`
	Problems          []string `json:"problems"`
}

func (s *system) healthcheck(api string) (health, response, error) {
	var h health
	r, err := s.request(http.MethodGet, api+"/healthcheck", nil)
	if err != nil {
		return h, r, err
	}
	if err := json.Unmarshal(r.body, &h); err != nil {
		return h, r, fmt.Errorf("GET %s/healthcheck: %s: %w", api, r, err)
	}
	return h, r, nil
}
