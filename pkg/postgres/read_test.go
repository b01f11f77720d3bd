package postgres_test

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

// expectedOrder sorts ids the way the API promises: by the sort key, ties
// by id, both in the requested direction.
func expectedOrder(all []character.Character, sort, order string) []int {
	cs := slices.Clone(all)
	slices.SortFunc(cs, func(a, b character.Character) int {
		var c int
		switch sort {
		case character.SortName:
			c = cmp.Compare(a.Name, b.Name)
		case character.SortCreated:
			c = a.Created.Compare(b.Created)
		}
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
		}
		if order == character.OrderDesc {
			c = -c
		}
		return c
	})
	return idsOf(cs)
}

func TestListWalksEverySortAndOrderAcrossPages(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.NewPool(t)
	all := apitest.Characters(23)
	version := apitest.Ingest(t, dbURL, apitest.Change{Upsert: all})
	store := postgres.NewStore(pool, nil)
	ctx := context.Background()

	for _, sort := range []string{character.SortID, character.SortName, character.SortCreated} {
		for _, order := range []string{character.OrderAsc, character.OrderDesc} {
			want := expectedOrder(all, sort, order)
			for _, size := range []int{1, 5, 7, 23, 100} {
				var got []int
				seen := map[int]bool{}
				for page := 1; ; page++ {
					q := character.ListQuery{Sort: sort, Order: order, Page: page, PageSize: size}
					p, err := store.List(ctx, q)
					if err != nil {
						t.Fatalf("List(%+v): %v", q, err)
					}
					if got, want := p.TotalCount, len(all); got != want {
						t.Fatalf("%+v: total_count = %d, want %d", q, got, want)
					}
					if got, want := p.Version, version; got != want {
						t.Fatalf("%+v: version = %d, want %d", q, got, want)
					}
					if p.OutOfRange {
						if page != (len(all)+size-1)/size+1 {
							t.Fatalf("%+v: out of range at page %d", q, page)
						}
						if len(p.Results) != 0 || p.HasNext || p.HasPrev {
							t.Fatalf("%+v: out-of-range page = %+v", q, p)
						}
						break
					}
					if len(p.Results) == 0 || len(p.Results) > size {
						t.Fatalf("%+v: %d results", q, len(p.Results))
					}
					for _, c := range p.Results {
						if seen[c.ID] {
							t.Fatalf("%s %s size %d: id %d on two pages", sort, order, size, c.ID)
						}
						seen[c.ID] = true
						got = append(got, c.ID)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s %s size %d: order\n got %v\nwant %v", sort, order, size, got, want)
				}
			}
		}
	}
}

func TestListReturnsEveryExposedField(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.NewPool(t)
	want := apitest.Characters(1)[0]
	apitest.Ingest(t, dbURL, apitest.Change{Upsert: []character.Character{want}})
	p, err := postgres.NewStore(pool, nil).List(context.Background(), character.DefaultListQuery())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Results), 1; got != want {
		t.Fatalf("results = %d, want %d", got, want)
	}
	got := p.Results[0]
	// Episodes and URLs of origin and location are not exposed, so not read.
	want.Episode, want.OriginURL, want.LocationURL = nil, "", ""
	if !got.Created.Equal(want.Created) {
		t.Errorf("created = %v, want %v", got.Created, want.Created)
	}
	got.Created = want.Created
	if got.Name != want.Name || got.Status != want.Status || got.Species != want.Species || got.Type != want.Type ||
		got.Gender != want.Gender || got.OriginName != want.OriginName || got.LocationName != want.LocationName ||
		got.Image != want.Image || got.URL != want.URL || got.ID != want.ID {
		t.Errorf("character = %+v, want %+v", got, want)
	}
}

func TestListEmptySet(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	store := postgres.NewStore(pool, nil)
	ctx := context.Background()

	p, err := store.List(ctx, character.DefaultListQuery())
	if err != nil {
		t.Fatal(err)
	}
	if p.OutOfRange || p.TotalCount != 0 || p.TotalPages != 0 || p.HasNext || p.HasPrev || len(p.Results) != 0 {
		t.Errorf("page 1 of nothing = %+v, want in range and empty", p)
	}
	p, err = store.List(ctx, character.DefaultListQuery().WithPage(2))
	if err != nil {
		t.Fatal(err)
	}
	if !p.OutOfRange || p.HasPrev {
		t.Errorf("page 2 of nothing = %+v, want out of range without prev", p)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.NewPool(t)
	version := apitest.Ingest(t, dbURL, apitest.Change{Upsert: apitest.Characters(3)})
	store := postgres.NewStore(pool, nil)
	ctx := context.Background()

	c, v, err := store.Get(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ID, 2; got != want {
		t.Errorf("id = %d, want %d", got, want)
	}
	if got, want := v.Version, version; got != want {
		t.Errorf("version = %d, want %d", got, want)
	}
	if v.Modified.IsZero() || time.Since(v.Modified) > time.Minute || time.Until(v.Modified) > time.Minute {
		t.Errorf("modified = %v, want about now (the ingest's commit)", v.Modified)
	}
	for _, id := range []int{0, -1, 4, 1 << 40, character.MaxID} {
		if _, _, err := store.Get(ctx, id); character.ErrorCode(err) != character.ENOTFOUND {
			t.Errorf("Get(%d) error = %v, want ENOTFOUND", id, err)
		}
	}
}

func TestStatsDataVersionAndSchemaVersion(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.NewPool(t)
	store := postgres.NewStore(pool, nil)
	ctx := context.Background()

	st, err := store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastSuccess.IsZero() || st.CharacterCount != 0 || st.DataVersion != 0 {
		t.Errorf("stats before any ingest = %+v", st)
	}

	version := apitest.Ingest(t, dbURL, apitest.Change{Upsert: apitest.Characters(4)})
	st, err = store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.CharacterCount, 4; got != want {
		t.Errorf("count = %d, want %d", got, want)
	}
	if got, want := st.DataVersion, version; got != want {
		t.Errorf("data version = %d, want %d", got, want)
	}
	if st.LastSuccess.IsZero() || st.LastSuccessAge < 0 || st.LastSuccessAge > time.Minute {
		t.Errorf("last success = %v, age %v; want just now", st.LastSuccess, st.LastSuccessAge)
	}
	if v, err := store.DataVersion(ctx); err != nil || v != version {
		t.Errorf("DataVersion = %d, %v; want %d", v, err, version)
	}

	v, dirty, err := store.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v, int64(db.SchemaVersion); got != want || dirty {
		t.Errorf("schema version = %d (dirty %v), want %d clean", got, dirty, want)
	}
}

func TestStoreReportsUnavailableWhenDatabaseIsDown(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.New(t)
	proxy, viaProxy := pgtest.NewProxy(t, dbURL)
	pool, err := postgres.OpenPool(context.Background(), viaProxy, postgres.PoolConfig{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewStore(pool, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := store.List(ctx, character.DefaultListQuery()); err != nil {
		t.Fatal(err)
	}
	proxy.Down()
	_, err = store.List(ctx, character.DefaultListQuery())
	if got, want := character.ErrorCode(err), character.EUNAVAILABLE; got != want {
		t.Errorf("error code = %q (%v), want %q", got, err, want)
	}
	proxy.Up()
	if _, err := store.List(ctx, character.DefaultListQuery()); err != nil {
		t.Errorf("after the database returned: %v", err)
	}
}

// filterCast are characters whose fields exercise the filters: mixed case,
// LIKE's wildcards and escape character as plain text, every gender
// spelling the upstream uses, and non-ASCII names.
func filterCast() []character.Character {
	all := apitest.Characters(12)
	set := func(i int, name, gender, origin, location string) {
		all[i].Name, all[i].Gender, all[i].OriginName, all[i].LocationName = name, gender, origin, location
	}
	set(0, "Rick Sanchez", "Male", "Earth (C-137)", "Citadel of Ricks")
	set(1, "rICK the Tiny", "Male", "Earth (Replacement Dimension)", "Earth (C-137)")
	set(2, "Beth Smith", "Female", "Earth (C-137)", "Earth (Replacement Dimension)")
	set(3, "100% Real Beth", "Female", "Earth (Replacement Dimension)", "Citadel of Ricks")
	set(4, "under_score", "Genderless", "Earth (K-83)", "Anatomy Park")
	set(5, `back\slash`, "unknown", "Earth (K-83)", "Anatomy Park")
	set(6, "Ünïcode Smith", "unknown", "Earth (Unicode)", "Ünïverse")
	set(7, "underXscore", "Genderless", "Earth (C-500A)", "Citadel of Ricks")
	set(8, "1000 Real Beth", "Female", "Earth (C-137)", "Earth (C-137)")
	set(9, "Morty Smith", "Male", "Earth (C-137)", "Citadel of Ricks")
	set(10, "Summer Smith", "Female", "Earth (Replacement Dimension)", "Earth (Replacement Dimension)")
	set(11, "Jerry Smith", "Male", "Earth (C-137)", "Earth (C-137)")
	return all
}

// matches is the reference for a filter: an ASCII-case-insensitive
// substring (any database folds ASCII case; beyond it, the database's ctype
// decides, so the cast spells non-ASCII filters in their stored case).
func matches(c character.Character, f character.Filter) bool {
	has := func(field, sub string) bool {
		return sub == "" || strings.Contains(asciiLower(field), asciiLower(sub))
	}
	return has(c.Name, f.Name) && has(c.OriginName, f.Origin) && has(c.LocationName, f.Location) &&
		(f.Gender == "" || asciiLower(c.Gender) == f.Gender)
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func TestListFiltersAgreeWithTheReferenceAcrossSortsAndPages(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.NewPool(t)
	all := filterCast()
	version := apitest.Ingest(t, dbURL, apitest.Change{Upsert: all})
	store := postgres.NewStore(pool, nil)
	ctx := context.Background()

	filters := []character.Filter{
		{Name: "rick"}, {Name: "RICK"}, {Name: "smith"}, {Name: "%"}, {Name: "_"}, {Name: `\`}, {Name: "0%"},
		{Name: "under_"}, {Name: "Ünï"}, {Name: "nobody"}, {Name: " "},
		{Origin: "earth (c-137)"}, {Origin: "replacement"}, {Origin: "("},
		{Location: "citadel"}, {Location: "Ünïverse"}, {Location: "earth"},
		{Gender: character.GenderFemale}, {Gender: character.GenderMale}, {Gender: character.GenderGenderless}, {Gender: character.GenderUnknown},
		{Name: "smith", Gender: character.GenderFemale},
		{Name: "beth", Origin: "replacement", Location: "citadel", Gender: character.GenderFemale},
		{Origin: "c-137", Location: "c-137"},
		{Name: "smith", Location: "earth", Gender: character.GenderMale},
	}
	for _, f := range filters {
		var want []character.Character
		for _, c := range all {
			if matches(c, f) {
				want = append(want, c)
			}
		}
		for _, sort := range []string{character.SortID, character.SortName, character.SortCreated} {
			for _, order := range []string{character.OrderAsc, character.OrderDesc} {
				wantIDs := expectedOrder(want, sort, order)
				for _, size := range []int{1, 2, 100} {
					var got []int
					for page := 1; ; page++ {
						q := character.ListQuery{Sort: sort, Order: order, Page: page, PageSize: size, Filter: f}
						p, err := store.List(ctx, q)
						if err != nil {
							t.Fatalf("List(%+v): %v", q, err)
						}
						if p.TotalCount != len(want) || p.Version != version {
							t.Fatalf("%+v: total %d at version %d, want %d at %d", q, p.TotalCount, p.Version, len(want), version)
						}
						got = append(got, idsOf(p.Results)...)
						if !p.HasNext {
							break
						}
					}
					if !slices.Equal(got, wantIDs) {
						t.Errorf("%+v %s %s size %d:\n got %v\nwant %v", f, sort, order, size, got, wantIDs)
					}
				}
			}
		}
	}
	if t.Failed() {
		return
	}
	// Every filter narrows something: the cast is not trivially matched.
	if p, _ := store.List(ctx, character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 100, Filter: character.Filter{Name: "%"}}); p.TotalCount != 1 {
		t.Errorf(`name "%%" matched %d characters, want only the one with a percent sign`, p.TotalCount)
	}
}

func idsOf(cs []character.Character) []int {
	ids := make([]int, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

func TestListReportsWhenItsVersionWasCommitted(t *testing.T) {
	t.Parallel()
	pool, dbURL := pgtest.NewPool(t)
	store := postgres.NewStore(pool, nil)
	ctx := context.Background()
	q := character.DefaultListQuery()

	before := time.Now()
	apitest.Ingest(t, dbURL, apitest.Change{Upsert: apitest.Characters(2)})
	first, err := store.List(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if first.Modified.Before(before.Add(-time.Second)) || first.Modified.After(time.Now().Add(time.Second)) {
		t.Errorf("modified = %v, want between %v and now", first.Modified, before)
	}
	time.Sleep(10 * time.Millisecond)
	apitest.Ingest(t, dbURL, apitest.Change{Delete: []int{2}})
	second, err := store.List(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Modified.After(first.Modified) {
		t.Errorf("a later version's modified %v is not after the earlier %v", second.Modified, first.Modified)
	}
	_, snap, err := store.Get(ctx, 1)
	if err != nil || !snap.Modified.Equal(second.Modified) || snap.Version != second.Version {
		t.Errorf("Get's snapshot %+v (%v), want the list's %+v", snap, err, second.Snapshot)
	}
}

// TestTextFiltersReadTheirIndexNotTheTable plans each text filter over a
// table large enough that the planner has a choice, and fails if any plan
// scans the characters table instead of using the filter's trigram index.
func TestTextFiltersReadTheirIndexNotTheTable(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	seedForPlans(t, pool)
	for _, tc := range []struct {
		filter character.Filter
		index  string
	}{
		{character.Filter{Name: "c4ca4238"}, "characters_name_trgm_idx"},
		// The shortest text the API accepts (character.MinFilterWord).
		{character.Filter{Name: "zq9"}, "characters_name_trgm_idx"}, // rare, as a narrowing filter is
		{character.Filter{Origin: "8f14e45f"}, "characters_origin_name_trgm_idx"},
		{character.Filter{Location: "c51ce410"}, "characters_location_name_trgm_idx"},
	} {
		for _, sort := range []string{character.SortID, character.SortName} {
			q := character.ListQuery{Sort: sort, Order: character.OrderAsc, Page: 1, PageSize: 20, Filter: tc.filter}
			stmt, args, err := postgres.ListSQL(q)
			if err != nil {
				t.Fatal(err)
			}
			plan := explain(t, pool, stmt, args)
			if strings.Contains(plan, "Seq Scan on characters") || !strings.Contains(plan, tc.index) {
				t.Errorf("%+v sorted by %s: the plan does not use %s:\n%s", tc.filter, sort, tc.index, plan)
			}
		}
	}
}

// TestTooShortFiltersWouldScanTheTable is why the API refuses text filters
// without character.MinFilterWord letters or digits in a row: text that
// yields no trigram makes Postgres read the whole table.
func TestTooShortFiltersWouldScanTheTable(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	seedForPlans(t, pool)
	stmt, args, err := postgres.ListSQL(character.ListQuery{Sort: character.SortID, Order: character.OrderAsc, Page: 1, PageSize: 20,
		Filter: character.Filter{Name: "c4"}})
	if err != nil {
		t.Fatal(err)
	}
	if plan := explain(t, pool, stmt, args); !strings.Contains(plan, "Seq Scan on characters") {
		t.Errorf("a two-letter filter no longer scans the table; character.MinFilterWord may be lowered:\n%s", plan)
	}
}

// seedForPlans stores 50,000 characters with distinct names, origins and
// locations (md5 digests) and analyses them: enough rows that the planner
// weighs an index against reading the table.
func seedForPlans(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
INSERT INTO characters (id, name, status, species, type, gender, origin_name, origin_url,
	location_name, location_url, image, episode, url, created)
SELECT i, 'Person ' || md5(i::text), 'Alive', 'Human', '', 'Female',
	'Earth (' || md5((i * 7)::text) || ')', '', 'Place ' || md5((i * 13)::text), '', '', '{}', '', now()
FROM generate_series(1, 50000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE characters"); err != nil {
		t.Fatal(err)
	}
}

func explain(t *testing.T, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, stmt string, args []any) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "EXPLAIN "+stmt, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	return strings.Join(lines, "\n")
}
