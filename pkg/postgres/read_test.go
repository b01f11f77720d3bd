package postgres_test

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

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
	ids := make([]int, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
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
	if got, want := v, version; got != want {
		t.Errorf("version = %d, want %d", got, want)
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
