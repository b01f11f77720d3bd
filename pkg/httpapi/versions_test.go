package httpapi_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
)

// exec runs statements on the test database as its owner.
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatal(err)
	}
}

// metric returns the value of one exposition line's series, e.g.
// `rickmorty_cache_hits_total`, or -1 when absent.
func (e *env) metric(series string) float64 {
	e.t.Helper()
	for line := range strings.SplitSeq(string(e.get("/metrics").body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

const hits, misses = "rickmorty_cache_hits_total", "rickmorty_cache_misses_total"

func TestStrayNotificationsChangeNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	first := e.get("/characters")
	tag := first.header.Get("ETag")

	// Anyone may NOTIFY on the channel. A number is only a hint to look;
	// anything else is ignored and counted.
	for _, payload := range []string{"9223372036854775807", "-1", "0", "not a number", "", "1e99"} {
		e.srv.OnNotify(payload)
	}
	if got, want := e.metric(`rickmorty_listener_notifications_total{payload="invalid"}`), 3.0; got != want {
		t.Errorf("invalid notifications = %v, want %v", got, want)
	}
	hitsBefore := e.metric(hits)
	again := e.get("/characters")
	if got := again.header.Get("ETag"); got != tag {
		t.Errorf("ETag after stray notifications = %s, want %s", got, tag)
	}
	if got, want := e.metric(hits), hitsBefore+1; got != want {
		t.Errorf("hits = %v, want %v: stray notifications disabled the cache", got, want)
	}

	// A real change is still followed.
	v := apitest.IngestSilently(t, e.dbURL, apitest.Change{Delete: []int{1}})
	e.srv.OnNotify(strconv.FormatInt(v, 10))
	if got, want := e.get("/characters").header.Get("ETag"), `"v`+strconv.FormatInt(v, 10)+`"`; got != want {
		t.Errorf("ETag after a real change = %s, want %s", got, want)
	}
}

func TestCacheFollowsTheDatabaseBackAfterARestore(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	apitest.Ingest(t, e.dbURL, apitest.Change{Delete: []int{3}}) // version 2
	e.srv.OnConnect()
	if got, want := e.get("/characters").header.Get("ETag"), `"v2"`; got != want {
		t.Fatalf("ETag = %s, want %s", got, want)
	}

	// The restore: version 1's rows and version 1 come back. The listener
	// reconnects (the server restarted) and the pod follows it down.
	apitest.IngestSilently(t, e.dbURL, apitest.Change{Upsert: apitest.Characters(3)})
	e.exec(`UPDATE data_version SET version = 1`)
	e.srv.OnConnect()
	r := e.get("/characters")
	if got, want := r.header.Get("ETag"), `"v1"`; got != want {
		t.Errorf("ETag after the restore = %s, want %s: pre-restore responses still served", got, want)
	}
	if got, want := decodePage(t, r).TotalCount, 3; got == nil || *got != want {
		t.Errorf("total_count after the restore = %v, want %d", got, want)
	}
	hitsBefore, missesBefore := e.metric(hits), e.metric(misses)
	e.get("/characters")
	if e.metric(hits) != hitsBefore+1 || e.metric(misses) != missesBefore {
		t.Error("after the database went back the cache no longer caches")
	}
}

func TestFillThatFindsTheDatabaseBehindFollowsIt(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 3})
	apitest.Ingest(t, e.dbURL, apitest.Change{Delete: []int{3}})
	apitest.Ingest(t, e.dbURL, apitest.Change{Delete: []int{2}}) // version 3
	if got, want := e.get("/characters/1").header.Get("ETag"), `"v3"`; got != want {
		t.Fatalf("ETag = %s, want %s", got, want)
	}
	// Set back with no notification and no reconnect (a migrate down/up
	// under a live listener): the first miss finds it out.
	e.exec(`UPDATE data_version SET version = 1`)
	r := e.get("/characters?page_size=2")
	if got, want := r.header.Get("ETag"), `"v1"`; got != want {
		t.Errorf("ETag = %s, want %s (the database's)", got, want)
	}
	if got, want := e.cache.Version(), int64(1); got != want {
		t.Errorf("served version = %d, want %d", got, want)
	}
	// The fill that found out began before the switch, so it stored
	// nothing; the next one stores, and from then on it is a hit.
	e.get("/characters?page_size=2")
	missesBefore := e.metric(misses)
	e.get("/characters?page_size=2")
	if got := e.metric(misses); got != missesBefore {
		t.Errorf("misses %v -> %v: nothing is cached after the database went back", missesBefore, got)
	}
}
