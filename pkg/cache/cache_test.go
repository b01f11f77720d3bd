package cache_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rickmorty/rickmorty/pkg/cache"
)

func fillWith(v string, calls *atomic.Int64) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		calls.Add(1)
		return v, nil
	}
}

func TestHitAfterMiss(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := cache.New[string](cache.Config{TTL: time.Hour, MaxEntries: 10}, reg)
	var calls atomic.Int64
	for range 3 {
		v, err := c.Get(context.Background(), "k", fillWith("v", &calls))
		if err != nil || v != "v" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if got, want := calls.Load(), int64(1); got != want {
		t.Errorf("fills = %d, want %d", got, want)
	}
	if got, want := metricValue(t, reg, "rickmorty_cache_hits_total"), 2.0; got != want {
		t.Errorf("hits = %v, want %v", got, want)
	}
	if got, want := metricValue(t, reg, "rickmorty_cache_misses_total"), 1.0; got != want {
		t.Errorf("misses = %v, want %v", got, want)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := cache.New[string](cache.Config{TTL: time.Hour, MaxEntries: 10}, nil)
	boom := errors.New("boom")
	if _, err := c.Get(context.Background(), "k", func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	var calls atomic.Int64
	if v, _ := c.Get(context.Background(), "k", fillWith("v", &calls)); v != "v" || calls.Load() != 1 {
		t.Errorf("after an error: %q with %d fills, want a fresh fill", v, calls.Load())
	}
}

func TestEntriesAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	const maxEntries = 50
	c := cache.New[string](cache.Config{TTL: time.Hour, MaxEntries: maxEntries}, reg)
	var calls atomic.Int64
	for i := range 10 * maxEntries {
		if _, err := c.Get(context.Background(), strconv.Itoa(i), fillWith("v", &calls)); err != nil {
			t.Fatal(err)
		}
		if c.Len() > maxEntries {
			t.Fatalf("after %d keys the cache holds %d entries, bound is %d", i+1, c.Len(), maxEntries)
		}
	}
	if got, want := metricValue(t, reg, "rickmorty_cache_evictions_total"), float64(9*maxEntries); got != want {
		t.Errorf("evictions = %v, want %v", got, want)
	}
	// The newest keys survive; the oldest went first.
	if _, ok := c.Peek(strconv.Itoa(10*maxEntries - 1)); !ok {
		t.Error("newest key was evicted")
	}
	if _, ok := c.Peek("0"); ok {
		t.Error("oldest key survived")
	}
}

func TestEntriesExpire(t *testing.T) {
	c := cache.New[string](cache.Config{TTL: 20 * time.Millisecond, MaxEntries: 10}, nil)
	var calls atomic.Int64
	c.Get(context.Background(), "k", fillWith("v", &calls)) //nolint:errcheck // fill cannot fail
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := c.Peek("k"); !ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Error("entry never expired")
}

func TestConcurrentMissesShareOneFill(t *testing.T) {
	c := cache.New[string](cache.Config{TTL: time.Hour, MaxEntries: 10}, nil)
	var calls atomic.Int64
	release := make(chan struct{})
	fill := func(context.Context) (string, error) {
		calls.Add(1)
		<-release
		return "v", nil
	}
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for range 100 {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			if v, err := c.Get(context.Background(), "k", fill); err != nil || v != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let the goroutines reach the flight
	close(release)
	wg.Wait()
	if got, want := calls.Load(), int64(1); got != want {
		t.Errorf("fills = %d, want %d", got, want)
	}
}

func TestFillStartedBeforeFlushIsNotStored(t *testing.T) {
	c := cache.New[string](cache.Config{TTL: time.Hour, MaxEntries: 10}, nil)
	inFill := make(chan struct{})
	release := make(chan struct{})
	done := make(chan string)
	go func() {
		v, _ := c.Get(context.Background(), "k", func(context.Context) (string, error) {
			close(inFill)
			<-release
			return "old", nil
		})
		done <- v
	}()
	<-inFill
	c.Flush() // the data changed while the fill was reading

	// A request after the flush must not join the old fill.
	var calls atomic.Int64
	if v, err := c.Get(context.Background(), "k", fillWith("new", &calls)); err != nil || v != "new" {
		t.Errorf("Get after flush = %q, %v; want new", v, err)
	}
	close(release)
	if got := <-done; got != "old" {
		t.Errorf("the old fill's own caller got %q", got)
	}
	if v, ok := c.Peek("k"); !ok || v != "new" {
		t.Errorf("cached value = %q (present %v), want new: the stale fill was stored", v, ok)
	}
}

func TestCallerCanStopWaiting(t *testing.T) {
	c := cache.New[string](cache.Config{TTL: time.Hour, MaxEntries: 10}, nil)
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "k", func(context.Context) (string, error) {
		<-release
		return "v", nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
}

func TestDisabledCacheAlwaysFills(t *testing.T) {
	c := cache.New[string](cache.Config{TTL: 0}, nil)
	var calls atomic.Int64
	for range 3 {
		c.Get(context.Background(), "k", fillWith("v", &calls)) //nolint:errcheck // fill cannot fail
	}
	if got, want := calls.Load(), int64(3); got != want {
		t.Errorf("fills = %d, want %d", got, want)
	}
	if c.Enabled() || c.Len() != 0 {
		t.Error("a disabled cache holds entries")
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

type versioned struct{ v int64 }

func (x *versioned) DataVersion() int64 { return x.v }

// vcache is a cache of versioned values with helpers to fill and look up.
type vcache struct {
	*cache.Cache[*versioned]
	t *testing.T
}

func newVersioned(t *testing.T, cfg cache.Config, reg prometheus.Registerer) vcache {
	return vcache{cache.New[*versioned](cfg, reg), t}
}

// get returns key, filling it with a value read at version v on a miss.
func (c vcache) get(key string, v int64) *versioned {
	c.t.Helper()
	got, err := c.Get(context.Background(), key, func(context.Context) (*versioned, error) { return &versioned{v}, nil })
	if err != nil {
		c.t.Fatal(err)
	}
	return got
}

func (c vcache) has(key string) bool {
	_, ok := c.Peek(key)
	return ok
}

func TestVersionFollowsTheDatabaseUpAndDown(t *testing.T) {
	c := newVersioned(t, cache.Config{TTL: time.Hour, MaxEntries: 10}, nil)
	c.get("old", 1)
	if got, want := c.Version(), int64(1); got != want {
		t.Fatalf("version after the first fill = %d, want %d", got, want)
	}
	c.get("new", 2) // read just after the commit of version 2, before its notification
	if c.has("old") {
		t.Error("a version-1 value survived a fill that read version 2")
	}
	if c.SetVersion(2) {
		t.Error("SetVersion(2) reported a change; the fill had already moved to 2")
	}
	if !c.has("new") {
		t.Error("a version-2 value was dropped by the announcement of version 2")
	}
	// A fill that read the old version (it began before the commit) is
	// served to its caller but not stored.
	if got := c.get("late", 1); got.v != 1 {
		t.Fatalf("got %d", got.v)
	}
	if c.has("late") {
		t.Error("a fill that read a superseded version was stored")
	}

	// The database went back (a restore, a failover to an older copy):
	// the cache follows it down and caches again at once.
	if !c.SetVersion(1) {
		t.Fatal("SetVersion(1) after 2 reported no change")
	}
	if c.has("new") {
		t.Error("a version-2 value is still served after the database went back to 1")
	}
	if got := c.get("after", 1); got.v != 1 {
		t.Fatalf("got %d", got.v)
	}
	if !c.has("after") {
		t.Error("after going back to version 1 nothing is cached")
	}
	if got, want := c.Len(), 1; got != want {
		t.Errorf("entries = %d, want %d", got, want)
	}
}

func TestFollowReadsTheVersionAndSerialises(t *testing.T) {
	c := newVersioned(t, cache.Config{TTL: time.Hour, MaxEntries: 10}, nil)
	c.get("k", 9)
	changed, v, err := c.Follow(context.Background(), func(context.Context) (int64, error) { return 4, nil })
	if err != nil || !changed || v != 4 || c.Version() != 4 {
		t.Fatalf("Follow = %v, %d, %v; version %d; want a change to 4", changed, v, err, c.Version())
	}
	boom := errors.New("database down")
	if changed, _, err := c.Follow(context.Background(), func(context.Context) (int64, error) { return 0, boom }); changed || !errors.Is(err, boom) {
		t.Errorf("Follow with a failing read = %v, %v; want no change and the error", changed, err)
	}
	if got, want := c.Version(), int64(4); got != want {
		t.Errorf("version after a failed read = %d, want %d", got, want)
	}

	// A slow read that began first cannot overwrite a later one.
	slowRead := make(chan struct{})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Follow(context.Background(), func(context.Context) (int64, error) { //nolint:errcheck // the read cannot fail
			close(slowRead)
			<-release
			return 5, nil
		})
	}()
	<-slowRead
	second := make(chan struct{})
	go func() {
		defer close(second)
		c.Follow(context.Background(), func(context.Context) (int64, error) { return 6, nil }) //nolint:errcheck // cannot fail
	}()
	time.Sleep(20 * time.Millisecond) // the second Follow waits for the first
	close(release)
	<-done
	<-second
	if got, want := c.Version(), int64(6); got != want {
		t.Errorf("version = %d, want %d (the later read)", got, want)
	}
}

func TestRequestAfterAVersionChangeNeverJoinsAnEarlierFill(t *testing.T) {
	c := newVersioned(t, cache.Config{TTL: time.Hour, MaxEntries: 10}, nil)
	c.SetVersion(1)
	inFill := make(chan struct{})
	release := make(chan struct{})
	done := make(chan int64)
	go func() {
		v, _ := c.Get(context.Background(), "k", func(context.Context) (*versioned, error) {
			close(inFill)
			<-release
			return &versioned{1}, nil
		})
		done <- v.v
	}()
	<-inFill
	c.SetVersion(2) // the notification of version 2 arrives while the fill reads
	if got := c.get("k", 2); got.v != 2 {
		t.Errorf("a request after the change got version %d, want its own fill at 2", got.v)
	}
	close(release)
	if got := <-done; got != 1 {
		t.Errorf("the early fill's own caller got %d", got)
	}
	if v, ok := c.Peek("k"); !ok || v.v != 2 {
		t.Errorf("cached value = %+v (present %v), want version 2", v, ok)
	}
}

func TestFullCacheAfterAVersionChangeEvictsNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	const maxEntries = 100
	c := newVersioned(t, cache.Config{TTL: time.Hour, MaxEntries: maxEntries}, reg)
	key := func(i int) string { return "k" + strconv.Itoa(i) }
	for i := range maxEntries {
		c.get(key(i), 1)
	}
	c.SetVersion(2)
	if got := c.Len(); got != 0 {
		t.Errorf("entries after the version change = %d, want 0: stale entries are held", got)
	}
	// Refill the same keys and as many new ones as fit: while under the
	// bound nothing live may go.
	for i := range maxEntries {
		c.get(key(i), 2)
		if !c.has(key(0)) {
			t.Fatalf("filling %s evicted the fresh %s", key(i), key(0))
		}
	}
	for i := range maxEntries {
		c.get(key(i), 2) // hits; a refilled key never takes a second slot
	}
	if got, want := metricValue(t, reg, "rickmorty_cache_evictions_total"), 0.0; got != want {
		t.Errorf("evictions = %v, want %v", got, want)
	}
	if got, want := c.Len(), maxEntries; got != want {
		t.Errorf("entries = %d, want %d", got, want)
	}
	// Only past the bound does the oldest live entry go.
	c.get("one-more", 2)
	if got, want := metricValue(t, reg, "rickmorty_cache_evictions_total"), 1.0; got != want {
		t.Errorf("evictions past the bound = %v, want %v", got, want)
	}
	if c.has(key(0)) || !c.has(key(1)) {
		t.Error("past the bound the oldest entry should go, and only it")
	}
}

func TestExpiredEntriesAreReclaimedNotEvicted(t *testing.T) {
	reg := prometheus.NewRegistry()
	const maxEntries = 20
	c := newVersioned(t, cache.Config{TTL: 30 * time.Millisecond, MaxEntries: maxEntries}, reg)
	for round := range 3 {
		for i := range maxEntries {
			c.get("k"+strconv.Itoa(round*maxEntries+i), 1)
		}
		time.Sleep(40 * time.Millisecond) // every entry expires
	}
	if got, want := metricValue(t, reg, "rickmorty_cache_evictions_total"), 0.0; got != want {
		t.Errorf("evictions = %v, want %v: expired entries counted as live", got, want)
	}
	if got := c.Len(); got > maxEntries {
		t.Errorf("entries = %d, over the bound %d", got, maxEntries)
	}
}

// blob is a value with a declared size, for the byte bound.
type blob int64

func (b blob) Size() int64 { return int64(b) }

func TestBytesAreBounded(t *testing.T) {
	c := cache.New[blob](cache.Config{TTL: time.Hour, MaxEntries: 1000, MaxBytes: 1000}, nil)
	get := func(key string, size blob) {
		t.Helper()
		if _, err := c.Get(context.Background(), key, func(context.Context) (blob, error) { return size, nil }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		get("k"+strconv.Itoa(i), 300)
		if got := c.Bytes(); got > 1000 {
			t.Fatalf("after %d fills the cache holds %d bytes, over the 1000 bound", i+1, got)
		}
	}
	if got, want := c.Len(), 3; got != want {
		t.Errorf("entries = %d, want %d (3 x 300 bytes fit in 1000)", got, want)
	}
	if _, ok := c.Peek("k19"); !ok {
		t.Error("the newest entry was evicted; the oldest should go first")
	}
	if _, ok := c.Peek("k0"); ok {
		t.Error("the oldest entry survived")
	}

	get("huge", 5000) // larger than the whole budget: served, not kept
	if _, ok := c.Peek("huge"); ok {
		t.Error("a value larger than MaxBytes was stored")
	}
	if got, want := c.Bytes(), int64(900); got != want {
		t.Errorf("bytes = %d, want %d", got, want)
	}

	c.Flush()
	if got := c.Bytes(); got != 0 {
		t.Errorf("after Flush bytes = %d, want 0", got)
	}
}

func TestExpiredEntriesGiveTheirBytesBack(t *testing.T) {
	c := cache.New[blob](cache.Config{TTL: 20 * time.Millisecond, MaxEntries: 10, MaxBytes: 1000}, nil)
	fill := func(context.Context) (blob, error) { return 400, nil }
	for range 5 {
		if _, err := c.Get(context.Background(), "k", fill); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // expired: the next Get refills the same key
	}
	if got, want := c.Bytes(), int64(400); got != want {
		t.Errorf("bytes = %d after refilling one expired key, want %d", got, want)
	}
}
