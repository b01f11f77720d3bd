package main

import (
	"fmt"
	"time"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

const (
	// total gives 21 pages of 20, the last one partial (13 characters).
	total = 413
	api   = "https://rickandmortyapi.com/api"
	seed  = 20171104
)

// place is an origin or location; id 0 is the upstream's unknown place, whose
// url is the empty string.
type place struct {
	name string
	id   int
}

func (p place) wire() upstream.Place {
	if p.id == 0 {
		return upstream.Place{Name: p.name, URL: ""}
	}
	return upstream.Place{Name: p.name, URL: fmt.Sprintf("%s/location/%d", api, p.id)}
}

var (
	// Origins an ingester keeps: they start with "Earth (".
	c137        = place{"Earth (C-137)", 1}
	replacement = place{"Earth (Replacement Dimension)", 2}
	c500a       = place{"Earth (C-500A)", 3}
	unknownDim  = place{"Earth (Unknown dimension)", 4}
	j19z7       = place{"Earth (J19ζ7)", 5} // non-ASCII
	k22         = place{"Earth (K-22)", 6}
	q88         = place{"Earth (Q-88)", 7}

	// Origins that merely contain "Earth", and near misses of "Earth (".
	postApoc   = place{"Post-Apocalyptic Earth", 8}
	cronenberg = place{"Cronenberg Earth", 9}
	stoltz     = place{"Eric Stoltz Mask Earth", 10}
	lowerEarth = place{"earth (C-137)", 11} // wrong case
	noSpace    = place{"Earth(C-137)", 12}  // no space before the parenthesis

	unknownPlace = place{"unknown", 0}

	// Invented elsewheres.
	glimmerhold = place{"Glimmerhold Citadel", 13}
	vornax      = place{"Vornax Prime", 14}
	zetaDrift   = place{"Zeta Drift Station", 15}
	kelpMoon    = place{"Moon of Kelp", 16}
	bramblecore = place{"Bramblecore Nebula", 17}
	quibble     = place{"Outer Quibble", 18}
	customs     = place{"Snorp Dimension Customs", 19}
)

// The filler distributions are tuned so that roughly 30% of all characters pass
// the exact filter while the server-side filters still return many near misses.
var (
	speciesDist = []weighted[string]{
		{70, "Human"}, {12, "Alien"}, {6, "Humanoid"}, {5, "Robot"}, {4, "Animal"},
		{3, "Mythological Creature"}, {2, "Cronenberg"}, {2, "Disease"}, {2, "unknown"},
	}
	statusDist = []weighted[string]{{70, "Alive"}, {20, "Dead"}, {10, "unknown"}}
	genderDist = []weighted[string]{{46, "Male"}, {36, "Female"}, {7, "Genderless"}, {11, "unknown"}}
	typeDist   = []weighted[string]{
		{78, ""}, {3, "Parasite"}, {3, "Clone"}, {3, "Fish-Person"}, {3, "Shape-shifter"},
		{3, "Hologram"}, {3, "Gene experiment"}, {2, "Robot-Humanoid"}, {2, "Sentient goo"},
	}
	originDist = []weighted[place]{
		{30, c137}, {18, replacement}, {6, c500a}, {6, unknownDim}, {4, j19z7}, {4, k22}, {3, q88},
		{5, postApoc}, {5, cronenberg}, {3, stoltz},
		{3, glimmerhold}, {3, vornax}, {3, zetaDrift}, {2, kelpMoon}, {2, bramblecore}, {2, quibble},
		{8, unknownPlace},
	}
	locationDist = []weighted[place]{
		{14, c137}, {18, replacement}, {4, c500a}, {3, j19z7}, {4, postApoc}, {4, cronenberg},
		{10, glimmerhold}, {6, vornax}, {6, zetaDrift}, {5, kelpMoon}, {5, bramblecore},
		{5, quibble}, {8, customs}, {8, unknownPlace},
	}

	firstParts  = []string{"Bla", "Zor", "Fen", "Quib", "Mar", "Tel", "Vex", "Nu", "Pli", "Gor", "Sha", "Dro", "Kin", "Lum", "Yav", "Ost", "Bri", "Cal", "Dez", "Elo", "Fro", "Hap", "Ima", "Jol"}
	firstEnds   = []string{"bo", "la", "na", "wen", "dle", "zy", "ko", "pa", "ssa", "tik", "vin", "ra"}
	lastParts   = []string{"Fenn", "Harr", "Plix", "Quor", "Vash", "Drumm", "Kettle", "Blom", "Sorr", "Wimble", "Tapp", "Grizz"}
	lastEndings = []string{"wick", "by", "ton", "stein", "ley", "more", "sworth", "dale"}
)

// special is a hand-placed character that pins down one tricky case. Many sit
// on page boundaries (20/21, 40/41, ...) and the last id, where off-by-one
// paging bugs show. Fields left empty keep the filler's value.
type special struct {
	id       int
	name     string
	species  string
	status   string
	gender   string
	typ      *string
	origin   place
	location *place
	why      string // documentation only; not emitted
}

func ptr[T any](v T) *T { return &v }

var specials = []special{
	{id: 1, name: "Pell Harrow", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "the plain keeper, first id"},
	{id: 2, name: "Wendeline Harrow", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: replacement, why: "keeper from the Replacement Dimension"},
	{id: 20, name: "Osk Brimble", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: c500a, why: "keeper, last of page 1"},
	{id: 21, name: "Ivi Tarrow", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: unknownDim, why: "keeper, first of page 2, same created as id 20"},
	{id: 33, name: "Zoë Ångström", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: j19z7, why: "non-ASCII name and origin"},
	{id: 40, name: "Hobart Quell", species: "Humanoid", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "Humanoid is not Human, but species=human returns it"},
	{id: 41, name: "Marn Vetch", species: "human", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "lower-case species"},
	{id: 57, name: "Tibbs Ollander", species: "Human ", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "species with a trailing space"},
	{id: 60, name: "Greer Paddock", species: "Human", status: "Dead", gender: "Female", typ: ptr(""), origin: c137, why: "dead"},
	{id: 61, name: "Ulla Brisk", species: "Human", status: "unknown", gender: "Female", typ: ptr(""), origin: c137, why: "status unknown"},
	{id: 75, name: "Cosmo Fitch", species: "Human", status: "alive", gender: "Male", typ: ptr(""), origin: c137, why: "lower-case status"},
	{id: 80, name: "Dorn Wexley", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: postApoc, why: "origin contains Earth but does not start with Earth ("},
	{id: 81, name: "Fae Lindqvist", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: cronenberg, why: "Cronenberg Earth"},
	{id: 99, name: "Rollo Thimble", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: stoltz, why: "Eric Stoltz Mask Earth"},
	{id: 100, name: "Tally Fenwick", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: c137, why: "duplicate name (1 of 5)"},
	{id: 101, name: "Tally Fenwick", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: replacement, why: "duplicate name, same created as id 100"},
	{id: 120, name: "Tally Fenwick", species: "Human", status: "Dead", gender: "Female", typ: ptr(""), origin: c137, why: "duplicate name, dead"},
	{id: 121, name: "Jürgen Plixmann", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "non-ASCII name"},
	{id: 140, name: "Tally Fenwick", species: "Humanoid", status: "Alive", gender: "Female", typ: ptr(""), origin: c137, why: "duplicate name, Humanoid"},
	{id: 141, name: "山田 花子", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: replacement, why: "CJK name"},
	{id: 160, name: "Tally Fenwick", species: "Human", status: "Alive", gender: "Female", typ: ptr("Clone"), origin: c500a, why: "duplicate name with a type"},
	{id: 161, name: "Glorp 🛸", species: "Human", status: "Alive", gender: "Genderless", typ: ptr("Hologram"), origin: c137, why: "character outside the BMP (a UTF-16 surrogate pair)"},
	{id: 180, name: "Ñandú Ortega", species: "Alien", status: "Alive", gender: "Male", typ: ptr(""), origin: j19z7, why: "non-ASCII name, not Human"},
	{id: 181, name: "Bexa Norn", species: "Human", status: "Alive", gender: "Female", typ: ptr(""), origin: lowerEarth, why: "origin earth (C-137) in lower case"},
	{id: 200, name: "Quill Sorrow", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: noSpace, why: "origin Earth(C-137) without the space"},
	{id: 201, name: "Nobody Known", species: "Human", status: "Alive", gender: "unknown", typ: ptr(""), origin: unknownPlace, location: &unknownPlace, why: "unknown origin and location, url empty"},
	{id: 220, name: "Ab & <Co>", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "characters HTML escaping would mangle"},
	{id: 221, name: "Mr. Snorble (Clone)", species: "Human", status: "Alive", gender: "Male", typ: ptr("Clone"), origin: c137, why: "regular-expression punctuation in a name"},
	{id: 240, name: "Dr. X.Y. Zed", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: replacement, why: "name=X.Y must match this literally"},
	{id: 241, name: "XaY Zed", species: "Alien", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "name=X.Y would match this if . were not escaped"},
	{id: 260, name: "Gorbo Vexley", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "duplicate name (1 of 3)"},
	{id: 261, name: "Gorbo Vexley", species: "Robot", status: "Dead", gender: "Male", typ: ptr(""), origin: vornax, why: "duplicate name, robot"},
	{id: 280, name: "Gorbo Vexley", species: "Human", status: "Alive", gender: "Genderless", typ: ptr(""), origin: unknownDim, why: "duplicate name, genderless"},
	{id: 300, name: "Pim Quorra", species: "Human", status: "Alive", gender: "Female", typ: ptr("Gene experiment"), origin: c137, why: "a non-empty type still passes"},
	{id: 320, name: "Sasha Fennimore", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: replacement, location: &unknownPlace, why: "keeper with an unknown location"},
	{id: 340, name: "Hex Malloway", species: "Human", status: "Alive", gender: "Genderless", typ: ptr(""), origin: k22, why: "genderless keeper"},
	{id: 400, name: "Velda Prunk", species: "Human", status: "Dead", gender: "Female", typ: ptr(""), origin: q88, why: "dead, on the last page"},
	{id: 413, name: "Omar Lastly", species: "Human", status: "Alive", gender: "Male", typ: ptr(""), origin: c137, why: "keeper, the very last id"},
}

// sameCreatedAsPrevious forces ties in created, for sort tie-breaking tests;
// a few more ties come from the random walk.
var sameCreatedAsPrevious = map[int]bool{21: true, 101: true}

// generate builds the data set. Every id gets a random filler first, so the
// random sequence does not depend on the specials, then the specials overlay it.
func generate() []upstream.Character {
	r := &rng{state: seed}
	created := time.Date(2017, 11, 4, 18, 48, 46, 250e6, time.UTC)
	chars := make([]upstream.Character, total)
	for i := range chars {
		id := i + 1
		tie := r.intN(100) < 6
		if id > 1 && !tie && !sameCreatedAsPrevious[id] {
			created = created.Add(time.Duration(1+r.intN(3*3600*1000)) * time.Millisecond)
		}
		chars[i] = filler(r, id, created)
	}
	for _, s := range specials {
		c := &chars[s.id-1]
		c.Name, c.Species, c.Status, c.Gender = s.name, s.species, s.status, s.gender
		c.Origin = s.origin.wire()
		if s.typ != nil {
			c.Type = *s.typ
		}
		if s.location != nil {
			c.Location = s.location.wire()
		}
	}
	return chars
}

func filler(r *rng, id int, created time.Time) upstream.Character {
	name := oneOf(r, firstParts) + oneOf(r, firstEnds) + " " + oneOf(r, lastParts) + oneOf(r, lastEndings)
	return upstream.Character{
		ID:       id,
		Name:     name,
		Status:   pick(r, statusDist),
		Species:  pick(r, speciesDist),
		Type:     pick(r, typeDist),
		Gender:   pick(r, genderDist),
		Origin:   pick(r, originDist).wire(),
		Location: pick(r, locationDist).wire(),
		Image:    fmt.Sprintf("%s/character/avatar/%d.jpeg", api, id),
		Episode:  episodes(r),
		URL:      fmt.Sprintf("%s/character/%d", api, id),
		Created:  created.Format("2006-01-02T15:04:05.000Z"),
	}
}

// episodes picks 1 to 6 distinct episodes out of 51, in ascending order.
func episodes(r *rng) []string {
	n := 1 + r.intN(6)
	var seen [52]bool
	for picked := 0; picked < n; {
		e := 1 + r.intN(51)
		if !seen[e] {
			seen[e] = true
			picked++
		}
	}
	out := make([]string, 0, n)
	for e, ok := range seen {
		if ok {
			out = append(out, fmt.Sprintf("%s/episode/%d", api, e))
		}
	}
	return out
}
