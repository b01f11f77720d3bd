package fake_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

func passes(c upstream.Character) bool {
	return c.Species == "Human" && c.Status == "Alive" && strings.HasPrefix(c.Origin.Name, "Earth (")
}

func TestDatasetShape(t *testing.T) {
	data := fake.Dataset()
	n := len(data)
	if n < 300 || n > 420 {
		t.Errorf("N = %d, want 300..420", n)
	}
	if n/upstream.PageSize < 15 || n%upstream.PageSize == 0 {
		t.Errorf("N = %d: want more than 15 pages and a partial last page", n)
	}
	for i, c := range data {
		if got, want := c.ID, i+1; got != want {
			t.Fatalf("ids must be 1..N in order: data[%d].id = %d", i, got)
		}
	}

	passing := 0
	for _, c := range data {
		if passes(c) {
			passing++
		}
	}
	if share := float64(passing) / float64(n); share < 0.25 || share > 0.35 {
		t.Errorf("%d of %d pass the exact filter (%.1f%%), want 25-35%%", passing, n, 100*share)
	}
}

func TestDatasetFieldFormats(t *testing.T) {
	created := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	const api = "https://rickandmortyapi.com/api/"
	seenCreated := map[string]bool{}
	ties := 0
	for _, c := range fake.Dataset() {
		if !created.MatchString(c.Created) {
			t.Errorf("id %d: created %q is not in the upstream's format", c.ID, c.Created)
		}
		if seenCreated[c.Created] {
			ties++
		}
		seenCreated[c.Created] = true
		if c.URL != api+"character/"+itoa(c.ID) || c.Image != api+"character/avatar/"+itoa(c.ID)+".jpeg" {
			t.Errorf("id %d: url %q, image %q", c.ID, c.URL, c.Image)
		}
		if len(c.Episode) == 0 {
			t.Errorf("id %d: no episodes", c.ID)
		}
		for _, e := range c.Episode {
			if !strings.HasPrefix(e, api+"episode/") {
				t.Errorf("id %d: episode %q", c.ID, e)
			}
		}
		for _, p := range []upstream.Place{c.Origin, c.Location} {
			if (p.Name == "unknown") != (p.URL == "") || (p.URL != "" && !strings.HasPrefix(p.URL, api+"location/")) {
				t.Errorf("id %d: place %+v", c.ID, p)
			}
		}
	}
	if ties == 0 {
		t.Error("no two characters share a created time; sorting ties go untested")
	}
}

// Every trap shared/upstream-api.md describes must be in the data, so a test
// crawling it meets them all.
func TestDatasetHasEveryTrickyCase(t *testing.T) {
	data := fake.Dataset()
	names := map[string]int{}
	for _, c := range data {
		names[c.Name]++
	}
	humanAlive := func(origin string) func(upstream.Character) bool {
		return func(c upstream.Character) bool {
			return c.Species == "Human" && c.Status == "Alive" && c.Origin.Name == origin
		}
	}
	cases := map[string]func(upstream.Character) bool{
		"keeper from Earth (C-137)":                 humanAlive("Earth (C-137)"),
		"keeper from Earth (Replacement Dimension)": humanAlive("Earth (Replacement Dimension)"),
		"keeper from Earth (C-500A)":                humanAlive("Earth (C-500A)"),
		"keeper from Earth (Unknown dimension)":     humanAlive("Earth (Unknown dimension)"),
		"keeper from Earth (J19ζ7)":                 humanAlive("Earth (J19ζ7)"),
		"Post-Apocalyptic Earth":                    humanAlive("Post-Apocalyptic Earth"),
		"Cronenberg Earth":                          humanAlive("Cronenberg Earth"),
		"Eric Stoltz Mask Earth":                    humanAlive("Eric Stoltz Mask Earth"),
		"lower-case earth (C-137)":                  humanAlive("earth (C-137)"),
		"Earth(C-137) without space":                humanAlive("Earth(C-137)"),
		"unknown origin with empty url": func(c upstream.Character) bool {
			return c.Origin == upstream.Place{Name: "unknown", URL: ""}
		},
		"species Humanoid":         func(c upstream.Character) bool { return c.Species == "Humanoid" },
		"species human":            func(c upstream.Character) bool { return c.Species == "human" },
		"species with space":       func(c upstream.Character) bool { return c.Species == "Human " },
		"status Dead":              func(c upstream.Character) bool { return c.Status == "Dead" },
		"status unknown":           func(c upstream.Character) bool { return c.Status == "unknown" },
		"status alive":             func(c upstream.Character) bool { return c.Status == "alive" },
		"gender Female":            func(c upstream.Character) bool { return c.Gender == "Female" },
		"gender Male":              func(c upstream.Character) bool { return c.Gender == "Male" },
		"gender Genderless":        func(c upstream.Character) bool { return c.Gender == "Genderless" },
		"gender unknown":           func(c upstream.Character) bool { return c.Gender == "unknown" },
		"empty type":               func(c upstream.Character) bool { return c.Type == "" },
		"non-empty type":           func(c upstream.Character) bool { return c.Type != "" },
		"duplicate name, keepers":  func(c upstream.Character) bool { return names[c.Name] > 1 && passes(c) },
		"duplicate name, rejected": func(c upstream.Character) bool { return names[c.Name] > 1 && !passes(c) },
		"non-ASCII name":           func(c upstream.Character) bool { return utf8.RuneCountInString(c.Name) != len(c.Name) },
		"CJK name":                 func(c upstream.Character) bool { return strings.ContainsRune(c.Name, '山') },
		"name outside the BMP": func(c upstream.Character) bool {
			return strings.ContainsFunc(c.Name, func(r rune) bool { return r > 0xFFFF })
		},
		"HTML-significant name": func(c upstream.Character) bool { return strings.ContainsAny(c.Name, "<&") },
	}
	for name, match := range cases {
		found := false
		for _, c := range data {
			if match(c) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no character for case %q", name)
		}
	}
}

func TestDatasetIsAFreshCopy(t *testing.T) {
	a := fake.Dataset()
	a[0].Name = "mutated"
	a[0].Episode[0] = "mutated"
	if b := fake.Dataset(); b[0].Name == "mutated" || b[0].Episode[0] == "mutated" {
		t.Error("Dataset returned shared memory")
	}
}

func TestLoadDataset(t *testing.T) {
	chars, err := fake.LoadDataset(strings.NewReader(`[{"id":2,"name":"B"},{"id":1,"name":"A"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(chars), 2; got != want {
		t.Errorf("len = %d, want %d", got, want)
	}
	for _, bad := range []string{``, `null`, `{}`, `[{"id":1}] x`, `[{"id":-1}]`, `[{"id":3},{"id":3}]`, `[{"id":"1"}]`} {
		if _, err := fake.LoadDataset(strings.NewReader(bad)); err == nil {
			t.Errorf("LoadDataset(%q): no error", bad)
		}
	}
}
