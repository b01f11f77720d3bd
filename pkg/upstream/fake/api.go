package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

const (
	apiPrefix   = "/api"
	contentType = "application/json; charset=utf-8"

	// The upstream's error messages; the period is part of the contract.
	msgNoPage      = "There is nothing here"  // a page past the last one
	msgUnknownPath = "There is nothing here." // a route that does not exist
	msgNoCharacter = "Character not found"
)

// malformedBody is a page cut off mid-stream: 200 OK, but not JSON.
const malformedBody = `{"info":{"count":826,"pages":42,"next":"https://rickandmortyapi.com/api/charac`

// serveAPI routes the upstream's endpoints; rest is the path after /api.
// Like the upstream, a trailing slash is ignored and any other method or path
// is an unknown route.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusNotFound, msgUnknownPath)
		return
	}
	rest = strings.TrimSuffix(rest, "/")
	switch {
	case rest == "":
		s.serveRoot(w, r)
	case rest == "/character":
		s.servePage(w, r)
	case strings.HasPrefix(rest, "/character/"):
		s.serveByID(w, r, strings.TrimPrefix(rest, "/character/"))
	default:
		writeError(w, http.StatusNotFound, msgUnknownPath)
	}
}

// base is what links point at: the configured public base, else this
// request's own scheme and host.
func (s *Server) base(r *http.Request) string {
	if s.publicBase != "" {
		return s.publicBase
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + apiPrefix
}

func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request) {
	b := s.base(r)
	writeJSON(w, http.StatusOK, struct {
		Characters string `json:"characters"`
		Locations  string `json:"locations"`
		Episodes   string `json:"episodes"`
	}{b + "/character", b + "/location", b + "/episode"})
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := parsePage(q.Get("page"))
	s.countPage(page)
	if !sleep(r.Context(), s.faults.latency()) {
		return // the client gave up; nobody is listening
	}

	ans := s.faults.take(page)
	switch ans.kind {
	case answerRateLimited:
		w.Header().Set("Retry-After", ans.retryAfter)
		writeError(w, http.StatusTooManyRequests, http.StatusText(http.StatusTooManyRequests))
		return
	case answerFailed:
		writeError(w, ans.status, http.StatusText(ans.status))
		return
	case answerMalformed:
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(malformedBody))
		return
	}

	filters := parseFilters(q)
	matched := applyFilters(s.snapshot(), filters)
	pages := (len(matched) + upstream.PageSize - 1) / upstream.PageSize
	if page > pages {
		writeError(w, http.StatusNotFound, msgNoPage)
		return
	}
	lo := (page - 1) * upstream.PageSize
	results := matched[lo:min(lo+upstream.PageSize, len(matched))]
	if ans.kind == answerTruncated {
		results = results[:len(results)/2]
	}

	base, extra := s.base(r), linkQuery(filters)
	link := func(p int) *string {
		u := base + "/character?page=" + strconv.Itoa(p) + extra
		return &u
	}
	info := upstream.Info{Count: len(matched), Pages: pages}
	if page < pages {
		info.Next = link(page + 1)
	}
	if page > 1 {
		info.Prev = link(page - 1)
	}

	// Grow before answering: once the client holds this answer, its next
	// request must already see the new count.
	if s.faults.succeeded() {
		s.Update(addLateArrival)
	}
	writeJSON(w, http.StatusOK, upstream.Page{Info: info, Results: results})
}

// serveByID answers /character/7 with one character and /character/1,2 (or
// /character/[1,2]) with an array of those that exist, ordered by id.
func (s *Server) serveByID(w http.ResponseWriter, r *http.Request, ids string) {
	if !sleep(r.Context(), s.faults.latency()) {
		return
	}
	chars := s.snapshot()
	if !strings.ContainsAny(ids, ",[]") {
		id, err := strconv.Atoi(ids)
		c, ok := findByID(chars, id)
		if err != nil || !ok {
			writeError(w, http.StatusNotFound, msgNoCharacter)
			return
		}
		writeJSON(w, http.StatusOK, c)
		return
	}
	var wanted []int
	for part := range strings.SplitSeq(strings.Trim(ids, "[]"), ",") {
		if id, err := strconv.Atoi(strings.TrimSpace(part)); err == nil {
			wanted = append(wanted, id)
		}
	}
	slices.Sort(wanted)
	found := []upstream.Character{}
	for _, id := range slices.Compact(wanted) {
		if c, ok := findByID(chars, id); ok {
			found = append(found, c)
		}
	}
	writeJSON(w, http.StatusOK, found)
}

// findByID searches chars, which are sorted by id.
func findByID(chars []upstream.Character, id int) (upstream.Character, bool) {
	i, ok := slices.BinarySearchFunc(chars, id, func(c upstream.Character, id int) int { return c.ID - id })
	if !ok {
		return upstream.Character{}, false
	}
	return chars[i], true
}

// parsePage treats a missing, zero, negative or non-numeric page as page 1,
// as the upstream does.
func parsePage(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// sleep waits d or until ctx ends, reporting whether the full wait elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeJSON encodes without HTML escaping, as the upstream (a JavaScript
// service) does: "<" stays "<", not "\u003c".
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
