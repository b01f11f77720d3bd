// Package fake is a faithful fake of the Rick and Morty API's character
// endpoints (as described in shared/upstream-api.md), with injectable faults,
// an HTTP control API and a bundled synthetic data set, for tests and the
// offline demo.
//
// The upstream's endpoints live under /api, so a base URL of
// http://host:port/api works exactly like https://rickandmortyapi.com/api. The
// control API lives under /_fake/, outside anything an ingester would crawl.
package fake

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// Server is the fake upstream. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	publicBase    string // for next/prev and root links; "" derives it from the request
	initial       []upstream.Character
	initialFaults Faults

	mu    sync.RWMutex
	chars []upstream.Character // sorted by id; replaced whole, never mutated, so a reader may keep it

	faults faultState

	requests atomic.Int64
	perPage  sync.Map // page number -> *atomic.Int64

	control http.Handler
}

// Option configures a Server.
type Option func(*Server)

// WithPublicBase sets the base URL that next/prev and root links point at,
// e.g. "http://fake:8081/api". The real upstream links to its own public host,
// whatever proxy the client came through; without this option the fake uses
// the request's Host.
func WithPublicBase(url string) Option {
	return func(s *Server) { s.publicBase = strings.TrimRight(url, "/") }
}

// WithFaults sets the faults the server starts with, which POST /_fake/reset
// restores (the command uses it for FAKE_LATENCY).
func WithFaults(f Faults) Option {
	return func(s *Server) { s.initialFaults = f.clone() }
}

// New returns a fake serving a copy of chars. POST /_fake/reset restores that
// same data set.
func New(chars []upstream.Character, opts ...Option) *Server {
	s := &Server{initial: clone(chars)}
	for _, opt := range opts {
		opt(s)
	}
	s.chars = sortByID(clone(chars))
	s.faults.set(s.initialFaults)
	s.control = s.controlRoutes()
	return s
}

// ServeHTTP routes /api/... to the upstream's endpoints and /_fake/... to the
// control API. Anything else gets the upstream's unknown-path 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == apiPrefix || strings.HasPrefix(p, apiPrefix+"/"):
		s.serveAPI(w, r, strings.TrimPrefix(p, apiPrefix))
	case strings.HasPrefix(p, controlPrefix):
		s.control.ServeHTTP(w, r)
	default:
		writeError(w, http.StatusNotFound, msgUnknownPath)
	}
}

// SetCharacters replaces the data set with a copy of chars, atomically.
func (s *Server) SetCharacters(chars []upstream.Character) {
	c := sortByID(clone(chars))
	s.mu.Lock()
	s.chars = c
	s.mu.Unlock()
}

// Characters returns a copy of the current data set, ordered by id.
func (s *Server) Characters() []upstream.Character { return clone(s.snapshot()) }

// Update replaces the data set with fn's result, atomically: no request sees
// a state between the read and the write. fn gets a copy it may modify and
// must not call the Server's methods (the data set is locked while it runs).
func (s *Server) Update(fn func(chars []upstream.Character) []upstream.Character) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chars = sortByID(clone(fn(clone(s.chars))))
}

// SetFaults replaces the fault configuration and restarts its bookkeeping
// (remaining failures, successful answers seen, whether the data set grew).
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// Faults returns the current fault configuration.
func (s *Server) Faults() Faults { return s.faults.get() }

// Requests is the number of /character page requests received, including
// faulted ones and those past the last page.
func (s *Server) Requests() int64 { return s.requests.Load() }

// PageRequests is the number of requests for one page; page numbers are
// normalised as the upstream does, so ?page=abc counts as page 1.
func (s *Server) PageRequests(page int) int64 {
	if c, ok := s.perPage.Load(page); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// ResetCounters zeroes Requests and every PageRequests.
func (s *Server) ResetCounters() {
	s.requests.Store(0)
	s.perPage.Clear()
}

func (s *Server) countPage(page int) {
	s.requests.Add(1)
	c, _ := s.perPage.LoadOrStore(page, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// pageCounts returns the per-page counters as a plain map.
func (s *Server) pageCounts() map[int]int64 {
	out := map[int]int64{}
	s.perPage.Range(func(k, v any) bool {
		out[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// snapshot returns the current data set without copying; callers must not
// modify it.
func (s *Server) snapshot() []upstream.Character {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.chars
}

// clone deep-copies characters, episodes included, so that no caller shares
// memory with the server. A nil episode list becomes empty because the
// upstream always sends an array, never null.
func clone(chars []upstream.Character) []upstream.Character {
	out := make([]upstream.Character, len(chars))
	for i, c := range chars {
		c.Episode = append([]string{}, c.Episode...)
		out[i] = c
	}
	return out
}

// sortByID orders in place (stable, so duplicate ids keep their order) and
// returns chars for chaining.
func sortByID(chars []upstream.Character) []upstream.Character {
	slices.SortStableFunc(chars, func(a, b upstream.Character) int { return a.ID - b.ID })
	return chars
}
