// Package tokencache remembers what verified bearer tokens were verified
// to, by each token's exact text, until the token expires: so that a
// client's repeated requests do not each cost a signature check.
//
// It holds only what a caller puts in it; what may be cached, and what must
// still be checked on every hit, is the caller's to decide.
package tokencache

import (
	"sync"
	"time"
)

// Cache maps token texts to values, each until its own deadline, at most
// Max at once. The zero value holds nothing until Max is set; it is safe
// for concurrent use.
type Cache[V any] struct {
	Max int

	mu sync.Mutex
	m  map[string]entry[V]
}

type entry[V any] struct {
	v     V
	until time.Time
}

// Get returns token's value if it was put and its deadline is after now.
func (c *Cache[V]) Get(token string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[token]
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put remembers v for token until the deadline until; a deadline not after
// now keeps nothing. A full cache first drops the entries whose deadline
// has passed; if that frees less than a quarter of it, it starts empty
// rather than sweep again on every Put.
func (c *Cache[V]) Put(token string, v V, until, now time.Time) {
	if c.Max <= 0 || !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]entry[V]{}
	}
	if _, ok := c.m[token]; !ok && len(c.m) >= c.Max {
		for t, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, t)
			}
		}
		if len(c.m) > c.Max-c.Max/4 {
			c.m = map[string]entry[V]{}
		}
	}
	c.m[token] = entry[V]{v: v, until: until}
}

// Delete forgets token.
func (c *Cache[V]) Delete(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, token)
}

// Clear forgets every token.
func (c *Cache[V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// Len is how many tokens are remembered, including any past their deadline
// that no Put has swept yet.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
