package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

func openPool(t *testing.T, url string, cfg postgres.PoolConfig) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.OpenPool(context.Background(), url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// counter reads one labelled series of a counter vector from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// TestReadsGoToAStandbyMonotonicallyAndSurviveItsOutage runs on a real
// primary and a hot standby that applies commits a second late.
func TestReadsGoToAStandbyMonotonicallyAndSurviveItsOutage(t *testing.T) {
	t.Parallel()
	primary := pgtest.StartPrimary(t)
	standby := primary.StartStandby(t, time.Second)
	v1 := apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Upsert: apitest.Characters(5)})
	standby.WaitReplayed(t, primary)

	reg := prometheus.NewRegistry()
	var seen atomic.Int64 // the highest version "served", as the API's cache keeps it
	store := postgres.NewStore(
		openPool(t, primary.DatabaseURL(), postgres.PoolConfig{ReadOnly: true}),
		reg,
		postgres.WithReplica(openPool(t, standby.DatabaseURL(), postgres.PoolConfig{ReadOnly: true, Pooled: true, ConnectTimeout: time.Second})),
		postgres.WithMinVersion(seen.Load),
	)
	reads := func(target string) float64 { return counter(t, reg, "rickmorty_db_reads_total", "target", target) }
	fallbacks := func(reason string) float64 {
		return counter(t, reg, "rickmorty_db_replica_fallbacks_total", "reason", reason)
	}
	ctx := context.Background()
	list := func() character.Page {
		t.Helper()
		p, err := store.List(ctx, character.DefaultListQuery())
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		seen.Store(max(seen.Load(), p.Version))
		return p
	}

	if p := list(); p.Version != v1 || reads("replica") != 1 || reads("primary") != 0 {
		t.Fatalf("version %d; reads replica %v primary %v: want %d from the replica", p.Version, reads("replica"), reads("primary"), v1)
	}

	// A change the pod has heard of (its version is the minimum now) while
	// the standby has not applied it yet: the replica's answer is too old
	// and the primary's is served.
	v2 := apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Delete: []int{5}})
	seen.Store(v2)
	if p := list(); p.Version != v2 || p.TotalCount != 4 {
		t.Errorf("lagging standby: served version %d with %d rows, want %d with 4", p.Version, p.TotalCount, v2)
	}
	if got := fallbacks("lag"); got != 1 {
		t.Errorf("lag fallbacks = %v, want 1", got)
	}
	if _, snap, err := store.Get(ctx, 5); character.ErrorCode(err) != character.ENOTFOUND || snap.Version != v2 {
		t.Errorf("Get(5) on a lagging standby = version %d, %v; want not found at %d", snap.Version, err, v2)
	}
	standby.WaitReplayed(t, primary)
	before := reads("replica")
	if p := list(); p.Version != v2 || reads("replica") != before+1 {
		t.Errorf("caught-up standby: version %d, replica reads %v -> %v; want %d from it", p.Version, before, reads("replica"), v2)
	}

	// The standby goes away: reads go to the primary, without errors.
	standby.Stop()
	primaryBefore := reads("primary")
	for range 20 {
		if p := list(); p.Version != v2 {
			t.Fatalf("standby down: version %d, want %d", p.Version, v2)
		}
	}
	if got := reads("primary") - primaryBefore; got != 20 {
		t.Errorf("standby down: %v of 20 reads on the primary", got)
	}
	if fallbacks("error") < 1 || fallbacks("down") < 1 {
		t.Errorf("fallbacks error %v, down %v: want both counted", fallbacks("error"), fallbacks("down"))
	}
	if store.ReplicaUp() {
		t.Error("ReplicaUp with the standby stopped")
	}

	// It comes back: reads return to it (after at most the backoff).
	standby.Start()
	before = reads("replica")
	deadline := time.Now().Add(30 * time.Second)
	for reads("replica") == before {
		if time.Now().After(deadline) {
			t.Fatal("reads did not return to the standby after it came back")
		}
		list()
		time.Sleep(20 * time.Millisecond)
	}
	if !store.ReplicaUp() {
		t.Error("ReplicaUp false after the standby answered again")
	}
}

// TestEveryReadWorksThroughPgBouncerInTransactionMode sends every Store
// query, concurrently, through a real PgBouncer in transaction pooling mode,
// where consecutive statements of one client run on different server
// sessions (no named prepared statements survive).
func TestEveryReadWorksThroughPgBouncerInTransactionMode(t *testing.T) {
	t.Parallel()
	primary := pgtest.StartPrimary(t)
	version := apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Upsert: apitest.Characters(30)})
	_, viaBouncer := pgtest.StartPgBouncer(t, primary, 3)
	cfg := postgres.PoolConfig{ReadOnly: true, Pooled: true, MaxConns: 12}
	store := postgres.NewStore(openPool(t, viaBouncer, cfg), nil, postgres.WithReplica(openPool(t, viaBouncer, cfg)))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Go(func() {
			for i := range 15 {
				sorts := []string{character.SortID, character.SortName, character.SortCreated}
				q := character.ListQuery{Sort: sorts[(w+i)%3], Order: character.OrderDesc, Page: 1 + i%3, PageSize: 7}
				if p, err := store.List(ctx, q); err != nil || p.Version != version || len(p.Results) != 7 {
					t.Errorf("List(%+v) = version %d, %d rows, %v", q, p.Version, len(p.Results), err)
					return
				}
				if c, _, err := store.Get(ctx, 1+(w+i)%30); err != nil || c.ID == 0 {
					t.Errorf("Get: %v", err)
					return
				}
				if st, err := store.Stats(ctx); err != nil || st.CharacterCount != 30 {
					t.Errorf("Stats = %+v, %v", st, err)
					return
				}
				if v, err := store.DataVersion(ctx); err != nil || v != version {
					t.Errorf("DataVersion = %d, %v", v, err)
					return
				}
				if _, _, err := store.SchemaVersion(ctx); err != nil {
					t.Errorf("SchemaVersion: %v", err)
					return
				}
				if err := store.Ping(ctx); err != nil {
					t.Errorf("Ping: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
