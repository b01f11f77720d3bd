package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// place and fakeCharacter are the upstream's JSON, as the fake's control API
// reads and writes it (it rejects unknown fields, so these match exactly).
type place struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type fakeCharacter struct {
	ID       int      `json:"id"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Species  string   `json:"species"`
	Type     string   `json:"type"`
	Gender   string   `json:"gender"`
	Origin   place    `json:"origin"`
	Location place    `json:"location"`
	Image    string   `json:"image"`
	Episode  []string `json:"episode"`
	URL      string   `json:"url"`
	Created  string   `json:"created"`
}

// admitted is the curation rule, stated here independently of the code
// under test: living humans from an Earth dimension, compared exactly.
func admitted(c fakeCharacter) bool {
	return c.Species == "Human" && c.Status == "Alive" && strings.HasPrefix(c.Origin.Name, "Earth (")
}

// curated is what the API must serve for a fake data set, sorted by id.
func curated(all []fakeCharacter) []fakeCharacter {
	var out []fakeCharacter
	for _, c := range all {
		if admitted(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b fakeCharacter) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("created %q: %v", s, err)
	}
	return tm
}

// sorted returns chars in the order the API must list them: by the sort key
// in the given direction, ties broken by id in the same direction. Names are
// compared by code point, which is what a database with the C (or C.UTF-8)
// collation does.
func sorted(t testing.TB, chars []fakeCharacter, sort, order string) []fakeCharacter {
	t.Helper()
	out := slices.Clone(chars)
	created := map[int]time.Time{}
	for _, c := range out {
		created[c.ID] = mustTime(t, c.Created)
	}
	slices.SortFunc(out, func(a, b fakeCharacter) int {
		var r int
		switch sort {
		case "name":
			r = strings.Compare(a.Name, b.Name)
		case "created":
			r = created[a.ID].Compare(created[b.ID])
		}
		if r == 0 {
			r = cmp.Compare(a.ID, b.ID)
		}
		if order == "desc" {
			r = -r
		}
		return r
	})
	return out
}

// diffCharacter describes how got differs from the API form of want.
func diffCharacter(got apiCharacter, want fakeCharacter) string {
	var d []string
	field := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("id %d, want %d", got.ID, want.ID))
	}
	field("name", got.Name, want.Name)
	field("status", got.Status, want.Status)
	field("species", got.Species, want.Species)
	field("type", got.Type, want.Type)
	field("gender", got.Gender, want.Gender)
	field("origin", got.Origin, want.Origin.Name)
	field("location", got.Location, want.Location.Name)
	field("image", got.Image, want.Image)
	field("url", got.URL, want.URL)
	gt, gerr := time.Parse(time.RFC3339Nano, got.Created)
	wt, werr := time.Parse(time.RFC3339Nano, want.Created)
	if gerr != nil || werr != nil || !gt.Equal(wt) {
		d = append(d, fmt.Sprintf("created %q, want %q", got.Created, want.Created))
	}
	return strings.Join(d, "; ")
}

// diffListing compares a served listing with the expected one, element by
// element, and summarises duplicates, gaps and strangers.
func diffListing(got []apiCharacter, want []fakeCharacter) error {
	var problems []string
	seen := map[int]int{}
	for _, c := range got {
		seen[c.ID]++
	}
	wantIDs := map[int]bool{}
	for _, c := range want {
		wantIDs[c.ID] = true
	}
	var dups, missing, extra []int
	for id, n := range seen {
		if n > 1 {
			dups = append(dups, id)
		}
		if !wantIDs[id] {
			extra = append(extra, id)
		}
	}
	for _, c := range want {
		if seen[c.ID] == 0 {
			missing = append(missing, c.ID)
		}
	}
	slices.Sort(dups)
	slices.Sort(missing)
	slices.Sort(extra)
	if len(dups) > 0 {
		problems = append(problems, fmt.Sprintf("duplicated ids %v", dups))
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("missing ids %v", missing))
	}
	if len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("ids that must not be served %v", extra))
	}
	if len(got) != len(want) {
		problems = append(problems, fmt.Sprintf("%d characters, want %d", len(got), len(want)))
	}
	if len(problems) == 0 {
		for i := range got {
			if got[i].ID != want[i].ID {
				problems = append(problems, fmt.Sprintf("out of order from position %d: id %d (%q), want id %d (%q)",
					i, got[i].ID, got[i].Name, want[i].ID, want[i].Name))
				break
			}
			if d := diffCharacter(got[i], want[i]); d != "" {
				problems = append(problems, fmt.Sprintf("character %d: %s", want[i].ID, d))
				if len(problems) >= 5 {
					break
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// fakeDo calls the fake's control API and checks the status.
func (s *system) fakeDo(t testing.TB, method, path string, body any, want ...int) response {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.request(method, s.fake+path, b)
	if err != nil {
		t.Fatalf("fake upstream: %s %s: %v", method, path, err)
	}
	if !slices.Contains(want, r.status) {
		t.Fatalf("fake upstream: %s %s: %s, want %v", method, path, r, want)
	}
	return r
}

// resetFake restores the fake's initial data set and clears its faults.
func (s *system) resetFake(t testing.TB) {
	t.Helper()
	s.fakeDo(t, http.MethodPost, "/_fake/reset", nil, http.StatusNoContent, http.StatusOK)
	s.fakeDo(t, http.MethodDelete, "/_fake/faults", nil, http.StatusNoContent, http.StatusOK)
}

// fakeCharacters is the fake's whole current data set.
func (s *system) fakeCharacters(t testing.TB) []fakeCharacter {
	t.Helper()
	r := s.fakeDo(t, http.MethodGet, "/_fake/characters", nil, http.StatusOK)
	var chars []fakeCharacter
	if err := json.Unmarshal(r.body, &chars); err != nil {
		t.Fatalf("fake upstream: GET /_fake/characters: %v", err)
	}
	if len(chars) == 0 {
		t.Fatal("fake upstream: the data set is empty")
	}
	return chars
}

// patchFake merges a partial object into one character of the fake.
func (s *system) patchFake(t testing.TB, id int, patch map[string]any) {
	t.Helper()
	s.fakeDo(t, http.MethodPatch, "/_fake/characters/"+strconv.Itoa(id), patch, http.StatusOK)
}

// addFake adds (or replaces) one character in the fake.
func (s *system) addFake(t testing.TB, c fakeCharacter) {
	t.Helper()
	s.fakeDo(t, http.MethodPost, "/_fake/characters", c, http.StatusCreated, http.StatusOK)
}

// setFaults replaces the fake's fault configuration.
func (s *system) setFaults(t testing.TB, faults string) {
	t.Helper()
	s.fakeDo(t, http.MethodPut, "/_fake/faults", json.RawMessage(faults), http.StatusOK)
}

// fakePages is the number of upstream pages the fake serves now.
func (s *system) fakePages(t testing.TB) int {
	t.Helper()
	r := s.fakeDo(t, http.MethodGet, "/api/character", nil, http.StatusOK)
	var p struct {
		Info struct {
			Pages int `json:"pages"`
		} `json:"info"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || p.Info.Pages < 1 {
		t.Fatalf("fake upstream: GET /api/character: %s (%v)", r, err)
	}
	return p.Info.Pages
}

// pick returns the first character of chars, in id order from the middle
// (so not an edge of any page), for which ok holds and that skip lacks.
func pick(t testing.TB, chars []fakeCharacter, ok func(fakeCharacter) bool, skip ...int) fakeCharacter {
	t.Helper()
	n := len(chars)
	for i := range n {
		c := chars[(n/2+i)%n]
		if ok(c) && !slices.Contains(skip, c.ID) {
			return c
		}
	}
	t.Fatal("the fake's data set has no suitable character")
	return fakeCharacter{}
}

// newCharacter is a character the fake does not have yet, admitted by the
// curation rule, with the next free id.
func newCharacter(all []fakeCharacter, name string) fakeCharacter {
	id := 0
	for _, c := range all {
		id = max(id, c.ID)
	}
	id++
	const api = "https://rickandmortyapi.com/api"
	return fakeCharacter{
		ID: id, Name: name, Status: "Alive", Species: "Human", Type: "", Gender: "Female",
		Origin:   place{Name: "Earth (Replacement Dimension)", URL: api + "/location/20"},
		Location: place{Name: "Citadel of Ricks", URL: api + "/location/3"},
		Image:    fmt.Sprintf("%s/character/avatar/%d.jpeg", api, id),
		Episode:  []string{api + "/episode/1"},
		URL:      fmt.Sprintf("%s/character/%d", api, id),
		Created:  "2021-10-09T08:07:06.543Z",
	}
}
