package lambda

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// Default cache bounds.
const (
	DefaultCacheEntries          = 1024
	DefaultCacheEntriesPerTenant = 128
	DefaultCacheTTL              = 5 * time.Minute
)

// ErrCacheMiss is returned by Get when the scope's tenant has no live entry
// under the key.
var ErrCacheMiss = fault.E(fault.NotFound, "cache_miss", "No cached value.")

// CacheConfig configures NewTenantCache. Zero fields take the defaults.
type CacheConfig struct {
	// MaxEntries bounds the entries of all tenants together; the least
	// recently used entry of any tenant goes first.
	MaxEntries int
	// MaxEntriesPerTenant bounds one tenant's entries, so one busy tenant
	// cannot evict everyone else's; its own least recently used entry goes
	// first.
	MaxEntriesPerTenant int
	// TTL is how long an entry lives after it was set.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// TenantCache is a bounded, expiring cache whose every entry belongs to one
// tenant. It is safe for concurrent use, and meant to live in a package
// variable of a Lambda function, across invocations:
//
//	var configs = lambda.NewTenantCache[Config](lambda.CacheConfig{TTL: time.Minute})
//
// Isolation: there is no method that takes a key alone. Every read and write
// takes a [*Scope] and uses its tenant as part of the key, so a value set
// under one tenant's scope is never returned under another's, whatever key
// the code uses. The scope's tenant is confirmed by the database before the
// first cache access of an invocation (see [Scope]), and a scope whose
// invocation ended gets [ErrScopeEnded].
type TenantCache[V any] struct {
	max, perTenant int
	ttl            time.Duration
	now            func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry[V]
	lru     list.List                // of *cacheEntry[V], most recent first
	tenants map[tenant.ID]*list.List // each tenant's entries, most recent first
}

type cacheKey struct {
	tenant tenant.ID
	key    string
}

type cacheEntry[V any] struct {
	key     cacheKey
	val     V
	expires time.Time
	all     *list.Element // in TenantCache.lru
	own     *list.Element // in TenantCache.tenants[key.tenant]
}

// NewTenantCache returns an empty cache.
func NewTenantCache[V any](cfg CacheConfig) *TenantCache[V] {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultCacheEntries
	}
	if cfg.MaxEntriesPerTenant <= 0 {
		cfg.MaxEntriesPerTenant = DefaultCacheEntriesPerTenant
	}
	cfg.MaxEntriesPerTenant = min(cfg.MaxEntriesPerTenant, cfg.MaxEntries)
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &TenantCache[V]{
		max: cfg.MaxEntries, perTenant: cfg.MaxEntriesPerTenant, ttl: cfg.TTL, now: cfg.Now,
		entries: map[cacheKey]*cacheEntry[V]{}, tenants: map[tenant.ID]*list.List{},
	}
}

// Get returns the scope's tenant's value under key, or [ErrCacheMiss]. It
// returns [ErrScopeEnded] after the scope's invocation, and Unauthenticated
// when the database does not confirm the scope's context.
func (c *TenantCache[V]) Get(ctx context.Context, s *Scope, key string) (V, error) {
	var zero V
	id, err := s.cacheTenant(ctx)
	if err != nil {
		return zero, err
	}
	if v, ok := c.get(id, key); ok {
		return v, nil
	}
	return zero, ErrCacheMiss
}

// Set stores v under key for the scope's tenant, for the cache's TTL.
func (c *TenantCache[V]) Set(ctx context.Context, s *Scope, key string, v V) error {
	id, err := s.cacheTenant(ctx)
	if err != nil {
		return err
	}
	c.set(id, key, v)
	return nil
}

// Delete removes the scope's tenant's entry under key.
func (c *TenantCache[V]) Delete(ctx context.Context, s *Scope, key string) error {
	id, err := s.cacheTenant(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[cacheKey{id, key}]; ok {
		c.remove(e)
	}
	return nil
}

// GetOrLoad returns the scope's tenant's value under key, or calls load,
// stores what it returns and returns it. Errors are not cached. Two
// invocations that miss at once may both load; the later value is kept.
//
// load runs in the same invocation, so it typically reads with s.Tx.
func (c *TenantCache[V]) GetOrLoad(ctx context.Context, s *Scope, key string, load func(context.Context) (V, error)) (V, error) {
	var zero V
	id, err := s.cacheTenant(ctx)
	if err != nil {
		return zero, err
	}
	if v, ok := c.get(id, key); ok {
		return v, nil
	}
	v, err := load(ctx)
	if err != nil {
		return zero, err
	}
	// The scope may have ended while load ran (a goroutine outliving its
	// invocation): fail the same way as any other late access.
	if err := s.live(); err != nil {
		return zero, err
	}
	c.set(id, key, v)
	return v, nil
}

// Purge removes every entry of one tenant, for example after the control
// plane changed or offboarded it. It reads nothing, so it needs no scope.
func (c *TenantCache[V]) Purge(id tenant.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.tenants[id]; ok {
		for l.Len() > 0 {
			c.remove(l.Front().Value.(*cacheEntry[V]))
		}
	}
}

// Len returns the number of entries held, live or expired but not yet
// dropped, of all tenants.
func (c *TenantCache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// View returns s's view of c: the same cache, pinned to s's tenant.
func (c *TenantCache[V]) View(s *Scope) View[V] { return View[V]{c: c, s: s} }

func (c *TenantCache[V]) get(id tenant.ID, key string) (V, bool) {
	var zero V
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[cacheKey{id, key}]
	if !ok {
		return zero, false
	}
	if !c.now().Before(e.expires) {
		c.remove(e)
		return zero, false
	}
	c.lru.MoveToFront(e.all)
	c.tenants[id].MoveToFront(e.own)
	return e.val, true
}

func (c *TenantCache[V]) set(id tenant.ID, key string, v V) {
	k := cacheKey{id, key}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.now().Add(c.ttl)
	if e, ok := c.entries[k]; ok {
		e.val, e.expires = v, exp
		c.lru.MoveToFront(e.all)
		c.tenants[id].MoveToFront(e.own)
		return
	}
	own := c.tenants[id]
	if own == nil {
		own = list.New()
		c.tenants[id] = own
	}
	if own.Len() >= c.perTenant {
		c.remove(own.Back().Value.(*cacheEntry[V]))
		own = c.tenantList(id)
	}
	if len(c.entries) >= c.max {
		c.remove(c.lru.Back().Value.(*cacheEntry[V]))
		own = c.tenantList(id)
	}
	e := &cacheEntry[V]{key: k, val: v, expires: exp}
	e.all = c.lru.PushFront(e)
	e.own = own.PushFront(e)
	c.entries[k] = e
}

// tenantList returns id's list, making it again if a removal dropped it.
func (c *TenantCache[V]) tenantList(id tenant.ID) *list.List {
	l := c.tenants[id]
	if l == nil {
		l = list.New()
		c.tenants[id] = l
	}
	return l
}

func (c *TenantCache[V]) remove(e *cacheEntry[V]) {
	delete(c.entries, e.key)
	c.lru.Remove(e.all)
	own := c.tenants[e.key.tenant]
	own.Remove(e.own)
	if own.Len() == 0 {
		delete(c.tenants, e.key.tenant)
	}
}

// View is a [TenantCache] seen through one [Scope]: the same entries as the
// cache's methods that take that scope, with the scope already supplied.
type View[V any] struct {
	c *TenantCache[V]
	s *Scope
}

// Get is [TenantCache.Get] for the view's scope.
func (v View[V]) Get(ctx context.Context, key string) (V, error) { return v.c.Get(ctx, v.s, key) }

// Set is [TenantCache.Set] for the view's scope.
func (v View[V]) Set(ctx context.Context, key string, val V) error {
	return v.c.Set(ctx, v.s, key, val)
}

// Delete is [TenantCache.Delete] for the view's scope.
func (v View[V]) Delete(ctx context.Context, key string) error { return v.c.Delete(ctx, v.s, key) }

// GetOrLoad is [TenantCache.GetOrLoad] for the view's scope.
func (v View[V]) GetOrLoad(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	return v.c.GetOrLoad(ctx, v.s, key, load)
}
