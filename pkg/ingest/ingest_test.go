package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/ingest"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// env is one database, one fake upstream and a runner wired to both.
type env struct {
	pool   *pgxpool.Pool
	dbURL  string
	fake   *fake.Server
	url    string
	runner *ingest.Runner
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool, dbURL := pgtest.NewPool(t)
	f := fake.New(fake.Dataset())
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	e := &env{pool: pool, dbURL: dbURL, fake: f, url: srv.URL + "/api"}
	e.runner = e.newRunner(upstream.Config{})
	return e
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newRunner returns a runner with fast retries; fields set in cfg win.
func (e *env) newRunner(cfg upstream.Config) *ingest.Runner {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin, cfg.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	}
	if cfg.MaxRetryAfter == 0 {
		cfg.MaxRetryAfter = 10 * time.Second
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	cfg.BaseURL = e.url
	client := upstream.New(cfg, quietLog(), nil)
	return ingest.NewRunner(client, postgres.NewIngests(e.pool), quietLog(), nil, ingest.Options{MaxDeleteRatio: 0.5})
}

func (e *env) mustRun(t *testing.T) ingest.Summary {
	t.Helper()
	sum, err := e.runner.Run(context.Background(), false)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

// wantIDs is what the exact filter admits from the fake's current data.
func wantIDs(t *testing.T, chars []upstream.Character) []int {
	t.Helper()
	var ids []int
	for _, c := range chars {
		if c.Species == "Human" && c.Status == "Alive" && strings.HasPrefix(c.Origin.Name, "Earth (") {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func storedIDs(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT id FROM characters ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// tableDigest fingerprints every stored row, physical identity included, so
// any write (even one that rewrites a row with equal content) changes it.
func tableDigest(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var d string
	err := pool.QueryRow(context.Background(), `
		SELECT coalesce(md5(string_agg(ctid::text || xmin::text || c::text, '|' ORDER BY id)), 'empty')
		FROM characters c`).Scan(&d)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func dataVersion(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var v int64
	if err := pool.QueryRow(context.Background(), "SELECT version FROM data_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

type runRow struct {
	Result                    string
	Inserted, Updated, Delete int
	Error                     *string
}

func lastRun(t *testing.T, pool *pgxpool.Pool) runRow {
	t.Helper()
	var r runRow
	err := pool.QueryRow(context.Background(),
		"SELECT result, inserted, updated, deleted, error FROM ingest_runs ORDER BY id DESC LIMIT 1",
	).Scan(&r.Result, &r.Inserted, &r.Updated, &r.Delete, &r.Error)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestIngestStoresExactlyTheAdmittedCharacters(t *testing.T) {
	e := newEnv(t)
	sum := e.mustRun(t)

	want := wantIDs(t, e.fake.Characters())
	if got := storedIDs(t, e.pool); !slices.Equal(got, want) {
		t.Fatalf("stored ids = %v\nwant %v", got, want)
	}
	if got, want := sum.Kept, len(want); got != want {
		t.Errorf("Kept = %d, want %d", got, want)
	}
	if got, want := sum.Fetched, len(e.fake.Characters()); got != want {
		t.Errorf("Fetched = %d, want %d", got, want)
	}
	if got, want := sum.Inserted, len(want); got != want {
		t.Errorf("Inserted = %d, want %d", got, want)
	}
	if sum.Updated != 0 || sum.Deleted != 0 {
		t.Errorf("first run Updated, Deleted = %d, %d; want 0, 0", sum.Updated, sum.Deleted)
	}
	var bad int
	if err := e.pool.QueryRow(context.Background(), `
		SELECT count(*) FROM characters
		WHERE species <> 'Human' OR status <> 'Alive' OR left(origin_name, 7) <> 'Earth ('`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d stored rows do not pass the exact filter", bad)
	}

	// Every upstream field survives the round trip.
	src := e.fake.Characters()[slices.IndexFunc(e.fake.Characters(), func(c upstream.Character) bool { return c.ID == want[0] })]
	var got upstream.Character
	var created time.Time
	err := e.pool.QueryRow(context.Background(), `
		SELECT id, name, status, species, type, gender, origin_name, origin_url, location_name, location_url,
		       image, episode, url, created
		FROM characters WHERE id = $1`, want[0]).Scan(&got.ID, &got.Name, &got.Status, &got.Species, &got.Type, &got.Gender,
		&got.Origin.Name, &got.Origin.URL, &got.Location.Name, &got.Location.URL, &got.Image, &got.Episode, &got.URL, &created)
	if err != nil {
		t.Fatal(err)
	}
	srcCreated, _ := src.CreatedTime()
	got.Created = src.Created
	if !created.Equal(srcCreated) {
		t.Errorf("created = %v, want %v", created, srcCreated)
	}
	if got.Name != src.Name || got.Origin != src.Origin || got.Location != src.Location ||
		got.Image != src.Image || got.URL != src.URL || !slices.Equal(got.Episode, src.Episode) || got.Type != src.Type || got.Gender != src.Gender {
		t.Errorf("stored %+v\nwant   %+v", got, src)
	}
	if got, want := lastRun(t, e.pool).Result, "success"; got != want {
		t.Errorf("ingest_runs result = %q, want %q", got, want)
	}
}

// admitted returns the fake's characters that pass the filter, in id order.
func admitted(chars []upstream.Character) []upstream.Character {
	var out []upstream.Character
	for _, c := range chars {
		if c.Species == "Human" && c.Status == "Alive" && strings.HasPrefix(c.Origin.Name, "Earth (") {
			out = append(out, c)
		}
	}
	return out
}

func TestSecondIngestInsertsUpdatesAndDeletes(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	kept := admitted(e.fake.Characters())
	died, moved, relocated, vanished, untouched := kept[0].ID, kept[1].ID, kept[2].ID, kept[3].ID, kept[4].ID

	var xminBefore string
	if err := e.pool.QueryRow(context.Background(), "SELECT xmin::text FROM characters WHERE id = $1", untouched).Scan(&xminBefore); err != nil {
		t.Fatal(err)
	}
	newID := 0
	e.fake.Update(func(chars []upstream.Character) []upstream.Character {
		out := chars[:0]
		for _, c := range chars {
			switch c.ID {
			case died:
				c.Status = "Dead"
			case moved:
				c.Origin = upstream.Place{Name: "Cronenberg Earth", URL: ""}
			case relocated:
				c.Location = upstream.Place{Name: "Citadel of Ricks", URL: "https://rickandmortyapi.com/api/location/3"}
			case vanished:
				continue
			}
			newID = max(newID, c.ID)
			out = append(out, c)
		}
		n := kept[5]
		n.ID, n.Name = newID+1, "Newcomer Smith"
		return append(out, n)
	})

	sum := e.mustRun(t)
	if got, want := [3]int{sum.Inserted, sum.Updated, sum.Deleted}, [3]int{1, 1, 3}; got != want {
		t.Errorf("inserted, updated, deleted = %v, want %v", got, want)
	}
	if got, want := storedIDs(t, e.pool), wantIDs(t, e.fake.Characters()); !slices.Equal(got, want) {
		t.Errorf("stored ids = %v\nwant %v", got, want)
	}
	var loc, xminAfter string
	if err := e.pool.QueryRow(context.Background(), "SELECT location_name FROM characters WHERE id = $1", relocated).Scan(&loc); err != nil {
		t.Fatal(err)
	}
	if loc != "Citadel of Ricks" {
		t.Errorf("relocated character's location = %q, want the new one", loc)
	}
	if err := e.pool.QueryRow(context.Background(), "SELECT xmin::text FROM characters WHERE id = $1", untouched).Scan(&xminAfter); err != nil {
		t.Fatal(err)
	}
	if xminBefore != xminAfter {
		t.Errorf("an unchanged row was rewritten (xmin %s -> %s)", xminBefore, xminAfter)
	}

	// A third run over unchanged data writes no character row at all.
	before := tableDigest(t, e.pool)
	sum = e.mustRun(t)
	if sum.Inserted+sum.Updated+sum.Deleted != 0 {
		t.Errorf("unchanged run changed rows: %s", sum)
	}
	if after := tableDigest(t, e.pool); after != before {
		t.Error("unchanged run rewrote rows")
	}
}

func TestUnchangedIngestKeepsTheVersionAndSendsNoNotify(t *testing.T) {
	e := newEnv(t)
	first := e.mustRun(t)
	conn := listen(t, e.dbURL)
	var updatedBefore time.Time
	if err := e.pool.QueryRow(context.Background(), "SELECT updated_at FROM data_version").Scan(&updatedBefore); err != nil {
		t.Fatal(err)
	}

	for _, force := range []bool{false, true} { // --force skips guards, it does not bump
		sum, err := e.runner.Run(context.Background(), force)
		if err != nil {
			t.Fatalf("Run(force=%v): %v", force, err)
		}
		if got, want := sum.DataVersion, first.DataVersion; got != want {
			t.Errorf("force=%v: summary version = %d, want %d (unchanged)", force, got, want)
		}
		if got, want := dataVersion(t, e.pool), first.DataVersion; got != want {
			t.Errorf("force=%v: stored data version = %d, want %d", force, got, want)
		}
		run := lastRun(t, e.pool)
		if got, want := run, (runRow{Result: "success"}); got != want {
			t.Errorf("force=%v: run row = %+v, want a success with zero counts", force, got)
		}
		var runVersion int64
		if err := e.pool.QueryRow(context.Background(), "SELECT data_version FROM ingest_runs ORDER BY id DESC LIMIT 1").Scan(&runVersion); err != nil {
			t.Fatal(err)
		}
		if runVersion != first.DataVersion {
			t.Errorf("force=%v: run row data_version = %d, want %d", force, runVersion, first.DataVersion)
		}
	}
	noNotification(t, conn, 300*time.Millisecond)
	var updatedAfter time.Time
	if err := e.pool.QueryRow(context.Background(), "SELECT updated_at FROM data_version").Scan(&updatedAfter); err != nil {
		t.Fatal(err)
	}
	if !updatedAfter.Equal(updatedBefore) {
		t.Errorf("data_version.updated_at moved from %s to %s without a change", updatedBefore, updatedAfter)
	}

	// A real change still bumps and notifies, once.
	e.fake.Update(func(chars []upstream.Character) []upstream.Character {
		for i := range chars {
			if chars[i].ID == admitted(chars)[0].ID {
				chars[i].Location.Name = "Citadel of Ricks"
			}
		}
		return chars
	})
	if got, want := e.mustRun(t).DataVersion, first.DataVersion+1; got != want {
		t.Errorf("after a change version = %d, want %d", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no notification after a changing run: %v", err)
	}
	if got, want := n.Payload, "2"; got != want {
		t.Errorf("payload = %q, want %q", got, want)
	}
}

// TestALostCommitReplyIsReportedAsTheSuccessItWas: the reply to the sync's
// COMMIT never arrives (the connection drops after Postgres committed, as
// when SIGTERM or INGEST_TIMEOUT lands at that moment). The data, the run
// row and the NOTIFY are committed; the run must be reported a success, and
// its row never overwritten to failed.
func TestALostCommitReplyIsReportedAsTheSuccessItWas(t *testing.T) {
	e := newEnv(t)
	proxy, viaProxy := pgtest.NewProxy(t, e.dbURL)
	pool, err := pgxpool.New(context.Background(), viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	metrics := ingest.NewMetrics(nil)
	client := upstream.New(upstream.Config{BaseURL: e.url, Timeout: 5 * time.Second, Concurrency: 4,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond}, quietLog(), nil)
	runner := ingest.NewRunner(client, postgres.NewIngests(pool), quietLog(), metrics, ingest.Options{MaxDeleteRatio: 0.5})
	conn := listen(t, e.dbURL)

	proxy.LoseReplyContaining([]byte("COMMIT\x00"))
	sum, err := runner.Run(context.Background(), false)
	if err != nil {
		t.Fatalf("Run = %v, want the success that was committed", err)
	}
	want := len(wantIDs(t, e.fake.Characters()))
	if sum.Inserted != want || sum.DataVersion != 1 || sum.Stored != want {
		t.Errorf("summary = %s, want %d inserted and stored at version 1", sum, want)
	}
	if got := lastRun(t, e.pool); got.Result != "success" || got.Inserted != want || got.Error != nil {
		t.Errorf("run row = %+v, want the committed success", got)
	}
	if got := len(storedIDs(t, e.pool)); got != want {
		t.Errorf("stored %d rows, want %d", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.WaitForNotification(ctx); err != nil {
		t.Errorf("no notification of the committed sync: %v", err)
	}
	for _, result := range []string{"success", "failed"} {
		want := map[string]float64{"success": 1, "failed": 0}[result]
		if got := testutil.ToFloat64(metrics.Runs.WithLabelValues(result)); got != want {
			t.Errorf("runs_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

func TestASquattedLockNamesItsHolder(t *testing.T) {
	e := newEnv(t)
	metrics := ingest.NewMetrics(nil)
	client := upstream.New(upstream.Config{BaseURL: e.url, Timeout: 5 * time.Second, Concurrency: 4,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond}, quietLog(), nil)
	runner := ingest.NewRunner(client, postgres.NewIngests(e.pool), quietLog(), metrics, ingest.Options{MaxDeleteRatio: 0.5})

	cfg, err := pgx.ParseConfig(e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "squatter"
	squatter, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close(context.Background())
	var got bool
	// The ingest lock key, "rmingest" as an int8.
	if err := squatter.QueryRow(context.Background(), "SELECT pg_try_advisory_lock(8245362415687267188)").Scan(&got); err != nil || !got {
		t.Fatalf("squat the ingest lock: %v %v", got, err)
	}

	_, err = runner.Run(context.Background(), false)
	var le *postgres.LockedError
	if !errors.As(err, &le) || !errors.Is(err, ingest.ErrLocked) {
		t.Fatalf("Run = %v, want a LockedError", err)
	}
	if le.Holder.ApplicationName != "squatter" || le.Holder.PID == 0 || le.Holder.SessionStart.IsZero() {
		t.Errorf("holder = %+v, want the squatting session", le.Holder)
	}
	if !strings.Contains(err.Error(), `application "squatter"`) {
		t.Errorf("error %q does not name the holder", err)
	}
	if got := testutil.ToFloat64(metrics.LockHolder.WithLabelValues(le.Holder.Role, "squatter")); got != 1 {
		t.Errorf("lock_holder_info{application_name=squatter} = %v, want 1", got)
	}
	since := testutil.ToFloat64(metrics.LockedSince)
	if since < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("locked_out_since = %v, want about now", since)
	}
	if _, err := runner.Run(context.Background(), false); !errors.Is(err, ingest.ErrLocked) {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(metrics.LockedSince); got != since {
		t.Errorf("a second locked run moved locked_out_since from %v to %v", since, got)
	}

	if _, err := squatter.Exec(context.Background(), "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Run(context.Background(), false); err != nil {
		t.Fatalf("Run after the squatter let go: %v", err)
	}
	if got := testutil.ToFloat64(metrics.LockedSince); got != 0 {
		t.Errorf("locked_out_since after a run took the lock = %v, want 0", got)
	}
}

func TestPersistent5xxFailsAndLeavesTheTableAsItWas(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	before, version := tableDigest(t, e.pool), dataVersion(t, e.pool)

	// A change that a successful run would apply, and a page that never recovers.
	e.fake.Update(func(chars []upstream.Character) []upstream.Character { return chars[:len(chars)-30] })
	e.fake.SetFaults(fake.Faults{FailPages: map[int]int{3: -1}, Status: 503})
	e.fake.ResetCounters()

	_, err := e.runner.Run(context.Background(), false)
	if err == nil {
		t.Fatal("Run succeeded; want a failure")
	}
	if !strings.Contains(err.Error(), "page 3") || !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not name the page and status", err)
	}
	if after := tableDigest(t, e.pool); after != before {
		t.Error("the failed run changed the table")
	}
	if got := dataVersion(t, e.pool); got != version {
		t.Errorf("data version = %d, want %d (unchanged)", got, version)
	}
	r := lastRun(t, e.pool)
	if r.Result != "failed" || r.Error == nil || !strings.Contains(*r.Error, "page 3") {
		t.Errorf("last run = %+v, want failed naming page 3", r)
	}
	if got, want := e.fake.PageRequests(3), int64(4); got != want {
		t.Errorf("page 3 requested %d times, want %d (1 + 3 retries)", got, want)
	}
}

func TestTransient5xxIsRetried(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFaults(fake.Faults{FailPages: map[int]int{2: 2, 5: 1}})
	e.mustRun(t)
	if got, want := storedIDs(t, e.pool), wantIDs(t, e.fake.Characters()); !slices.Equal(got, want) {
		t.Errorf("stored ids = %v, want %v", got, want)
	}
}

func TestRateLimitWithRetryAfterIsWaitedOut(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFaults(fake.Faults{RateLimitPages: map[int]int{2: 1}, RetryAfter: "1"})
	start := time.Now()
	e.mustRun(t)
	// The backoff floor is 1ms, so only the honoured Retry-After explains a
	// second's wait.
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Errorf("run took %s; Retry-After: 1 was not honoured", elapsed)
	}
	if got, want := storedIDs(t, e.pool), wantIDs(t, e.fake.Characters()); !slices.Equal(got, want) {
		t.Errorf("stored ids = %v, want %v", got, want)
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	e := newEnv(t)
	e.runner = e.newRunner(upstream.Config{MaxRetryAfter: 20 * time.Millisecond})
	e.fake.SetFaults(fake.Faults{RateLimitPages: map[int]int{1: 2}, RetryAfter: "3600"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.runner.Run(ctx, false); err != nil {
		t.Fatalf("Run: %v (a Retry-After of an hour should have been capped)", err)
	}
}

func TestCountChangeMidCrawlIsRecrawled(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFaults(fake.Faults{CountChangeAfter: 3})
	e.mustRun(t)
	if got := e.fake.PageRequests(1); got != 2 {
		t.Errorf("page 1 was requested %d times, want 2 (the crawl starts over once)", got)
	}
	// The data set grew mid-crawl; the second crawl sees it whole.
	if got, want := storedIDs(t, e.pool), wantIDs(t, e.fake.Characters()); !slices.Equal(got, want) {
		t.Errorf("stored ids = %v, want %v", got, want)
	}
}

func TestInvalidPagesFailTheRun(t *testing.T) {
	for name, f := range map[string]fake.Faults{
		"malformed JSON": {MalformedPages: map[int]bool{4: true}},
		"truncated page": {TruncatedPages: map[int]bool{4: true}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.mustRun(t)
			before := tableDigest(t, e.pool)
			e.fake.Update(func(chars []upstream.Character) []upstream.Character { return chars[1:] })
			e.fake.SetFaults(f)
			_, err := e.runner.Run(context.Background(), false)
			if !errors.Is(err, upstream.ErrInvalid) {
				t.Fatalf("Run error = %v, want upstream.ErrInvalid", err)
			}
			if tableDigest(t, e.pool) != before {
				t.Error("the failed run changed the table")
			}
		})
	}
}

func TestConcurrentIngestsOneWritesOneReportsTheLock(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFaults(fake.Faults{Latency: 100 * time.Millisecond})
	other := e.newRunner(upstream.Config{})

	firstErr := make(chan error, 1)
	go func() {
		_, err := e.runner.Run(context.Background(), false)
		firstErr <- err
	}()
	// The first run crawls only once it holds the lock.
	waitFor(t, func() bool { return e.fake.Requests() > 0 })
	_, err := other.Run(context.Background(), false)
	if !errors.Is(err, ingest.ErrLocked) {
		t.Errorf("second Run error = %v, want ErrLocked", err)
	}
	if err := <-firstErr; err != nil {
		t.Fatalf("first Run: %v", err)
	}
	var runs int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM ingest_runs").Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Errorf("ingest_runs has %d rows, want 1 (the locked-out run writes nothing)", runs)
	}
	// The lock is free again afterwards.
	if _, err := other.Run(context.Background(), false); err != nil {
		t.Errorf("Run after the first finished: %v", err)
	}
}

func TestManyConcurrentIngestsExactlyOneWins(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFaults(fake.Faults{Latency: 50 * time.Millisecond})
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		r := e.newRunner(upstream.Config{})
		wg.Go(func() {
			<-start
			_, errs[i] = r.Run(context.Background(), false)
		})
	}
	close(start)
	wg.Wait()
	var ok, locked int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ingest.ErrLocked):
			locked++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok < 1 || ok+locked != n {
		t.Errorf("%d succeeded and %d were locked out; want at least one success and the rest locked", ok, locked)
	}
}

// blockRunRow waits for the run in flight to record itself, then locks its
// ingest_runs row so the sync transaction stops at its last statement, after
// the characters were merged and the NOTIFY queued. Closing the returned
// transaction lets it go on.
func blockRunRow(t *testing.T, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	var id int64
	waitFor(t, func() bool {
		return pool.QueryRow(context.Background(), "SELECT id FROM ingest_runs WHERE result = 'running'").Scan(&id) == nil
	})
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), "SELECT 1 FROM ingest_runs WHERE id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	return tx
}

// waitUntilBlocked waits until a backend is waiting on a lock held by the test.
func waitUntilBlocked(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	waitFor(t, func() bool {
		var n int
		_ = pool.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n)
		return n > 0
	})
}

func listen(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), "LISTEN "+postgres.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	return conn
}

func noNotification(t *testing.T, conn *pgx.Conn, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if n, err := conn.WaitForNotification(ctx); err == nil {
		t.Errorf("got notification %q, want none", n.Payload)
	}
}

func TestNotifyCarriesTheNewVersionOnlyAfterCommit(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFaults(fake.Faults{Latency: 20 * time.Millisecond})
	conn := listen(t, e.dbURL)

	done := make(chan error, 1)
	go func() {
		_, err := e.runner.Run(context.Background(), false)
		done <- err
	}()
	blocker := blockRunRow(t, e.pool)
	waitUntilBlocked(t, e.pool)
	noNotification(t, conn, 300*time.Millisecond)
	if got := storedIDs(t, e.pool); len(got) != 0 {
		t.Errorf("%d rows visible before commit", len(got))
	}
	if err := blocker.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no notification after commit: %v", err)
	}
	if got, want := n.Payload, "1"; got != want {
		t.Errorf("payload = %q, want %q (the new data version)", got, want)
	}
	if got, want := dataVersion(t, e.pool), int64(1); got != want {
		t.Errorf("data version = %d, want %d", got, want)
	}
}

func TestCancellationMidTransactionLeavesNothingPartial(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	before, version := tableDigest(t, e.pool), dataVersion(t, e.pool)
	e.fake.Update(func(chars []upstream.Character) []upstream.Character {
		for i := range chars {
			chars[i].Location.Name += " (moved)"
		}
		return chars[5:]
	})
	conn := listen(t, e.dbURL)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.runner.Run(ctx, false)
		done <- err
	}()
	blocker := blockRunRow(t, e.pool)
	waitUntilBlocked(t, e.pool) // the merge has run inside the transaction
	cancel()
	// The sync gives up; then recording the failure waits for the row the
	// test holds. Release it only then, so the sync cannot go on instead.
	waitFor(t, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'
			  AND query LIKE '%finished_at = now(), error =%'`).Scan(&n)
		return n > 0
	})
	_ = blocker.Rollback(context.Background())
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Fatalf("Run error = %v, want a cancellation", err)
	}
	if tableDigest(t, e.pool) != before {
		t.Error("the cancelled run left changes behind")
	}
	if got := dataVersion(t, e.pool); got != version {
		t.Errorf("data version = %d, want %d", got, version)
	}
	noNotification(t, conn, 200*time.Millisecond)
	waitFor(t, func() bool { return lastRun(t, e.pool).Result == "failed" })
	// The lock was released with the session: the next run goes ahead.
	if _, err := e.runner.Run(context.Background(), false); err != nil {
		t.Errorf("Run after cancellation: %v", err)
	}
}

func TestMassDeleteGuard(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	before := tableDigest(t, e.pool)
	kept := admitted(e.fake.Characters())
	keep := map[int]bool{}
	for _, c := range kept[:len(kept)*4/10] {
		keep[c.ID] = true
	}
	e.fake.Update(func(chars []upstream.Character) []upstream.Character {
		return slices.DeleteFunc(chars, func(c upstream.Character) bool { return character.Admit(toDomain(c)) && !keep[c.ID] })
	})

	_, err := e.runner.Run(context.Background(), false)
	if !errors.Is(err, postgres.ErrGuard) {
		t.Fatalf("Run error = %v, want the mass-delete guard", err)
	}
	if tableDigest(t, e.pool) != before {
		t.Error("the refused run changed the table")
	}
	if r := lastRun(t, e.pool); r.Result != postgres.ResultRefused || r.Error == nil || !strings.Contains(*r.Error, "guard") {
		t.Errorf("last run = %+v, want refused by the guard", r)
	}

	sum, err := e.runner.Run(context.Background(), true)
	if err != nil {
		t.Fatalf("forced Run: %v", err)
	}
	if got, want := sum.Deleted, len(kept)-len(keep); got != want {
		t.Errorf("forced run deleted %d, want %d", got, want)
	}
}

func TestEmptyUpstreamIsRefusedUnlessForced(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	before := tableDigest(t, e.pool)
	e.fake.SetCharacters(nil) // page 1 answers 404 "There is nothing here"

	_, err := e.runner.Run(context.Background(), false)
	if !errors.Is(err, postgres.ErrGuard) {
		t.Fatalf("Run error = %v, want the guard", err)
	}
	if tableDigest(t, e.pool) != before {
		t.Error("the refused run changed the table")
	}
	if _, err := e.runner.Run(context.Background(), true); err != nil {
		t.Fatalf("forced Run: %v", err)
	}
	if got := storedIDs(t, e.pool); len(got) != 0 {
		t.Errorf("after a forced empty sync %d rows remain", len(got))
	}
}

func TestAbandonedRunIsClosedByTheNextRun(t *testing.T) {
	e := newEnv(t)
	if _, err := e.pool.Exec(context.Background(), "INSERT INTO ingest_runs (result) VALUES ('running')"); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t)
	var results []string
	rows, _ := e.pool.Query(context.Background(), "SELECT result FROM ingest_runs ORDER BY id")
	results, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := results, []string{"abandoned", "success"}; !slices.Equal(got, want) {
		t.Errorf("ingest_runs results = %v, want %v", got, want)
	}
}

func toDomain(c upstream.Character) character.Character {
	return character.Character{Species: c.Species, Status: c.Status, OriginName: c.Origin.Name}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunOnAnUnmigratedDatabaseSaysToMigrate(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), pgtest.NewEmpty(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	srv := httptest.NewServer(fake.New(fake.Dataset()))
	defer srv.Close()
	client := upstream.New(upstream.Config{BaseURL: srv.URL + "/api", Timeout: time.Second, Concurrency: 2}, quietLog(), nil)
	r := ingest.NewRunner(client, postgres.NewIngests(pool), quietLog(), nil, ingest.Options{MaxDeleteRatio: 0.5})
	_, err = r.Run(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "ingester migrate") {
		t.Errorf("Run error = %v, want a hint to run ingester migrate", err)
	}
}

// TestServeRetriesAFailedIngestBeforeTheSchedule: the ingester starts before
// the migration (a fresh install); its first run fails on the missing schema
// and is run again within seconds, not an INGEST_SCHEDULE later.
func TestServeRetriesAFailedIngestBeforeTheSchedule(t *testing.T) {
	dbURL := pgtest.NewEmpty(t)
	f := fake.New(fake.Dataset())
	srv := httptest.NewServer(f)
	defer srv.Close()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	metrics := ingest.NewMetrics(nil)
	client := upstream.New(upstream.Config{BaseURL: srv.URL + "/api", Timeout: 5 * time.Second, Concurrency: 4}, quietLog(), nil)
	runner := ingest.NewRunner(client, postgres.NewIngests(pool), quietLog(), metrics,
		ingest.Options{MaxDeleteRatio: 0.5, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	schedule, err := ingest.ParseSchedule("@every 1h")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ingest.Serve(ctx, runner, schedule, quietLog())
	}()
	defer func() { cancel(); <-done }()

	runs := func(result string) float64 { return testutil.ToFloat64(metrics.Runs.WithLabelValues(result)) }
	waitFor(t, func() bool { return runs("failed") >= 2 }) // the first run and a retry, within moments
	if _, err := db.Migrate(dbURL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return runs("success") == 1 })
	if got, want := storedIDs(t, pool), wantIDs(t, f.Characters()); !slices.Equal(got, want) {
		t.Errorf("stored %d ids after the retry, want %d", len(got), len(want))
	}
}

// TestRecordsTheStoreCannotHoldAreRejectedOneByOne: a NUL byte, a 1 MB name
// and an id past int4 used to fail every ingest (and --force did not help).
// Now the 64-bit id is stored; the other two are skipped, counted and named,
// their stored rows left as they were, and the run succeeds with the rest.
func TestRecordsTheStoreCannotHoldAreRejectedOneByOne(t *testing.T) {
	e := newEnv(t)
	e.mustRun(t)
	kept := admitted(e.fake.Characters())
	nul, huge := kept[0].ID, kept[1].ID
	var nulBefore string
	if err := e.pool.QueryRow(context.Background(), "SELECT name FROM characters WHERE id = $1", nul).Scan(&nulBefore); err != nil {
		t.Fatal(err)
	}
	const wide = 3_000_000_000
	e.fake.Update(func(chars []upstream.Character) []upstream.Character {
		for i := range chars {
			switch chars[i].ID {
			case nul:
				chars[i].Name = "Bad\u0000Name"
			case huge:
				chars[i].Name = strings.Repeat("x", 1<<20)
			}
		}
		n := kept[2]
		n.ID, n.Name = wide, "Wide Id Smith"
		return append(chars, n)
	})
	metrics := ingest.NewMetrics(nil)
	client := upstream.New(upstream.Config{BaseURL: e.url, Timeout: 5 * time.Second, Concurrency: 4,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond}, quietLog(), nil)
	runner := ingest.NewRunner(client, postgres.NewIngests(e.pool), quietLog(), metrics,
		ingest.Options{MaxDeleteRatio: 0.5, MaxRejectRatio: 0.05})

	sum, err := runner.Run(context.Background(), false)
	if err != nil {
		t.Fatalf("Run = %v, want a success with two rejections", err)
	}
	if got, want := len(sum.Rejected), 2; got != want {
		t.Fatalf("rejected = %v, want %d", sum.Rejected, want)
	}
	if sum.Inserted != 1 || sum.Deleted != 0 {
		t.Errorf("summary = %s, want the wide id inserted and nothing deleted", sum)
	}
	var name string
	if err := e.pool.QueryRow(context.Background(), "SELECT name FROM characters WHERE id = $1", wide).Scan(&name); err != nil || name != "Wide Id Smith" {
		t.Errorf("id %d: %q, %v; want stored", wide, name, err)
	}
	if err := e.pool.QueryRow(context.Background(), "SELECT name FROM characters WHERE id = $1", nul).Scan(&name); err != nil || name != nulBefore {
		t.Errorf("rejected id %d: stored name %q, %v; want the old row %q left as it was", nul, name, err, nulBefore)
	}
	var rejected int
	var rejections string
	if err := e.pool.QueryRow(context.Background(), "SELECT rejected, rejections FROM ingest_runs ORDER BY id DESC LIMIT 1").Scan(&rejected, &rejections); err != nil {
		t.Fatal(err)
	}
	if rejected != 2 || !strings.Contains(rejections, fmt.Sprintf("%d: nul_byte", nul)) || !strings.Contains(rejections, fmt.Sprintf("%d: name_too_long", huge)) {
		t.Errorf("run row rejected = %d, rejections = %q", rejected, rejections)
	}
	for _, reason := range []string{"nul_byte", "name_too_long"} {
		if got := testutil.ToFloat64(metrics.Rejected.WithLabelValues(reason)); got != 1 {
			t.Errorf("rejected_total{reason=%q} = %v, want 1", reason, got)
		}
	}

	// Past the share, the upstream is broken, not a record: the run fails
	// and nothing changes.
	before := tableDigest(t, e.pool)
	strict := ingest.NewRunner(client, postgres.NewIngests(e.pool), quietLog(), nil, ingest.Options{MaxDeleteRatio: 0.5, MaxRejectRatio: 0.01})
	if _, err := strict.Run(context.Background(), true); err == nil || !strings.Contains(err.Error(), "INGEST_MAX_REJECT_RATIO") {
		t.Errorf("Run with 2 of %d rejected over a 1%% limit = %v, want a failure naming the setting", len(kept)+1, err)
	}
	if after := tableDigest(t, e.pool); after != before {
		t.Error("a run failed on rejections changed the table")
	}
}
