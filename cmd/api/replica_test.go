package main

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
)

// etagVersion reads the data version out of an ETag `"v<n>"`.
func etagVersion(t *testing.T, r resp) int64 {
	t.Helper()
	tag := r.header.Get("ETag")
	// "v<version>" for identity, "v<version>-<coding>" for a compressed answer.
	num, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(tag, `"v`), `"`), "-")
	v, err := strconv.ParseInt(num, 10, 64)
	if r.status != 200 || err != nil {
		t.Fatalf("status %d, ETag %q: %s", r.status, tag, r.body)
	}
	return v
}

// TestPodsNeverServeAnOlderVersionWithALaggingStandby runs two pods that
// read from a real hot standby applying commits 1.5 s late. After an
// ingest, once a pod has served the new version (or heard of it), it never
// serves the old one again, and every pod serves the new one at once.
func TestPodsNeverServeAnOlderVersionWithALaggingStandby(t *testing.T) {
	t.Parallel()
	primary := pgtest.StartPrimary(t)
	standby := primary.StartStandby(t, 1500*time.Millisecond)
	apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Upsert: apitest.Characters(40)})
	standby.WaitReplayed(t, primary)
	env := map[string]string{
		"DATABASE_URL": primary.DatabaseURL(), "DATABASE_READ_URL": standby.DatabaseURL(), "CACHE_TTL": "1h",
	}
	pods := []*api{startAPI(t, maps.Clone(env)), startAPI(t, maps.Clone(env))}
	var paths []string
	for i := 1; i <= 15; i++ {
		paths = append(paths, fmt.Sprintf("/characters?page_size=%d", i), fmt.Sprintf("/characters/%d", i))
	}
	paths = append(paths, "/characters/40")
	for _, p := range pods {
		for _, path := range paths {
			p.get(path) // warm: every key cached at the first version
		}
	}

	v2 := apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Delete: []int{40}})
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Go(func() {
			var seen int64
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				// What the pod has heard of (the notification) counts as seen.
				seen = max(seen, int64(p.metric("rickmorty_cache_data_version")))
				for _, path := range paths {
					r := p.get(path)
					if path == "/characters/40" {
						if r.status == 404 {
							seen = max(seen, v2)
						} else if seen >= v2 {
							t.Errorf("pod %d: %s answered %d after version %d was served", i, path, r.status, v2)
						}
						continue
					}
					v := etagVersion(t, r)
					if v < seen {
						t.Errorf("pod %d: %s served version %d after %d", i, path, v, seen)
					}
					seen = max(seen, v)
				}
			}
			for _, path := range paths[:len(paths)-1] {
				if v := etagVersion(t, p.get(path)); v != v2 {
					t.Errorf("pod %d: %s at version %d after 3 s, want %d", i, path, v, v2)
				}
			}
		})
	}
	wg.Wait()
	var lag float64
	for _, p := range pods {
		lag += p.metric(`rickmorty_db_replica_fallbacks_total{reason="lag"}`)
		if p.metric(`rickmorty_db_reads_total{target="replica"}`) == 0 {
			t.Error("a pod never read from the standby")
		}
	}
	if lag == 0 {
		t.Error("no read was retried on the primary: the standby's lag was never met, the test proves nothing")
	}
}

// TestReadsFollowTheStandbyOutAndBack stops the standby under an uncached
// pod: reads go to the primary without an error or a readiness failure, and
// return to the standby when it is back.
func TestReadsFollowTheStandbyOutAndBack(t *testing.T) {
	t.Parallel()
	primary := pgtest.StartPrimary(t)
	standby := primary.StartStandby(t, 0)
	apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Upsert: apitest.Characters(10)})
	standby.WaitReplayed(t, primary)
	a := startAPI(t, map[string]string{
		"DATABASE_URL": primary.DatabaseURL(), "DATABASE_READ_URL": standby.DatabaseURL(), "CACHE_TTL": "0s",
	})
	const onReplica, onPrimary = `rickmorty_db_reads_total{target="replica"}`, `rickmorty_db_reads_total{target="primary"}`
	a.get("/characters")
	if a.metric(onReplica) != 1 {
		t.Fatalf("replica reads = %v, want 1", a.metric(onReplica))
	}

	standby.Stop()
	for i := range 30 {
		if r := a.get(fmt.Sprintf("/characters/%d", 1+i%10)); r.status != 200 {
			t.Fatalf("standby down: status %d: %s", r.status, r.body)
		}
	}
	if got := a.metric(onPrimary); got < 30 {
		t.Errorf("primary reads with the standby down = %v, want 30", got)
	}
	if r := a.get("/readyz"); r.status != 200 {
		t.Errorf("readiness with the standby down: %d", r.status)
	}

	standby.Start()
	before := a.metric(onReplica)
	a.eventually("reads back on the standby", func() bool {
		a.get("/characters")
		return a.metric(onReplica) > before
	})
}

// TestReadsThroughPgBouncer runs a pod whose reads go through a real
// PgBouncer in transaction pooling mode; LISTEN stays on DATABASE_URL.
func TestReadsThroughPgBouncer(t *testing.T) {
	t.Parallel()
	primary := pgtest.StartPrimary(t)
	apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Upsert: apitest.Characters(25)})
	_, viaBouncer := pgtest.StartPgBouncer(t, primary, 2)
	a := startAPI(t, map[string]string{
		"DATABASE_URL": primary.DatabaseURL(), "DATABASE_READ_URL": viaBouncer, "CACHE_TTL": "0s", "DB_MAX_CONNS": "8",
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				for _, path := range []string{
					fmt.Sprintf("/characters?sort=name&page=%d&page_size=5", 1+i%5),
					fmt.Sprintf("/characters/%d", 1+(w+i)%25),
				} {
					if r := a.get(path); r.status != 200 {
						t.Errorf("%s: %d %s", path, r.status, r.body)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if got := a.metric(`rickmorty_db_reads_total{target="replica"}`); got != 400 {
		t.Errorf("reads through PgBouncer = %v, want 400", got)
	}
	// A change still reaches the pod: its LISTEN is on the primary.
	v := apitest.Ingest(t, primary.DatabaseURL(), apitest.Change{Delete: []int{25}})
	a.eventually("the new version", func() bool { return a.metric("rickmorty_cache_data_version") == float64(v) })
}
