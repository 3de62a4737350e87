// Package fresh is a small read-through cache with a staleness bound, for
// the catalog facts a gateway reads on every request (a tenant, a user, a
// tenant's policies).
//
// A value is served for at most MaxAge after the load that produced it
// began, never longer. A read in the second half of that age starts one
// background reload and is answered at once from the cache, so a busy key
// is reloaded ahead of its expiry and no request waits on the database for
// it. Concurrent reads of a missing or expired key share one load. Errors
// are not cached.
package fresh

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxEntries bounds a Cache whose MaxEntries is zero.
const DefaultMaxEntries = 100_000

// loadTimeout bounds a load, which runs apart from the request that
// started it (other requests may be waiting on it).
const loadTimeout = 10 * time.Second

// Cache maps keys to values loaded on demand. The zero value is not
// ready; set Load and MaxAge. A Cache must not be copied after first use.
type Cache[K comparable, V any] struct {
	// Load reads the value for a key. Other requests may wait on it, so it
	// runs on a context of its own, bounded by a timeout, that carries
	// nothing of the request that started it (neither its cancellation nor
	// its values: no principal outlives its request here).
	Load func(context.Context, K) (V, error)
	// MaxAge is how long after its load began a value may be served.
	MaxAge time.Duration
	// MaxEntries bounds the cache (0: DefaultMaxEntries). When it is
	// full, expired values go first; if too few have, it starts empty.
	MaxEntries int
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu    sync.Mutex
	m     map[K]entry[V]
	calls map[K]*call[V]
	gen   uint64 // bumped by Forget: loads begun before it are not stored
}

type entry[V any] struct {
	v  V
	at time.Time // when the load that produced v began
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func (c *Cache[K, V]) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get returns the value for k, calling Load when there is none young
// enough. It returns early with ctx's error when ctx is done first.
func (c *Cache[K, V]) Get(ctx context.Context, k K) (V, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[k]; ok {
		if age := now.Sub(e.at); age < c.MaxAge {
			if age >= c.MaxAge/2 && c.calls[k] == nil {
				c.start(k, now) // refresh ahead; this read does not wait
			}
			c.mu.Unlock()
			return e.v, nil
		}
	}
	cl := c.calls[k]
	if cl == nil {
		cl = c.start(k, now)
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.v, cl.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// start runs load for k in the background and returns its call; c.mu is
// held.
func (c *Cache[K, V]) start(k K, began time.Time) *call[V] {
	cl := &call[V]{done: make(chan struct{})}
	if c.calls == nil {
		c.calls = map[K]*call[V]{}
	}
	c.calls[k] = cl
	gen := c.gen
	go func() {
		lctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
		defer cancel()
		cl.v, cl.err = c.Load(lctx, k)
		c.mu.Lock()
		delete(c.calls, k)
		if cl.err == nil && gen == c.gen {
			c.store(k, entry[V]{v: cl.v, at: began})
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	return cl
}

// store puts e under k; c.mu is held. A full cache first drops what has
// expired (nobody may be served it any more); if that frees less than a
// quarter of it, it starts empty, so that a sweep runs at most once every
// MaxEntries/4 new keys.
func (c *Cache[K, V]) store(k K, e entry[V]) {
	limit := c.MaxEntries
	if limit <= 0 {
		limit = DefaultMaxEntries
	}
	if c.m == nil {
		c.m = map[K]entry[V]{}
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= limit {
		now := c.now()
		for key, old := range c.m {
			if now.Sub(old.at) >= c.MaxAge {
				delete(c.m, key)
			}
		}
		if len(c.m) > limit-max(limit/4, 1) {
			c.m = map[K]entry[V]{}
		}
	}
	c.m[k] = e
}

// Forget drops k. A load already running is still answered to those
// waiting on it, but nothing loaded before Forget is stored.
func (c *Cache[K, V]) Forget(k K) {
	c.ForgetFunc(func(key K, _ V) bool { return key == k })
}

// ForgetFunc drops every entry for which drop returns true, with the same
// guarantee as Forget.
func (c *Cache[K, V]) ForgetFunc(drop func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.m {
		if drop(k, e.v) {
			delete(c.m, k)
		}
	}
}

// Len reports how many values the cache holds.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
