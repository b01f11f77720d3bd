package ingest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// Plan is what a sync of the upstream, as crawled now, would change in the
// stored data, worked out without writing anything: the same crawl and
// filter as a run, compared with the stored rows field by field as the
// sync compares them, and the mass-delete guard's verdict on it.
type Plan struct {
	Pages, Fetched, Kept int   // of the crawl, as a run records them
	Stored               int   // characters stored now
	DataVersion          int64 // the version of the stored data the plan compares with
	MaxDeleteRatio       float64
	Inserts              []Insert // by id
	Updates              []Update // by id
	Deletes              []Delete // by id
	Unchanged            int      // stored characters the sync would leave as they are
	// Guard is the mass-delete guard's refusal (it wraps postgres.ErrGuard),
	// or nil when a sync would be accepted.
	Guard error
}

// Refused reports whether the mass-delete guard would refuse the sync.
func (p Plan) Refused() bool { return p.Guard != nil }

// Insert is a character the sync would add.
type Insert struct {
	ID     int
	Name   string
	Origin string // the origin's name
}

// Update is a stored character the sync would change.
type Update struct {
	ID      int
	Name    string // as stored; a new name shows among the changes
	Changes []Change
}

// Change is one field of an Update. Field is the field's JSON name (the
// API's, and the upstream's for the fields the API does not serve:
// origin.url, location.url, episode). Old and New are strings, except for
// episode, whose are lists of episode URLs.
type Change struct {
	Field    string
	Old, New any
}

// Delete is a stored character the sync would remove.
type Delete struct {
	ID      int
	Name    string   // as stored
	Reasons []string // why the character leaves: Reason* values, at least one
}

// Why a stored character leaves the curated set.
const (
	ReasonVanished       = "vanished upstream" // the upstream no longer lists its id
	ReasonDied           = "died"              // its status is now "Dead"
	ReasonStatusChanged  = "status changed"    // its status is now neither "Alive" nor "Dead"
	ReasonSpeciesChanged = "species changed"   // its species is no longer "Human"
	ReasonOriginChanged  = "origin changed"    // its origin no longer starts with "Earth ("
)

// Plan crawls and filters exactly as Run does and compares the result with
// the stored data. It takes no lock, records no run and writes nothing;
// the stored data is read in one read-only transaction after the crawl.
// A crawl or a read that fails returns an error; a sync the guard would
// refuse is a Plan whose Guard is set.
func (r *Runner) Plan(ctx context.Context) (Plan, error) {
	ctx, span := r.tracer.Start(ctx, "ingest.plan")
	defer span.End()
	if r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	res, err := r.crawl(ctx)
	if err != nil {
		failSpan(span, err)
		return Plan{}, fmt.Errorf("crawl: %w", err)
	}
	kept, err := Filter(res.Characters)
	if err != nil {
		failSpan(span, err)
		return Plan{}, err
	}
	stored, err := r.store.Stored(ctx)
	if err != nil {
		failSpan(span, err)
		return Plan{}, err
	}
	p := NewPlan(stored, res.Characters, kept, postgres.SyncOptions{MaxDeleteRatio: r.opts.MaxDeleteRatio})
	p.Pages = res.Pages
	span.SetAttributes(
		attribute.Int("ingest.pages", p.Pages),
		attribute.Int("ingest.fetched", p.Fetched),
		attribute.Int("ingest.kept", p.Kept),
		attribute.Int("ingest.stored", p.Stored),
		attribute.Int("plan.insert", len(p.Inserts)),
		attribute.Int("plan.update", len(p.Updates)),
		attribute.Int("plan.delete", len(p.Deletes)),
		attribute.Bool("plan.refused", p.Refused()),
	)
	return p, nil
}

// NewPlan compares the stored set with a crawl: fetched is every character
// the crawl brought, kept those Filter admitted. Characters are compared on
// every column a sync writes, as it compares them (see planFields).
func NewPlan(stored postgres.StoredSet, fetched []upstream.Character, kept []character.Character, opts postgres.SyncOptions) Plan {
	p := Plan{
		Fetched: len(fetched), Kept: len(kept), Stored: len(stored.Characters),
		DataVersion: stored.DataVersion, MaxDeleteRatio: opts.MaxDeleteRatio,
	}
	old := make(map[int]character.Character, len(stored.Characters))
	for _, c := range stored.Characters {
		old[c.ID] = c
	}
	admitted := make(map[int]bool, len(kept))
	for _, c := range kept {
		admitted[c.ID] = true
		s, ok := old[c.ID]
		if !ok {
			p.Inserts = append(p.Inserts, Insert{ID: c.ID, Name: c.Name, Origin: c.OriginName})
			continue
		}
		if changes := diff(s, c); len(changes) > 0 {
			p.Updates = append(p.Updates, Update{ID: c.ID, Name: s.Name, Changes: changes})
		} else {
			p.Unchanged++
		}
	}
	upstreamByID := make(map[int]upstream.Character, len(fetched))
	for _, u := range fetched {
		upstreamByID[u.ID] = u
	}
	for _, s := range stored.Characters {
		if admitted[s.ID] {
			continue
		}
		d := Delete{ID: s.ID, Name: s.Name, Reasons: []string{ReasonVanished}}
		if u, ok := upstreamByID[s.ID]; ok {
			d.Reasons = reasons(u)
		}
		p.Deletes = append(p.Deletes, d)
	}
	byID := cmp.Compare[int]
	slices.SortFunc(p.Inserts, func(a, b Insert) int { return byID(a.ID, b.ID) })
	slices.SortFunc(p.Updates, func(a, b Update) int { return byID(a.ID, b.ID) })
	slices.SortFunc(p.Deletes, func(a, b Delete) int { return byID(a.ID, b.ID) })
	p.Guard = postgres.Guard(p.Stored, len(p.Deletes), p.Kept, opts)
	return p
}

// reasons says why the upstream's record u is no longer admitted.
func reasons(u upstream.Character) []string {
	var out []string
	for _, rule := range character.Refusals(character.Character{Species: u.Species, Status: u.Status, OriginName: u.Origin.Name}) {
		switch {
		case rule == character.RuleStatus && u.Status == "Dead":
			out = append(out, ReasonDied)
		case rule == character.RuleStatus:
			out = append(out, ReasonStatusChanged)
		case rule == character.RuleSpecies:
			out = append(out, ReasonSpeciesChanged)
		case rule == character.RuleOrigin:
			out = append(out, ReasonOriginChanged)
		}
	}
	return out
}

// planFields are the columns a sync compares (postgres.Sync's IS DISTINCT
// FROM list, every column but id), by their JSON names, with each value as
// the database holds it: episodes never nil, created to the microsecond.
var planFields = []struct {
	name  string
	value func(character.Character) any
}{
	{"name", func(c character.Character) any { return c.Name }},
	{"status", func(c character.Character) any { return c.Status }},
	{"species", func(c character.Character) any { return c.Species }},
	{"type", func(c character.Character) any { return c.Type }},
	{"gender", func(c character.Character) any { return c.Gender }},
	{"origin", func(c character.Character) any { return c.OriginName }},
	{"origin.url", func(c character.Character) any { return c.OriginURL }},
	{"location", func(c character.Character) any { return c.LocationName }},
	{"location.url", func(c character.Character) any { return c.LocationURL }},
	{"image", func(c character.Character) any { return c.Image }},
	{"episode", func(c character.Character) any {
		if c.Episode == nil {
			return []string{}
		}
		return c.Episode
	}},
	{"url", func(c character.Character) any { return c.URL }},
	{"created", func(c character.Character) any {
		return c.Created.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
	}},
}

// diff lists the fields in which the stored s and the crawled c differ.
func diff(s, c character.Character) []Change {
	var out []Change
	for _, f := range planFields {
		o, n := f.value(s), f.value(c)
		if equal(o, n) {
			continue
		}
		out = append(out, Change{Field: f.name, Old: o, New: n})
	}
	return out
}

func equal(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs, _ := b.([]string)
		return slices.Equal(as, bs)
	}
	return a == b
}
