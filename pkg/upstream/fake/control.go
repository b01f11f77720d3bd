package fake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

const (
	controlPrefix = "/_fake/"
	// maxBody bounds control request bodies; the bundled data set is ~250 KiB.
	maxBody = 10 << 20
)

// controlRoutes is the HTTP face of the Go API, for black-box tests and the
// demo, which cannot reach the Server value:
//
//	GET    /_fake/characters        the data set, a JSON array
//	PUT    /_fake/characters        replace it (a JSON array)
//	POST   /_fake/characters        add or replace one character by id
//	GET    /_fake/characters/{id}   one character, whatever the faults
//	PATCH  /_fake/characters/{id}   merge a partial object into one character
//	DELETE /_fake/characters/{id}   remove one character
//	GET    /_fake/faults            the fault configuration
//	PUT    /_fake/faults            replace it (see Faults for the JSON)
//	DELETE /_fake/faults            clear it
//	GET    /_fake/stats             request counters and data set size
//	DELETE /_fake/stats             zero the counters
//	POST   /_fake/reset             initial data set and faults, zero counters
func (s *Server) controlRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_fake/{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, controlIndex)
	})
	mux.HandleFunc("GET /_fake/characters", s.listCharacters)
	mux.HandleFunc("PUT /_fake/characters", s.replaceCharacters)
	mux.HandleFunc("POST /_fake/characters", s.upsertCharacter)
	mux.HandleFunc("GET /_fake/characters/{id}", s.getCharacter)
	mux.HandleFunc("PATCH /_fake/characters/{id}", s.patchCharacter)
	mux.HandleFunc("DELETE /_fake/characters/{id}", s.deleteCharacter)
	mux.HandleFunc("GET /_fake/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("PUT /_fake/faults", s.putFaults)
	mux.HandleFunc("DELETE /_fake/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.SetFaults(Faults{})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_fake/stats", s.stats)
	mux.HandleFunc("DELETE /_fake/stats", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_fake/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.SetCharacters(s.initial)
		s.SetFaults(s.initialFaults)
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (s *Server) listCharacters(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.snapshot())
}

func (s *Server) replaceCharacters(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	chars, err := LoadDataset(bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.SetCharacters(chars)
	writeJSON(w, http.StatusOK, map[string]int{"count": len(chars)})
}

// upsertCharacter answers 201 when the id is new and 200 when it replaced one.
func (s *Server) upsertCharacter(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var c upstream.Character
	if err := decodeStrict(body, &c); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if c.ID < 1 {
		writeError(w, http.StatusBadRequest, "id must be positive")
		return
	}
	if c.Episode == nil {
		c.Episode = []string{} // as stored: the upstream never sends null
	}
	created := true
	s.Update(func(chars []upstream.Character) []upstream.Character {
		if i := indexByID(chars, c.ID); i >= 0 {
			created = false
			chars[i] = c
			return chars
		}
		return append(chars, c)
	})
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, c)
}

func (s *Server) getCharacter(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	c, found := findByID(s.snapshot(), id)
	if !found {
		writeError(w, http.StatusNotFound, msgNoCharacter)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// patchCharacter merges a partial object into one character: fields present
// replace, fields absent (or null) stay, and a nested object such as
// {"origin":{"name":"Cronenberg Earth"}} merges field by field too.
func (s *Server) patchCharacter(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		writeError(w, http.StatusBadRequest, "want a JSON object")
		return
	}
	var (
		patched upstream.Character
		status  = http.StatusOK
		errMsg  string
	)
	s.Update(func(chars []upstream.Character) []upstream.Character {
		i := indexByID(chars, id)
		if i < 0 {
			status, errMsg = http.StatusNotFound, msgNoCharacter
			return chars
		}
		c := chars[i]
		// Decoding reuses a slice's array; give c its own, so that a patch
		// failing half-way leaves chars[i] intact.
		c.Episode = slices.Clone(c.Episode)
		if err := decodeStrict(body, &c); err != nil {
			status, errMsg = http.StatusBadRequest, err.Error()
			return chars
		}
		if c.ID != id {
			status, errMsg = http.StatusBadRequest, "the id cannot be changed"
			return chars
		}
		chars[i], patched = c, c
		return chars
	})
	if errMsg != "" {
		writeError(w, status, errMsg)
		return
	}
	writeJSON(w, http.StatusOK, patched)
}

func (s *Server) deleteCharacter(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	found := false
	s.Update(func(chars []upstream.Character) []upstream.Character {
		if i := indexByID(chars, id); i >= 0 {
			found = true
			return slices.Delete(chars, i, i+1)
		}
		return chars
	})
	if !found {
		writeError(w, http.StatusNotFound, msgNoCharacter)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) putFaults(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var f Faults
	if err := decodeStrict(body, &f); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := f.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}

// stats is what tests poll to see how a crawl behaved.
func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	pages := map[string]int64{}
	for p, n := range s.pageCounts() {
		pages[strconv.Itoa(p)] = n
	}
	writeJSON(w, http.StatusOK, struct {
		Requests   int64            `json:"requests"`
		Pages      map[string]int64 `json:"pages"`
		Characters int              `json:"characters"`
	}{s.Requests(), pages, len(s.snapshot())})
}

// readBody reads a bounded body, answering 413 or 400 itself on failure.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", tooBig.Limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return body, true
}

// decodeStrict decodes exactly one JSON value into v, rejecting unknown
// fields: a misspelt field in a test's request should fail loudly.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

func pathID(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return 0, false
	}
	return id, true
}

func indexByID(chars []upstream.Character, id int) int {
	return slices.IndexFunc(chars, func(c upstream.Character) bool { return c.ID == id })
}

// controlIndex is what GET /_fake/ answers: the control endpoints, so a
// person who follows the demo's link sees what they can do.
var controlIndex = map[string]string{
	"GET /_fake/characters":         "the current data set (JSON array)",
	"PUT /_fake/characters":         "replace the data set (JSON array)",
	"POST /_fake/characters":        "add or replace one character (by id)",
	"GET /_fake/characters/{id}":    "one character",
	"PATCH /_fake/characters/{id}":  `merge fields into one character, e.g. {"status":"Dead"}`,
	"DELETE /_fake/characters/{id}": "remove one character",
	"GET|PUT|DELETE /_fake/faults":  `read, set or clear faults, e.g. {"latency":"100ms","fail_pages":{"3":-1},"status":503,"rate_limit_pages":{"2":1},"retry_after":"1","malformed_pages":{"4":true},"truncated_pages":{"5":true},"count_change_after":3}`,
	"GET|DELETE /_fake/stats":       "request counters (read or reset)",
	"POST /_fake/reset":             "restore the starting data set and faults, reset counters",
	"GET /api/character?page=N":     "the upstream API itself (also /api and /api/character/{id})",
}
