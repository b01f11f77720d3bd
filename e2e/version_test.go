package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestUnchangedIngestKeepsVersionsAndCaches: an ingest that finds the
// upstream unchanged succeeds and counts as fresh data, but commits no new
// data version and sends no notification, so every replica keeps its ETags
// and its cache: clients revalidating get 304, nothing is invalidated.
func TestUnchangedIngestKeepsVersionsAndCaches(t *testing.T) {
	sys.baseline(t)
	path := listURL("", "name", "asc", 1, 20)
	etags := map[string]string{}
	invalidations := map[string]float64{}
	for _, api := range sys.apis {
		r := sys.get(t, api+path)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s%s: %s", api, path, r)
		}
		etags[api] = r.header.Get("ETag")
		invalidations[api] = sys.invalidations(t, api)
	}
	h, _, err := sys.healthcheck(sys.apis[0])
	if err != nil || h.DataVersion == nil || h.LastRefreshAt == nil {
		t.Fatalf("healthcheck before: %+v, %v", h, err)
	}
	before := h
	time.Sleep(1100 * time.Millisecond) // last_refresh_at has a resolution of a second

	sys.ingest(t, true)
	time.Sleep(300 * time.Millisecond) // room for a notification, were one sent
	for _, api := range sys.apis {
		r := sys.get(t, api+path, "If-None-Match", etags[api])
		if r.status != http.StatusNotModified {
			t.Errorf("%s: revalidation after an unchanged ingest: %s, want 304", api, r)
		}
		if got := sys.invalidations(t, api); got != invalidations[api] {
			t.Errorf("%s: rickmorty_cache_invalidations_total %v -> %v after an unchanged ingest", api, invalidations[api], got)
		}
	}
	h, _, err = sys.healthcheck(sys.apis[0])
	if err != nil || h.DataVersion == nil || h.LastRefreshAt == nil {
		t.Fatalf("healthcheck after: %+v, %v", h, err)
	}
	if *h.DataVersion != *before.DataVersion {
		t.Errorf("data_version %d -> %d after an unchanged ingest", *before.DataVersion, *h.DataVersion)
	}
	if *h.LastRefreshAt <= *before.LastRefreshAt {
		t.Errorf("last_refresh_at %s -> %s: the unchanged ingest did not count as a refresh", *before.LastRefreshAt, *h.LastRefreshAt)
	}
}

// TestReplicaReadsAnswer: replicas configured with DATABASE_READ_URL (in
// make e2e: through a real PgBouncer in transaction pooling mode) answer
// their misses there.
func TestReplicaReadsAnswer(t *testing.T) {
	if len(sys.replicaReadAPIs) == 0 {
		t.Skip("no E2E_REPLICA_READ_API_URLS: no replica reads from a read URL in this system")
	}
	sys.baseline(t)
	for _, api := range sys.replicaReadAPIs {
		read := func() float64 {
			v, err := sys.metrics(t, api+"/metrics").value("rickmorty_db_reads_total", "target", "replica")
			if err != nil {
				t.Fatalf("%s/metrics: %v", api, err)
			}
			return v
		}
		before := read()
		for size := 31; size <= 40; size++ { // keys no other test caches
			if r := sys.get(t, listURL(api, "created", "desc", 1, size)); r.status != http.StatusOK {
				t.Fatalf("%s: %s", api, r)
			}
		}
		if got := read() - before; got < 10 {
			t.Errorf("%s: %v of 10 misses read through DATABASE_READ_URL", api, got)
		}
	}
}
