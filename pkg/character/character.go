// Package character holds the domain: the curated character and the rule that admits one.
package character

import (
	"strings"
	"time"
)

// Character is one curated character with every upstream field a consumer may want.
type Character struct {
	ID           int
	Name         string
	Status       string
	Species      string
	Type         string
	Gender       string
	OriginName   string
	OriginURL    string
	LocationName string
	LocationURL  string
	Image        string
	Episode      []string
	URL          string
	Created      time.Time
}

// The exact values the curated set is defined by. The upstream's own filters
// are case-insensitive substring matches, so these are always applied locally.
const (
	wantSpecies      = "Human"
	wantStatus       = "Alive"
	wantOriginPrefix = "Earth ("
)

// Admit reports whether c belongs in the curated set: a living human born on
// an Earth dimension. Comparisons are exact and case-sensitive: "Humanoid",
// "human", "Post-Apocalyptic Earth" and "unknown" origins are all refused.
func Admit(c Character) bool {
	return c.Species == wantSpecies &&
		c.Status == wantStatus &&
		strings.HasPrefix(c.OriginName, wantOriginPrefix)
}

// The conditions of Admit, as Refusals names them.
const (
	RuleSpecies = "species" // species is exactly "Human"
	RuleStatus  = "status"  // status is exactly "Alive"
	RuleOrigin  = "origin"  // the origin's name starts with "Earth ("
)

// Refusals returns the conditions of Admit that c fails, in the order
// species, status, origin; none when Admit(c). It says why a stored
// character would leave the curated set.
func Refusals(c Character) []string {
	var out []string
	if c.Species != wantSpecies {
		out = append(out, RuleSpecies)
	}
	if c.Status != wantStatus {
		out = append(out, RuleStatus)
	}
	if !strings.HasPrefix(c.OriginName, wantOriginPrefix) {
		out = append(out, RuleOrigin)
	}
	return out
}
