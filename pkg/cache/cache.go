// Package cache is the API's per-pod read cache: a TTL cache
// (patrickmn/go-cache) bounded in entries and bytes, one fill per key at a
// time (singleflight), and values tied to the data version the database
// holds, so that a version change retires exactly the values read before it.
package cache

import (
	"container/list"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// Config tunes a Cache.
type Config struct {
	// TTL is how long an entry lives; 0 disables caching entirely (every
	// Get calls fill), which the uncached benchmark uses.
	TTL time.Duration
	// MaxEntries bounds the number of entries; when full, the oldest
	// insertion is evicted. Values below 1 mean 1.
	MaxEntries int
	// MaxBytes bounds the summed Size of values that implement Sized, so
	// large pages cannot multiply MaxEntries into a large heap; the oldest
	// insertions are evicted to make room. 0 means no byte bound.
	MaxBytes int64
	// FillTimeout bounds one shared fill. A fill outlives the request that
	// started it (others may be waiting on it), so it gets its own deadline.
	FillTimeout time.Duration
}

// Sized values report their approximate memory footprint in bytes.
type Sized interface{ Size() int64 }

// Versioned values carry the data version they were read at. A cache of
// them serves only values read at its current version (SetVersion).
type Versioned interface{ DataVersion() int64 }

// Cache maps string keys to values of type V.
type Cache[V any] struct {
	cfg       Config
	versioned bool
	// version is the data version served: values read at any other are
	// stale. It follows the database (SetVersion), up or down, and rises
	// when a fill reads a newer one before the notification arrives.
	version atomic.Int64
	// known is false until the first version is learnt, which retires
	// nothing and so is no invalidation.
	known atomic.Bool
	// gen changes with every version change and flush. It is part of a
	// fill's flight key, so a request never joins a fill that began before
	// the data changed, and such a fill stores nothing.
	gen   atomic.Uint64
	items *gocache.Cache

	// mu orders stores, evictions, version changes and flushes; lookups
	// never take it. slots indexes every held entry in insertion order:
	// entries share one TTL, so the oldest insertion expires first and the
	// front of order is always the first to reclaim or evict.
	mu sync.Mutex
	// followMu serialises Follow, so a slow read of the database's version
	// can never overwrite a newer one.
	followMu sync.Mutex
	order    *list.List // of *slot
	slots    map[string]*list.Element
	bytes    atomic.Int64

	group singleflight.Group

	hits, misses, evictions, invalidations prometheus.Counter
}

// slot is the bookkeeping for one held entry.
type slot struct {
	key     string
	version int64
	size    int64
	expires time.Time
}

// New returns a Cache and registers its metrics with reg (nil skips
// registration, for tests).
func New[V any](cfg Config, reg prometheus.Registerer) *Cache[V] {
	cfg.MaxEntries = max(cfg.MaxEntries, 1)
	if cfg.FillTimeout <= 0 {
		cfg.FillTimeout = 10 * time.Second
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "cache", Name: name, Help: help,
		})
	}
	var zero V
	_, versioned := any(zero).(Versioned)
	c := &Cache[V]{
		cfg:           cfg,
		versioned:     versioned,
		order:         list.New(),
		slots:         make(map[string]*list.Element),
		hits:          counter("hits_total", "Lookups answered from the cache."),
		misses:        counter("misses_total", "Lookups that had to be filled from the database."),
		evictions:     counter("evictions_total", "Live entries removed to stay within CACHE_MAX_ENTRIES and CACHE_MAX_BYTES."),
		invalidations: counter("invalidations_total", "Data version changes and flushes that retired the cached entries."),
	}
	if cfg.TTL > 0 {
		// No janitor: expired entries are reclaimed from the front of the
		// insertion order, where they are, by the next store.
		c.items = gocache.New(cfg.TTL, 0)
	}
	if reg != nil {
		entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: telemetry.Namespace, Subsystem: "cache", Name: "entries",
			Help: "Entries held, including expired ones not yet reclaimed.",
		}, func() float64 { return float64(c.Len()) })
		bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: telemetry.Namespace, Subsystem: "cache", Name: "bytes",
			Help: "Approximate bytes held by cached responses (bounded by CACHE_MAX_BYTES).",
		}, func() float64 { return float64(c.Bytes()) })
		version := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: telemetry.Namespace, Subsystem: "cache", Name: "data_version",
			Help: "The data version this pod serves (the database's, as last learned).",
		}, func() float64 { return float64(c.Version()) })
		reg.MustRegister(c.hits, c.misses, c.evictions, c.invalidations, entries, bytes, version)
	}
	return c
}

// Enabled reports whether the cache stores anything.
func (c *Cache[V]) Enabled() bool { return c.items != nil }

// Len returns the number of entries held.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.slots)
}

// Bytes returns the summed Size of the values held.
func (c *Cache[V]) Bytes() int64 { return c.bytes.Load() }

// Version returns the data version served.
func (c *Cache[V]) Version() int64 { return c.version.Load() }

// Peek returns the cached value for key without filling it.
func (c *Cache[V]) Peek(key string) (V, bool) {
	if c.items != nil {
		if x, ok := c.items.Get(key); ok {
			if v := x.(V); c.current(v) {
				return v, true
			}
		}
	}
	var zero V
	return zero, false
}

// current reports whether v was read at the version served.
func (c *Cache[V]) current(v V) bool {
	return !c.versioned || versionOf(v) == c.version.Load()
}

func versionOf(v any) int64 {
	if x, ok := v.(Versioned); ok {
		return x.DataVersion()
	}
	return 0
}

// Lookup returns the cached value for key, counting a hit when found. A
// miss is not counted: the caller goes on to Get, which counts it.
func (c *Cache[V]) Lookup(key string) (V, bool) {
	v, ok := c.Peek(key)
	if ok {
		c.hits.Inc()
	}
	return v, ok
}

// Get returns the value for key, calling fill on a miss. Concurrent misses
// on one key share one fill. Errors are returned, never cached. A caller
// whose ctx ends stops waiting; the shared fill goes on for the others.
// A fill that read a version older than the one served is returned to its
// callers but not stored; one that read a newer version makes it the one
// served.
func (c *Cache[V]) Get(ctx context.Context, key string, fill func(context.Context) (V, error)) (V, error) {
	if c.items == nil {
		c.misses.Inc()
		v, err := fill(ctx)
		if err == nil && c.versioned && versionOf(v) > c.version.Load() {
			c.mu.Lock()
			c.advance(versionOf(v))
			c.mu.Unlock()
		}
		return v, err
	}
	if v, ok := c.Peek(key); ok {
		c.hits.Inc()
		return v, nil
	}
	c.misses.Inc()

	gen := c.gen.Load()
	ch := c.group.DoChan(strconv.FormatUint(gen, 10)+"\x00"+key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FillTimeout)
		defer cancel()
		v, err := fill(fctx)
		if err == nil {
			c.store(gen, key, v)
		}
		return v, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			var zero V
			return zero, r.Err
		}
		return r.Val.(V), nil
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// store adds v, read by a fill that began at generation gen, unless the
// data changed since or v is older than the version served.
func (c *Cache[V]) store(gen uint64, key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	version := versionOf(v)
	if c.versioned && version < c.version.Load() {
		return
	}
	if e, ok := c.slots[key]; ok {
		c.remove(e) // replaced: its bytes come back, it was not evicted
	}
	size := sizeOf(v)
	if c.cfg.MaxBytes > 0 && size > c.cfg.MaxBytes {
		return // larger than the whole budget: serve it, never keep it
	}
	now := time.Now()
	c.reclaimExpired(now)
	for len(c.slots) >= c.cfg.MaxEntries || (c.cfg.MaxBytes > 0 && c.bytes.Load()+size > c.cfg.MaxBytes) {
		c.evictions.Inc() // reclaimExpired left only live entries
		c.remove(c.order.Front())
	}
	c.slots[key] = c.order.PushBack(&slot{key: key, version: version, size: size, expires: now.Add(c.cfg.TTL)})
	c.bytes.Add(size)
	c.items.Set(key, v, c.cfg.TTL)
	if c.versioned && version > c.version.Load() {
		// The data changed and the notification is still on its way. The
		// value is stored first, so requests that look meanwhile join this
		// fill's flight rather than start their own.
		c.advance(version)
	}
}

// reclaimExpired drops the expired entries, all at the front. Caller holds mu.
func (c *Cache[V]) reclaimExpired(now time.Time) {
	for e := c.order.Front(); e != nil && !now.Before(e.Value.(*slot).expires); e = c.order.Front() {
		c.remove(e)
	}
}

// remove drops one held entry. Caller holds mu.
func (c *Cache[V]) remove(e *list.Element) {
	s := c.order.Remove(e).(*slot)
	delete(c.slots, s.key)
	c.items.Delete(s.key)
	c.bytes.Add(-s.size)
}

// SetVersion makes version the data version served, up or down: values
// read at any other version are dropped at once (they never crowd out
// current ones), fills under way store nothing, and later requests start
// fills of their own. It reports whether the version changed.
func (c *Cache[V]) SetVersion(version int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version == c.version.Load() && c.known.Load() {
		return false
	}
	c.advance(version)
	return true
}

// Follow makes the version served the one current reads (the database's),
// up or down, like SetVersion. Calls are serialised: of two overlapping
// calls, the one that read later sets the version last.
func (c *Cache[V]) Follow(ctx context.Context, current func(context.Context) (int64, error)) (changed bool, version int64, err error) {
	c.followMu.Lock()
	defer c.followMu.Unlock()
	version, err = current(ctx)
	if err != nil {
		return false, c.Version(), err
	}
	return c.SetVersion(version), version, nil
}

// advance switches to version and drops every value read at another. The
// generation moves first (unless this is the first version learnt, when
// nothing can be stale): a request that sees the new version can then only
// start a fill of its own, never join one that began before. Caller holds mu.
func (c *Cache[V]) advance(version int64) {
	if c.known.Swap(true) {
		c.gen.Add(1)
		c.invalidations.Inc()
	}
	c.version.Store(version)
	if c.items == nil {
		return
	}
	for e := c.order.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*slot).version != version {
			c.remove(e)
		}
		e = next
	}
}

// Flush drops every entry and makes fills already under way discard what
// they read.
func (c *Cache[V]) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.invalidations.Inc()
	if c.items == nil {
		return
	}
	c.items.Flush()
	c.order.Init()
	clear(c.slots)
	c.bytes.Store(0)
}

func sizeOf(x any) int64 {
	if s, ok := x.(Sized); ok {
		return s.Size()
	}
	return 0
}
