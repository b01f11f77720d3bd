package ingest_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/ingest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// ingestRunCount is how many rows ingest_runs holds.
func ingestRunCount(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM ingest_runs").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPlanPredictsTheSyncExactly: on the same upstream, the plan's counts
// are the counts of the run that follows, it names every kind of change
// with its reason, and it writes nothing (no row, no version, no run).
func TestPlanPredictsTheSyncExactly(t *testing.T) {
	e := newEnv(t)

	// Empty table: everything is an insert.
	p, err := e.runner.Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	kept := admitted(e.fake.Characters())
	if len(p.Inserts) != len(kept) || len(p.Updates)+len(p.Deletes)+p.Unchanged != 0 || p.Refused() {
		t.Errorf("plan over an empty table: %d inserts (want %d), %d updates, %d deletes, %d unchanged, guard %v",
			len(p.Inserts), len(kept), len(p.Updates), len(p.Deletes), p.Unchanged, p.Guard)
	}
	if n := ingestRunCount(t, e); n != 0 {
		t.Errorf("the plan recorded %d runs", n)
	}
	e.mustRun(t)

	died, moved, relocated, vanished, turned, untouched := kept[0], kept[1], kept[2], kept[3], kept[4], kept[5]
	newID := 0
	e.fake.Update(func(chars []upstream.Character) []upstream.Character {
		out := chars[:0]
		for _, c := range chars {
			switch c.ID {
			case died.ID:
				c.Status = "Dead"
			case moved.ID:
				c.Origin = upstream.Place{Name: "Cronenberg Earth", URL: ""}
			case relocated.ID:
				c.Location = upstream.Place{Name: "Citadel of Ricks", URL: "https://rickandmortyapi.com/api/location/3"}
				c.Episode = append(slices.Clone(c.Episode), "https://rickandmortyapi.com/api/episode/51")
			case vanished.ID:
				continue
			case turned.ID:
				c.Species = "Humanoid"
				c.Status = "unknown"
			}
			newID = max(newID, c.ID)
			out = append(out, c)
		}
		n := untouched
		n.ID, n.Name = newID+1, "Newcomer Smith"
		return append(out, n)
	})

	before, version, runs := tableDigest(t, e.pool), dataVersion(t, e.pool), ingestRunCount(t, e)
	p, err = e.runner.Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if tableDigest(t, e.pool) != before || dataVersion(t, e.pool) != version || ingestRunCount(t, e) != runs {
		t.Error("the plan wrote something")
	}
	if p.Refused() || p.DataVersion != version || p.Stored != len(kept) {
		t.Errorf("guard %v, data version %d (want %d), stored %d (want %d)", p.Guard, p.DataVersion, version, p.Stored, len(kept))
	}

	if want := []ingest.Insert{{ID: newID + 1, Name: "Newcomer Smith", Origin: untouched.Origin.Name}}; !reflect.DeepEqual(p.Inserts, want) {
		t.Errorf("inserts = %+v, want %+v", p.Inserts, want)
	}
	wantChanges := []ingest.Change{
		{Field: "location", Old: relocated.Location.Name, New: "Citadel of Ricks"},
		{Field: "location.url", Old: relocated.Location.URL, New: "https://rickandmortyapi.com/api/location/3"},
		{Field: "episode", Old: relocated.Episode, New: append(slices.Clone(relocated.Episode), "https://rickandmortyapi.com/api/episode/51")},
	}
	if len(p.Updates) != 1 || p.Updates[0].ID != relocated.ID || p.Updates[0].Name != relocated.Name || !reflect.DeepEqual(p.Updates[0].Changes, wantChanges) {
		t.Errorf("updates = %+v\nwant one for %d with %+v", p.Updates, relocated.ID, wantChanges)
	}
	wantDeletes := []ingest.Delete{
		{ID: died.ID, Name: died.Name, Reasons: []string{ingest.ReasonDied}},
		{ID: moved.ID, Name: moved.Name, Reasons: []string{ingest.ReasonOriginChanged}},
		{ID: vanished.ID, Name: vanished.Name, Reasons: []string{ingest.ReasonVanished}},
		{ID: turned.ID, Name: turned.Name, Reasons: []string{ingest.ReasonSpeciesChanged, ingest.ReasonStatusChanged}},
	}
	slices.SortFunc(wantDeletes, func(a, b ingest.Delete) int { return a.ID - b.ID })
	if !reflect.DeepEqual(p.Deletes, wantDeletes) {
		t.Errorf("deletes = %+v\nwant %+v", p.Deletes, wantDeletes)
	}
	if got, want := p.Unchanged, len(kept)-len(p.Updates)-len(p.Deletes); got != want {
		t.Errorf("unchanged = %d, want %d", got, want)
	}

	sum := e.mustRun(t)
	if got, want := [3]int{sum.Inserted, sum.Updated, sum.Deleted}, [3]int{len(p.Inserts), len(p.Updates), len(p.Deletes)}; got != want {
		t.Errorf("the run inserted, updated, deleted %v; the plan said %v", got, want)
	}

	// After the sync the plan finds nothing to do.
	p, err = e.runner.Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if len(p.Inserts)+len(p.Updates)+len(p.Deletes) != 0 || p.Unchanged != sum.Stored || p.Refused() {
		t.Errorf("plan after the sync: %d/%d/%d changes, %d unchanged (want %d), guard %v",
			len(p.Inserts), len(p.Updates), len(p.Deletes), p.Unchanged, sum.Stored, p.Guard)
	}
}

// TestPlanUsesTheSyncsGuard: the plan refuses exactly what the run
// refuses, and the refused run is recorded as refused, not failed.
func TestPlanUsesTheSyncsGuard(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	kept := admitted(e.fake.Characters())
	keep := map[int]bool{}
	for _, c := range kept[:len(kept)*4/10] {
		keep[c.ID] = true
	}
	e.fake.Update(func(chars []upstream.Character) []upstream.Character {
		return slices.DeleteFunc(chars, func(c upstream.Character) bool { return character.Admit(toDomain(c)) && !keep[c.ID] })
	})

	p, err := e.runner.Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if !p.Refused() || !errors.Is(p.Guard, postgres.ErrGuard) {
		t.Errorf("plan guard = %v, want the mass-delete guard's refusal", p.Guard)
	}
	if got, want := len(p.Deletes), len(kept)-len(keep); got != want {
		t.Errorf("plan deletes %d, want %d", got, want)
	}
	_, runErr := e.runner.Run(context.Background(), false)
	if !errors.Is(runErr, postgres.ErrGuard) || runErr.Error() != p.Guard.Error() {
		t.Errorf("run error %q, plan guard %q: want the same refusal", runErr, p.Guard)
	}
	if r := lastRun(t, e.pool); r.Result != postgres.ResultRefused {
		t.Errorf("the refused run is recorded as %q, want refused", r.Result)
	}
}

func TestPlanFailsWhenTheCrawlFails(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	e.fake.SetFaults(fake.Faults{FailPages: map[int]int{2: -1}})
	p, err := e.runner.Plan(context.Background())
	if err == nil || !strings.Contains(err.Error(), "page 2") {
		t.Fatalf("Plan over a failing crawl = %+v, %v; want an error naming page 2", p.Guard, err)
	}
}

// TestPlanComparesEveryColumnTheSyncWrites changes each field of a stored
// character in turn: the plan must report exactly that field, and a sync
// must update the row, so the plan's comparison and the sync's agree.
func TestPlanComparesEveryColumnTheSyncWrites(t *testing.T) {
	base := character.Character{
		ID: 7, Name: "Rick", Status: "Alive", Species: "Human", Type: "", Gender: "Male",
		OriginName: "Earth (C-137)", OriginURL: "o", LocationName: "Earth (C-137)", LocationURL: "l",
		Image: "i", Episode: []string{"e1"}, URL: "u", Created: time.Date(2017, 11, 4, 18, 48, 46, 250e6, time.UTC),
	}
	edits := map[string]func(*character.Character){
		"name":         func(c *character.Character) { c.Name = "Morty" },
		"type":         func(c *character.Character) { c.Type = "Clone" },
		"gender":       func(c *character.Character) { c.Gender = "unknown" },
		"origin":       func(c *character.Character) { c.OriginName = "Earth (Replacement Dimension)" },
		"origin.url":   func(c *character.Character) { c.OriginURL = "o2" },
		"location":     func(c *character.Character) { c.LocationName = "Citadel" },
		"location.url": func(c *character.Character) { c.LocationURL = "l2" },
		"image":        func(c *character.Character) { c.Image = "i2" },
		"episode":      func(c *character.Character) { c.Episode = []string{"e2"} },
		"url":          func(c *character.Character) { c.URL = "u2" },
		"created":      func(c *character.Character) { c.Created = c.Created.Add(time.Millisecond) },
	}
	// Every field of Character but the id and the two the rule pins
	// (status, species: a change there is a delete) has an edit here.
	typ := reflect.TypeFor[character.Character]()
	if got, want := len(edits), typ.NumField()-3; got != want {
		t.Fatalf("%d edits for %d comparable fields of character.Character: a field was added; add it to the sync, the plan and this test", got, want)
	}
	for field, edit := range edits {
		c := base
		c.Episode = slices.Clone(base.Episode)
		edit(&c)
		p := ingest.NewPlan(postgres.StoredSet{Characters: []character.Character{base}}, nil, []character.Character{c}, postgres.SyncOptions{MaxDeleteRatio: 0.5})
		if len(p.Updates) != 1 || len(p.Updates[0].Changes) != 1 || p.Updates[0].Changes[0].Field != field {
			t.Errorf("%s changed: plan updates = %+v, want one change of %s", field, p.Updates, field)
		}
	}
	// What the database cannot tell apart is no change: nil and empty
	// episode lists, created below the microsecond, another time zone.
	same := base
	same.Episode = []string{"e1"}
	same.Created = base.Created.Add(300 * time.Nanosecond).In(time.FixedZone("X", 3600))
	stored := base
	stored.Episode = nil
	c := same
	c.Episode = []string{}
	for _, pair := range [][2]character.Character{{base, same}, {stored, c}} {
		p := ingest.NewPlan(postgres.StoredSet{Characters: []character.Character{pair[0]}}, nil, []character.Character{pair[1]}, postgres.SyncOptions{})
		if len(p.Updates) != 0 || p.Unchanged != 1 {
			t.Errorf("plan of equal rows: updates %+v", p.Updates)
		}
	}
}

func TestPlanGuardEdgeCases(t *testing.T) {
	opts := postgres.SyncOptions{MaxDeleteRatio: 0.5}
	row := func(id int) character.Character {
		return character.Character{ID: id, Name: "x", Status: "Alive", Species: "Human", OriginName: "Earth (C-137)"}
	}
	// Nothing stored, nothing crawled: nothing to do, accepted.
	if p := ingest.NewPlan(postgres.StoredSet{}, nil, nil, opts); p.Refused() || p.Unchanged+len(p.Inserts)+len(p.Deletes) != 0 {
		t.Errorf("empty plan: %+v", p)
	}
	// Rows stored, the crawl keeps none: refused.
	if p := ingest.NewPlan(postgres.StoredSet{Characters: []character.Character{row(1)}}, nil, nil, opts); !p.Refused() {
		t.Errorf("empty crawl over stored rows: guard %v, want refused", p.Guard)
	}
	// Exactly half deleted: accepted, as the sync accepts it.
	p := ingest.NewPlan(postgres.StoredSet{Characters: []character.Character{row(1), row(2)}}, nil, []character.Character{row(1)}, opts)
	if p.Refused() || len(p.Deletes) != 1 || p.Deletes[0].Reasons[0] != ingest.ReasonVanished {
		t.Errorf("half deleted: guard %v, deletes %+v", p.Guard, p.Deletes)
	}
}

// TestRefusedRunIsCountedApart: a refused sync is counted as refused, not
// failed, and every result is exported from the start.
func TestRefusedRunIsCountedApart(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	m := ingest.NewMetrics(reg)
	client := upstream.New(upstream.Config{BaseURL: e.url, Timeout: 5 * time.Second, Concurrency: 4}, quietLog(), nil)
	r := ingest.NewRunner(client, postgres.NewIngests(e.pool), quietLog(), m, ingest.Options{MaxDeleteRatio: 0.5})
	for _, result := range []string{"success", "failed", "refused", "locked"} {
		if got := testutil.ToFloat64(m.Runs.WithLabelValues(result)); got != 0 {
			t.Errorf("runs_total{result=%q} = %v before any run", result, got)
		}
	}
	if _, err := r.Run(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	e.fake.SetCharacters(e.fake.Characters()[:20])
	if _, err := r.Run(context.Background(), false); !errors.Is(err, postgres.ErrGuard) {
		t.Fatalf("Run = %v, want the guard", err)
	}
	for result, want := range map[string]float64{"success": 1, "failed": 0, "refused": 1} {
		if got := testutil.ToFloat64(m.Runs.WithLabelValues(result)); got != want {
			t.Errorf("runs_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if got := testutil.CollectAndCount(m.Duration); got != 3 {
		t.Errorf("duration_seconds has %d series, want 3 (success, failed, refused)", got)
	}
}
