package httpapi

import (
	"context"
	_ "embed"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rickmorty/rickmorty/pkg/character"
)

// entry is a rendered response as the cache keeps it: the body is encoded
// and compressed once per data version and header values are prebuilt, so
// a hit allocates next to nothing.
type entry struct {
	version      int64 // the data version the response was read at
	notFound     bool  // a cached 404 for an item: absent ids are cheap too
	id           int
	modified     time.Time // when version was committed, to the second
	lastModified []string
	link         []string
	reps         [numCodings]*representation // identity always; others when worth it
}

// DataVersion lets the cache drop exactly the responses a new data version
// makes stale.
func (e *entry) DataVersion() int64 { return e.version }

// Size is the entry's approximate heap footprint, for the cache's byte bound.
func (e *entry) Size() int64 {
	n := int64(192) // the struct, slice headers, map slot and key
	for _, r := range e.reps {
		if r != nil {
			n += int64(cap(r.body)) + 96
		}
	}
	for _, h := range e.link {
		n += int64(len(h))
	}
	return n
}

// newEntry builds the cached form of a 200 answer read at snap, for a
// request that accepts acceptEncoding. A cached entry is compressed in
// every coding now, once; with the cache off only the request's coding is
// made.
func (s *Server) newEntry(snap character.Snapshot, body []byte, link []string, acceptEncoding string) *entry {
	want := allCodings
	if !s.cache.Enabled() {
		want = preferred(acceptEncoding)
	}
	e := &entry{version: snap.Version, link: link, reps: representations(snap.Version, body, s.cfg.CompressMinBytes, want)}
	if !snap.Modified.IsZero() {
		// HTTP dates have whole seconds; If-Modified-Since compares at that
		// resolution, so two versions committed within one second share a
		// Last-Modified (the ETag still tells them apart).
		e.modified = snap.Modified.UTC().Truncate(time.Second)
		e.lastModified = []string{e.modified.Format(http.TimeFormat)}
	}
	return e
}

func (s *Server) renderPage(p character.Page, acceptEncoding string) *entry {
	body := appendPage(make([]byte, 0, 256+350*len(p.Results)), p)
	var links []string
	if p.HasPrev {
		links = append(links, linkTo(p.Query.WithPage(p.Query.Page-1), "prev"))
	}
	if p.HasNext {
		links = append(links, linkTo(p.Query.WithPage(p.Query.Page+1), "next"))
	}
	if p.TotalPages > 0 {
		links = append(links, linkTo(p.Query.WithPage(1), "first"), linkTo(p.Query.WithPage(p.TotalPages), "last"))
	}
	var link []string
	if len(links) > 0 {
		link = []string{strings.Join(links, ", ")}
	}
	return s.newEntry(p.Snapshot, body, link, acceptEncoding)
}

func linkTo(q character.ListQuery, rel string) string {
	return `<` + routeCharacters + `?` + q.Key() + `>; rel="` + rel + `"`
}

func (s *Server) handleList() echo.HandlerFunc {
	return func(c echo.Context) error {
		vals, err := url.ParseQuery(c.Request().URL.RawQuery)
		if err != nil {
			return character.Invalid("query", "the query string is not valid URL encoding")
		}
		q, err := character.ParseListQuery(vals)
		if err != nil {
			return err
		}
		key := "list " + q.Key()
		if e, ok := s.cache.Lookup(key); ok {
			return s.serve(c, e)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
		defer cancel()
		e, err := s.cache.Get(ctx, key, func(ctx context.Context) (*entry, error) {
			var p character.Page
			err := s.readCurrent(ctx, func(ctx context.Context) (int64, error) {
				var err error
				p, err = s.store.List(ctx, q)
				return p.Version, err
			})
			if err != nil {
				return nil, err
			}
			return s.renderPage(p, acceptEncoding(c.Request())), nil
		})
		if err != nil {
			return err
		}
		return s.serve(c, e)
	}
}

func (s *Server) handleGet() echo.HandlerFunc {
	return func(c echo.Context) error {
		raw := c.Param("id")
		if strings.Contains(raw, "/") {
			// Echo's router lets a trailing parameter swallow further
			// segments; no such sub-resource exists.
			return echo.ErrNotFound
		}
		id, err := character.ParseID(raw)
		if err != nil {
			return err
		}
		key := "item " + strconv.Itoa(id)
		if e, ok := s.cache.Lookup(key); ok {
			return s.serve(c, e)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
		defer cancel()
		e, err := s.cache.Get(ctx, key, func(ctx context.Context) (*entry, error) {
			var (
				ch       character.Character
				snap     character.Snapshot
				notFound bool
			)
			err := s.readCurrent(ctx, func(ctx context.Context) (int64, error) {
				var err error
				ch, snap, err = s.store.Get(ctx, id)
				notFound = character.ErrorCode(err) == character.ENOTFOUND
				if notFound {
					return snap.Version, nil // an absent id is an answer at a version too
				}
				return snap.Version, err
			})
			switch {
			case err != nil:
				return nil, err
			case notFound:
				return &entry{version: snap.Version, notFound: true, id: id}, nil
			}
			return s.newEntry(snap, appendCharacter(make([]byte, 0, 400), ch), nil, acceptEncoding(c.Request())), nil
		})
		if err != nil {
			return err
		}
		return s.serve(c, e)
	}
}

// readCurrent runs read (which returns the data version it read at) so that
// the pod never serves an answer older than the version it already serves.
// The store has read such an answer on the primary twice, so either the
// database went back (a restore, a failover to an older copy, without the
// listener noticing): the pod follows it and serves the answer; or the data
// changed again during the read: it is read once more.
func (s *Server) readCurrent(ctx context.Context, read func(context.Context) (int64, error)) error {
	v, err := read(ctx)
	if err != nil || v >= s.cache.Version() {
		return err
	}
	served := s.cache.Version()
	s.followDatabase("a read answered with an older version")
	if v >= s.cache.Version() {
		s.log.Warn("the database went back to an older data version; following it", "data_version", v, "was", served)
		return nil
	}
	_, err = read(ctx)
	return err
}

// serve writes a cached entry in the coding the client prefers, answering
// 304 when the client already has that representation.
func (s *Server) serve(c echo.Context, e *entry) error {
	if e.notFound {
		return character.Errorf(character.ENOTFOUND, "character %d not found", e.id)
	}
	req := c.Request()
	r := e.reps[negotiate(acceptEncoding(req), &e.reps)]
	h := c.Response().Header()
	h["Cache-Control"] = s.cacheControl
	if e.lastModified != nil {
		h["Last-Modified"] = e.lastModified
	}
	if v := h["Vary"]; v == nil { // CORS may have added Origin
		h["Vary"] = varyAcceptEncoding
	} else {
		h["Vary"] = append(v, varyAcceptEncoding[0])
	}
	if e.link != nil {
		h["Link"] = e.link
	}
	return r.write(c, contentTypeJSON, e.modified)
}

// notModified evaluates the request's preconditions (RFC 9110 13.2.2):
// If-None-Match when present, else If-Modified-Since.
func notModified(req *http.Request, etag string, modified time.Time) bool {
	if inm := req.Header["If-None-Match"]; len(inm) > 0 {
		for _, line := range inm { // a list may come in several lines
			if etagMatches(line, etag) {
				return true
			}
		}
		return false
	}
	// Ignored unless it is one valid date, not in the future (RFC 9110
	// 13.1.3; a client's clock ahead of ours must not pin its copy).
	ims := req.Header["If-Modified-Since"]
	if len(ims) != 1 || modified.IsZero() {
		return false
	}
	t, err := http.ParseTime(ims[0])
	return err == nil && !modified.After(t) && !t.After(time.Now())
}

var (
	contentTypeJSON    = []string{"application/json"}
	varyAcceptEncoding = []string{"Accept-Encoding"}
)

// etagMatches implements If-None-Match's weak comparison against tag.
func etagMatches(header, tag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == tag {
			return true
		}
	}
	return false
}

func (s *Server) handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

func (s *Server) handleReadyz() echo.HandlerFunc {
	return func(c echo.Context) error {
		switch {
		case s.draining.Load():
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		case !s.ready.Load():
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}

type healthJSON struct {
	Status            string   `json:"status"`
	DBOK              bool     `json:"db_ok"`
	CharacterCount    *int     `json:"character_count"`
	DataVersion       *int64   `json:"data_version"`
	LastRefreshAt     *string  `json:"last_refresh_at"`
	LastRefreshAge    *float64 `json:"last_refresh_age"`
	ListenerConnected bool     `json:"listener_connected"`
	CacheEntries      int      `json:"cache_entries"`
	Problems          []string `json:"problems"`
}

// handleHealthcheck is the deep check for people and external probes. It
// always asks the database (never the cache) and never the upstream.
func (s *Server) handleHealthcheck() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), min(2*time.Second, s.cfg.RequestTimeout))
		defer cancel()
		out := healthJSON{
			Status:            "ok",
			ListenerConnected: s.listener.Connected(),
			CacheEntries:      s.cache.Len(),
			Problems:          []string{},
		}
		st, err := s.store.Stats(ctx)
		if err != nil {
			s.log.Warn("health check: database", "err", err)
			out.Problems = append(out.Problems, "database unreachable")
		} else {
			out.DBOK = true
			out.CharacterCount = &st.CharacterCount
			out.DataVersion = &st.DataVersion
			if !st.LastSuccess.IsZero() {
				at := st.LastSuccess.UTC().Format(time.RFC3339)
				age := math.Round(st.LastSuccessAge.Seconds()*1000) / 1000
				out.LastRefreshAt, out.LastRefreshAge = &at, &age
				if s.cfg.MaxRefreshAge > 0 && st.LastSuccessAge > s.cfg.MaxRefreshAge {
					out.Problems = append(out.Problems, "last successful ingest is older than "+s.cfg.MaxRefreshAge.String())
				}
			} else if s.cfg.MaxRefreshAge > 0 {
				out.Problems = append(out.Problems, "no successful ingest yet")
			}
		}
		if !out.ListenerConnected {
			out.Problems = append(out.Problems, "change listener disconnected")
		}
		status := http.StatusOK
		if len(out.Problems) > 0 {
			out.Status = "degraded"
			status = http.StatusServiceUnavailable
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(status, out)
	}
}

//go:embed openapi.json
var openAPI []byte

// openAPIFile is the document as the docs assets are served: gzipped once
// for clients that accept it (57 KB become 6), with an ETag.
var openAPIFile = sync.OnceValue(func() *docFile { return newDocFile(contentTypeJSON, openAPI, true) })

// handleOpenAPI serves the contract; /docs loads it on every visit, so it
// is revalidated (no-cache) rather than fetched again.
func (s *Server) handleOpenAPI() echo.HandlerFunc {
	return func(c echo.Context) error {
		return serveDocFile(c, openAPIFile(), "no-cache")
	}
}
