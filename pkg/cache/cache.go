// Package cache is the API's per-pod read cache: a TTL cache
// (patrickmn/go-cache) with a hard bound on entries, one fill per key at a
// time (singleflight), and invalidation by generation so that a fill which
// began before a flush can never store what it read.
package cache

import (
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

// Versioned values carry the data version they were read at. For them
// Invalidate is precise: only values older than the announced version go.
type Versioned interface{ DataVersion() int64 }

// Cache maps string keys to values of type V.
type Cache[V any] struct {
	cfg       Config
	versioned bool
	// floor is the oldest data version still served. Raising it makes older
	// values stale at once; they are dropped lazily when looked up.
	floor atomic.Int64

	// mu orders flushes against stores: a store holds it shared while it
	// checks the generation and writes, a flush holds it exclusively.
	mu    sync.RWMutex
	gen   atomic.Uint64
	items *gocache.Cache

	// ring remembers keys in insertion order so the oldest can be evicted;
	// go-cache itself has no size bound and no cheap way to pick a victim.
	ringMu sync.Mutex
	ring   []string
	head   int
	n      int

	group singleflight.Group

	// bytes is the summed Size of the values held (Sized values only).
	bytes atomic.Int64

	hits, misses, evictions, invalidations prometheus.Counter
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
		hits:          counter("hits_total", "Lookups answered from the cache."),
		misses:        counter("misses_total", "Lookups that had to be filled from the database."),
		evictions:     counter("evictions_total", "Live entries removed to stay within CACHE_MAX_ENTRIES and CACHE_MAX_BYTES."),
		invalidations: counter("invalidations_total", "Whole-cache flushes (data change notifications and listener reconnects)."),
	}
	if cfg.TTL > 0 {
		// The janitor reclaims expired entries' memory; lookups already
		// ignore them.
		c.items = gocache.New(cfg.TTL, max(cfg.TTL, time.Minute))
		// Every removal (delete, eviction, expiry) gives its bytes back.
		c.items.OnEvicted(func(_ string, x any) { c.bytes.Add(-sizeOf(x)) })
		c.ring = make([]string, cfg.MaxEntries)
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
		reg.MustRegister(c.hits, c.misses, c.evictions, c.invalidations, entries, bytes)
	}
	return c
}

// Enabled reports whether the cache stores anything.
func (c *Cache[V]) Enabled() bool { return c.items != nil }

// Len returns the number of entries held.
func (c *Cache[V]) Len() int {
	if c.items == nil {
		return 0
	}
	return c.items.ItemCount()
}

// Peek returns the cached value for key without filling it.
func (c *Cache[V]) Peek(key string) (V, bool) {
	if c.items != nil {
		if x, ok := c.items.Get(key); ok {
			v := x.(V)
			if c.fresh(v) {
				return v, true
			}
			c.items.Delete(key)
		}
	}
	var zero V
	return zero, false
}

func (c *Cache[V]) fresh(v V) bool {
	if !c.versioned {
		return true
	}
	return any(v).(Versioned).DataVersion() >= c.floor.Load()
}

// raiseFloor makes values older than version stale.
func (c *Cache[V]) raiseFloor(version int64) {
	for {
		cur := c.floor.Load()
		if version <= cur || c.floor.CompareAndSwap(cur, version) {
			return
		}
	}
}

// Invalidate announces data version version: values read at an older
// version are no longer served, and fills that read one are not stored.
// Values already at version stay, so a page read just after the commit is
// not thrown away when the notification arrives a moment later. Caches of
// unversioned values are flushed.
func (c *Cache[V]) Invalidate(version int64) {
	if !c.versioned {
		c.Flush()
		return
	}
	c.invalidations.Inc()
	c.raiseFloor(version)
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
func (c *Cache[V]) Get(ctx context.Context, key string, fill func(context.Context) (V, error)) (V, error) {
	if c.items == nil {
		c.misses.Inc()
		return fill(ctx)
	}
	if v, ok := c.Peek(key); ok {
		c.hits.Inc()
		return v, nil
	}
	c.misses.Inc()

	// The generation is part of the flight key: a request arriving after a
	// flush must not join a fill that may have read pre-flush data.
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

// store adds v unless the cache was flushed since the fill began.
func (c *Cache[V]) store(gen uint64, key string, v V) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen.Load() != gen || !c.fresh(v) {
		return
	}
	if c.versioned {
		// A newer version seen by a fill means the data changed, even if
		// the notification has not arrived yet.
		c.raiseFloor(any(v).(Versioned).DataVersion())
	}
	c.ringMu.Lock()
	defer c.ringMu.Unlock()
	if _, live := c.items.Get(key); !live {
		if c.n == len(c.ring) {
			c.evictOldest()
		}
		c.ring[(c.head+c.n)%len(c.ring)] = key
		c.n++
	}
	// Whatever the key held, live or expired, gives its bytes back first.
	c.items.Delete(key)
	size := sizeOf(v)
	if c.cfg.MaxBytes > 0 && size > c.cfg.MaxBytes {
		return // larger than the whole budget: serve it, never keep it
	}
	for c.cfg.MaxBytes > 0 && c.bytes.Load()+size > c.cfg.MaxBytes && c.n > 1 {
		c.evictOldest()
	}
	c.bytes.Add(size)
	c.items.Set(key, v, c.cfg.TTL)
}

// evictOldest removes the oldest insertion from the ring and the cache.
// The caller holds ringMu.
func (c *Cache[V]) evictOldest() {
	oldest := c.ring[c.head]
	if _, live := c.items.Get(oldest); live {
		c.evictions.Inc()
	}
	c.items.Delete(oldest)
	c.ring[c.head] = ""
	c.head = (c.head + 1) % len(c.ring)
	c.n--
}

// Bytes returns the summed Size of the values held.
func (c *Cache[V]) Bytes() int64 { return c.bytes.Load() }

func sizeOf(x any) int64 {
	if s, ok := x.(Sized); ok {
		return s.Size()
	}
	return 0
}

// Flush drops every entry and makes fills already under way discard what
// they read.
func (c *Cache[V]) Flush() {
	c.invalidations.Inc()
	if c.items == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.items.Flush() // calls no OnEvicted: reset the byte count with it
	c.bytes.Store(0)
	c.ringMu.Lock()
	clear(c.ring)
	c.head, c.n = 0, 0
	c.ringMu.Unlock()
}
