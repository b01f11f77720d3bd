package postgres

import (
	"fmt"
	"strings"

	"github.com/rickmorty/rickmorty/pkg/character"
)

// What one character row may hold. Postgres refuses a NUL byte in text
// outright, and a btree index entry larger than about a third of a page
// (characters_name_id_idx) fails the whole merge; the other bounds keep a
// hostile upstream from filling the table with megabytes per row. The
// upstream's real values are a few dozen bytes.
const (
	maxNameBytes  = 1024      // indexed: well under the btree entry limit
	maxFieldBytes = 16 << 10  // any other text field, each episode URL
	maxEpisodes   = 10_000    // episode URLs of one character
	maxRowBytes   = 256 << 10 // everything together
)

// Reasons a character is rejected, the reason label of
// rickmorty_ingest_rejected_total.
const (
	RejectNULByte      = "nul_byte"
	RejectNameTooLong  = "name_too_long"
	RejectFieldTooLong = "field_too_long"
	RejectTooLarge     = "too_large"
)

// Rejections lists every reason, for metrics that start at zero.
var Rejections = []string{RejectNULByte, RejectNameTooLong, RejectFieldTooLong, RejectTooLarge}

// Rejection is a character the store cannot hold, and why.
type Rejection struct {
	ID     int
	Reason string
	Detail string
}

func (r Rejection) String() string { return fmt.Sprintf("%d: %s (%s)", r.ID, r.Reason, r.Detail) }

// Storable splits chars into those a row can hold and those it cannot.
func Storable(chars []character.Character) (ok []character.Character, rejected []Rejection) {
	ok = chars[:0:0]
	for _, c := range chars {
		if r, bad := check(c); bad {
			rejected = append(rejected, r)
			continue
		}
		ok = append(ok, c)
	}
	return ok, rejected
}

func check(c character.Character) (Rejection, bool) {
	fields := []struct{ name, value string }{
		{"name", c.Name}, {"status", c.Status}, {"species", c.Species}, {"type", c.Type}, {"gender", c.Gender},
		{"origin", c.OriginName}, {"origin_url", c.OriginURL}, {"location", c.LocationName},
		{"location_url", c.LocationURL}, {"image", c.Image}, {"url", c.URL},
	}
	total := 0
	for _, f := range fields {
		if strings.IndexByte(f.value, 0) >= 0 {
			return Rejection{c.ID, RejectNULByte, f.name + " holds a NUL byte"}, true
		}
		if f.name == "name" && len(f.value) > maxNameBytes {
			return Rejection{c.ID, RejectNameTooLong, fmt.Sprintf("name is %d bytes, the limit is %d", len(f.value), maxNameBytes)}, true
		}
		if len(f.value) > maxFieldBytes {
			return Rejection{c.ID, RejectFieldTooLong, fmt.Sprintf("%s is %d bytes, the limit is %d", f.name, len(f.value), maxFieldBytes)}, true
		}
		total += len(f.value)
	}
	if len(c.Episode) > maxEpisodes {
		return Rejection{c.ID, RejectTooLarge, fmt.Sprintf("%d episodes, the limit is %d", len(c.Episode), maxEpisodes)}, true
	}
	for _, e := range c.Episode {
		if strings.IndexByte(e, 0) >= 0 {
			return Rejection{c.ID, RejectNULByte, "an episode URL holds a NUL byte"}, true
		}
		if len(e) > maxFieldBytes {
			return Rejection{c.ID, RejectFieldTooLong, fmt.Sprintf("an episode URL is %d bytes, the limit is %d", len(e), maxFieldBytes)}, true
		}
		total += len(e)
	}
	if total > maxRowBytes {
		return Rejection{c.ID, RejectTooLarge, fmt.Sprintf("the row is %d bytes, the limit is %d", total, maxRowBytes)}, true
	}
	return Rejection{}, false
}
