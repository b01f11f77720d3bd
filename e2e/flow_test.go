package e2e

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

// TestFullFlow: after an ingest from the fake upstream, every replica lists
// exactly the characters the curation rule admits, in every sort order, over
// every page, with no duplicates or gaps, and serves each one by id.
func TestFullFlow(t *testing.T) {
	all, want := sys.baseline(t)
	t.Logf("the fake holds %d characters; %d are admitted", len(all), len(want))

	// Page sizes: the API's default, one that leaves a short last page, and
	// the largest.
	sizes := []int{20, 7, 100}
	for _, api := range sys.apis {
		for _, sort := range []string{"id", "name", "created"} {
			listings := map[string]listing{}
			for _, order := range []string{"asc", "desc"} {
				expected := sorted(t, want, sort, order)
				for _, size := range sizes {
					name := fmt.Sprintf("%s/sort=%s/order=%s/page_size=%d", api, sort, order, size)
					l := sys.mustWalk(t, api, sort, order, size)
					if sort == "name" && sys.nameOrder == "db" {
						// The database's collation decides; check the rest.
						if err := sameSet(l.chars, want); err != nil {
							t.Errorf("%s: %v", name, err)
						}
						if err := tiesByID(l.chars, order); err != nil {
							t.Errorf("%s: %v", name, err)
						}
					} else if err := diffListing(l.chars, expected); err != nil {
						hint := ""
						if sort == "name" {
							hint = fmt.Sprintf(" (names are expected in code point order, as the C collation sorts them; if the names themselves are out of order because the database sorts by a language's collation, set %s=db)", envNameOrder)
						}
						t.Errorf("%s: %v%s", name, err, hint)
					}
					if prev, ok := listings[order]; ok && !sameIDs(prev.chars, l.chars) {
						t.Errorf("%s: the order differs from the same listing at another page size", name)
					}
					listings[order] = l
				}
			}
			// Ties are broken by id in the same direction, so descending is
			// exactly ascending reversed.
			asc, desc := listings["asc"].chars, slices.Clone(listings["desc"].chars)
			slices.Reverse(desc)
			if !sameIDs(asc, desc) {
				t.Errorf("%s: sort=%s: order=desc is not the reverse of order=asc", api, sort)
			}
		}
	}

	// Every curated character by id, on every replica; others are 404.
	for _, api := range sys.apis {
		for _, c := range want {
			var got apiCharacter
			sys.getJSON(t, api+"/characters/"+strconv.Itoa(c.ID), &got)
			if d := diffCharacter(got, c); d != "" {
				t.Errorf("%s/characters/%d: %s", api, c.ID, d)
			}
		}
		refused := 0
		for _, c := range all {
			if admitted(c) || refused >= 25 {
				continue
			}
			refused++
			r := sys.get(t, api+"/characters/"+strconv.Itoa(c.ID))
			if r.status != http.StatusNotFound {
				t.Errorf("%s/characters/%d (%s, %s, %s, from %q, which the rule refuses): %s, want 404",
					api, c.ID, c.Name, c.Species, c.Status, c.Origin.Name, r)
			}
		}
	}

	// The deep health check agrees with the listing.
	for _, api := range sys.apis {
		h, r, err := sys.healthcheck(api)
		switch {
		case err != nil:
			t.Errorf("%s/healthcheck: %v", api, err)
		case r.status != http.StatusOK || h.Status != "ok" || !h.DBOK || !h.ListenerConnected:
			t.Errorf("%s/healthcheck: %s, want 200, status ok, db_ok and listener_connected", api, r)
		case h.CharacterCount == nil || *h.CharacterCount != len(want):
			t.Errorf("%s/healthcheck: character_count %v, want %d", api, h.CharacterCount, len(want))
		case h.LastRefreshAge == nil || *h.LastRefreshAge < 0 || *h.LastRefreshAge > 600:
			t.Errorf("%s/healthcheck: last_refresh_age %v right after an ingest", api, h.LastRefreshAge)
		}
	}
}

func sameIDs(a, b []apiCharacter) bool {
	return slices.EqualFunc(a, b, func(x, y apiCharacter) bool { return x.ID == y.ID })
}

// sameSet checks that got holds exactly want's characters, once each, with
// the right fields, in any order.
func sameSet(got []apiCharacter, want []fakeCharacter) error {
	g := slices.Clone(got)
	slices.SortFunc(g, func(a, b apiCharacter) int { return cmp.Compare(a.ID, b.ID) })
	return diffListing(g, want)
}

// tiesByID checks that characters with equal names are adjacent and ordered
// by id in the listing's direction.
func tiesByID(chars []apiCharacter, order string) error {
	last := map[string]int{}
	for i, c := range chars {
		if j, ok := last[c.Name]; ok {
			if j != i-1 {
				return fmt.Errorf("characters named %q are not adjacent (positions %d and %d)", c.Name, j, i)
			}
			prev := chars[j].ID
			if (order == "asc" && prev > c.ID) || (order == "desc" && prev < c.ID) {
				return fmt.Errorf("characters named %q: id %d before %d in %s order", c.Name, prev, c.ID, order)
			}
		}
		last[c.Name] = i
	}
	return nil
}
