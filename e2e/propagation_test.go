package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestChangePropagation: the upstream's data changes (a character dies, one
// moves to an origin the rule refuses, one is added), an ingest runs, and
// every replica serves the change within propagationDeadline, although each
// has the old answers cached under a long TTL: only the ingester's
// notification can explain it.
func TestChangePropagation(t *testing.T) {
	all, want := sys.baseline(t)
	changes := sys.changeData(t, all, want)
	sys.expectPropagation(t, changes)
}

// change is a small edit of the fake's data set and what it must do to the API.
type change struct {
	gone  []int         // ids the API must stop serving
	added fakeCharacter // a character the API must start serving
	want  []fakeCharacter
}

// changeData warms every replica's cache with the answers the change will
// make stale, proves they are cached, then edits the fake (without an
// ingest yet) and checks the replicas still serve the old data.
func (s *system) changeData(t testing.TB, all, want []fakeCharacter) change {
	t.Helper()
	dies := pick(t, want, func(fakeCharacter) bool { return true })
	moves := pick(t, want, func(fakeCharacter) bool { return true }, dies.ID)
	added := newCharacter(all, "E2E Newcomer")

	// Warm: the listing and the three items, on every replica.
	itemURL := func(api string, id int) string { return api + "/characters/" + strconv.Itoa(id) }
	for _, api := range s.apis {
		s.mustWalk(t, api, "id", "asc", 100)
		for _, id := range []int{dies.ID, moves.ID} {
			if r := s.get(t, itemURL(api, id)); r.status != http.StatusOK {
				t.Fatalf("GET %s: %s, want 200", itemURL(api, id), r)
			}
		}
		if r := s.get(t, itemURL(api, added.ID)); r.status != http.StatusNotFound {
			t.Fatalf("GET %s: %s, want 404 before it exists", itemURL(api, added.ID), r)
		}
	}
	// Prove the answers are cached: asking again is a cache hit.
	for _, api := range s.apis {
		hits := func() float64 {
			v, err := s.metrics(t, api+"/metrics").value("rickmorty_cache_hits_total")
			if err != nil {
				t.Fatalf("%s/metrics: %v", api, err)
			}
			return v
		}
		before := hits()
		s.get(t, itemURL(api, dies.ID))
		s.get(t, listURL(api, "id", "asc", 1, 100))
		if after := hits(); after < before+2 {
			t.Fatalf("%s: rickmorty_cache_hits_total went from %v to %v for two repeated requests: the responses are not cached (is CACHE_TTL long?)",
				api, before, after)
		}
	}

	// The upstream changes.
	s.patchFake(t, dies.ID, map[string]any{"status": "Dead"})
	s.patchFake(t, moves.ID, map[string]any{"origin": map[string]string{"name": "Cronenberg Earth", "url": ""}})
	s.addFake(t, added)
	newWant := curated(s.fakeCharacters(t))
	if len(newWant) != len(want)-1 {
		t.Fatalf("after the edits the fake admits %d characters, want %d", len(newWant), len(want)-1)
	}
	t.Logf("upstream changes: %d (%s) dies, %d (%s) moves to Cronenberg Earth, %d (%s) is added",
		dies.ID, dies.Name, moves.ID, moves.Name, added.ID, added.Name)

	// Nothing reaches the API before an ingest.
	for _, api := range s.apis {
		if err := s.servedBy(api, want); err != nil {
			t.Fatalf("%s changed before any ingest: %v", api, err)
		}
	}
	return change{gone: []int{dies.ID, moves.ID}, added: added, want: newWant}
}

// expectPropagation runs an ingest and requires every replica to serve the
// change within propagationDeadline of the ingest's end.
func (s *system) expectPropagation(t testing.TB, c change) {
	t.Helper()
	s.ingest(t, true)
	took := s.waitAll(t, propagationDeadline, func(api string) error {
		for _, id := range c.gone {
			r, err := s.request(http.MethodGet, api+"/characters/"+strconv.Itoa(id), nil)
			if err != nil {
				return err
			}
			if r.status != http.StatusNotFound {
				return fmt.Errorf("GET /characters/%d: %d, want 404", id, r.status)
			}
		}
		r, err := s.request(http.MethodGet, api+"/characters/"+strconv.Itoa(c.added.ID), nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("GET /characters/%d (added): %d, want 200", c.added.ID, r.status)
		}
		var got apiCharacter
		if err := json.Unmarshal(r.body, &got); err != nil {
			return err
		}
		if d := diffCharacter(got, c.added); d != "" {
			return fmt.Errorf("GET /characters/%d (added): %s", c.added.ID, d)
		}
		return s.servedBy(api, c.want)
	})
	t.Logf("every replica (%d) served the change %s after the ingest ended", len(s.apis), took.Round(time.Millisecond))
	for _, api := range s.apis {
		h, r, err := s.healthcheck(api)
		if err != nil || h.CharacterCount == nil || *h.CharacterCount != len(c.want) {
			t.Errorf("%s/healthcheck: %s (%v), want character_count %d", api, r, err, len(c.want))
		}
	}
}
