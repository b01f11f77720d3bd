package fake

import (
	"bytes"
	_ "embed" // for the bundled data set
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

//go:generate go run ./internal/gen -o testdata/characters.json

// bundled is the synthetic data set written by internal/gen: a few hundred
// invented characters covering every case shared/upstream-api.md warns about.
//
//go:embed testdata/characters.json
var bundled []byte

var parsedBundle = sync.OnceValues(func() ([]upstream.Character, error) {
	return LoadDataset(bytes.NewReader(bundled))
})

// Dataset returns the bundled synthetic data set; each call returns a fresh
// copy the caller may modify.
func Dataset() []upstream.Character {
	chars, err := parsedBundle()
	if err != nil {
		panic("fake: bundled data set is broken: " + err.Error())
	}
	return clone(chars)
}

// LoadDataset reads a JSON array of characters, as the upstream encodes them,
// and checks that every id is positive and unique.
func LoadDataset(r io.Reader) ([]upstream.Character, error) {
	var chars []upstream.Character
	dec := json.NewDecoder(r)
	if err := dec.Decode(&chars); err != nil {
		return nil, fmt.Errorf("data set: %w", err)
	}
	if chars == nil {
		return nil, errors.New("data set: want a JSON array, got null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data set: unexpected data after the array")
	}
	if err := validateIDs(chars); err != nil {
		return nil, fmt.Errorf("data set: %w", err)
	}
	return chars, nil
}

func validateIDs(chars []upstream.Character) error {
	seen := make(map[int]bool, len(chars))
	for i, c := range chars {
		if c.ID < 1 {
			return fmt.Errorf("element %d: id %d is not positive", i, c.ID)
		}
		if seen[c.ID] {
			return fmt.Errorf("element %d: duplicate id %d", i, c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}

// addLateArrival appends a character with a new highest id, for the
// CountChangeAfter fault. It passes the exact filter so that a crawl which
// misses it is caught missing a row, not just a count.
func addLateArrival(chars []upstream.Character) []upstream.Character {
	id := 1
	for _, c := range chars {
		id = max(id, c.ID+1)
	}
	const api = "https://rickandmortyapi.com/api"
	return append(chars, upstream.Character{
		ID:       id,
		Name:     "Late Arrival",
		Status:   "Alive",
		Species:  "Human",
		Type:     "",
		Gender:   "Female",
		Origin:   upstream.Place{Name: "Earth (C-137)", URL: api + "/location/1"},
		Location: upstream.Place{Name: "unknown", URL: ""},
		Image:    fmt.Sprintf("%s/character/avatar/%d.jpeg", api, id),
		Episode:  []string{api + "/episode/51"},
		URL:      fmt.Sprintf("%s/character/%d", api, id),
		Created:  "2017-12-31T23:59:59.999Z",
	})
}

// DatasetOfSize returns n characters with ids 1..n, cycling through the
// bundled data set: an upstream of any size with the same mix of cases
// (826 is the real upstream's, for the crawl benchmarks).
func DatasetOfSize(n int) []upstream.Character {
	base := Dataset()
	chars := make([]upstream.Character, n)
	for i := range chars {
		chars[i] = base[i%len(base)]
		chars[i].ID = i + 1
	}
	return chars
}
