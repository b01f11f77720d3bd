package main

import (
	"bytes"
	"os"
	"testing"
)

// The bundled file is what the fake serves; this program is how it is made.
// They must not drift apart, or the next `go generate` silently changes fixtures.
func TestCommittedFileIsCurrent(t *testing.T) {
	want, err := encode(generate())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../testdata/characters.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("testdata/characters.json is stale: run `go generate` in pkg/upstream/fake")
	}
}

func TestSpecialsAreInRangeAndDistinct(t *testing.T) {
	seen := map[int]bool{}
	for _, s := range specials {
		if s.id < 1 || s.id > total {
			t.Errorf("special %q has id %d outside 1..%d", s.name, s.id, total)
		}
		if seen[s.id] {
			t.Errorf("id %d is used by two specials", s.id)
		}
		seen[s.id] = true
	}
}
