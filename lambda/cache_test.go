package lambda

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// testScope returns a scope for id as the adapter would make it once the
// database had confirmed its context. These tests need no database.
func testScope(id tenant.ID) *Scope {
	s := &Scope{a: &Adapter{Now: time.Now}, token: "v1.test." + string(id), schema: "app", claims: ctxtoken.Claims{TenantID: string(id)}}
	s.verified.Store(true)
	return s
}

const (
	tenantA tenant.ID = "00000000-0000-4000-8000-00000000000a"
	tenantB tenant.ID = "00000000-0000-4000-8000-00000000000b"
	tenantC tenant.ID = "00000000-0000-4000-8000-00000000000c"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestTenantCacheKeyedByTenant(t *testing.T) {
	ctx := context.Background()
	c := NewTenantCache[string](CacheConfig{})
	a, b := testScope(tenantA), testScope(tenantB)
	if err := c.Set(ctx, a, "config", "A's secret"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, b, "config"); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Get(B, config) = %q, %v, want ErrCacheMiss", got, err)
	}
	if got, err := c.Get(ctx, a, "config"); err != nil || got != "A's secret" {
		t.Fatalf("Get(A, config) = %q, %v", got, err)
	}
	loads := 0
	got, err := c.GetOrLoad(ctx, b, "config", func(context.Context) (string, error) { loads++; return "B's secret", nil })
	if err != nil || got != "B's secret" || loads != 1 {
		t.Fatalf("GetOrLoad(B) = %q, %v after %d loads", got, err, loads)
	}
	if got, _ := c.View(a).Get(ctx, "config"); got != "A's secret" {
		t.Fatalf("A's value after B's load = %q", got)
	}
	if err := c.Delete(ctx, b, "config"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, a, "config"); got != "A's secret" {
		t.Fatalf("B's Delete removed A's value: %q", got)
	}
	c.Purge(tenantA)
	if _, err := c.Get(ctx, a, "config"); !errors.Is(err, ErrCacheMiss) || c.Len() != 0 {
		t.Fatalf("after Purge: %v, Len %d", err, c.Len())
	}
	if _, err := c.GetOrLoad(ctx, a, "k", func(context.Context) (string, error) { return "", errors.New("down") }); err == nil || c.Len() != 0 {
		t.Fatalf("a failed load was cached: %v, Len %d", err, c.Len())
	}
}

// Many tenants use the same keys concurrently: no read ever returns
// another tenant's value. Run with -race.
func TestTenantCacheConcurrentIsolation(t *testing.T) {
	ctx := context.Background()
	c := NewTenantCache[string](CacheConfig{MaxEntries: 64, MaxEntriesPerTenant: 8})
	ids := make([]tenant.ID, 16)
	for i := range ids {
		ids[i] = tenant.ID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := range 32 {
		wg.Go(func() {
			for i := range 2000 {
				id := ids[(w+i)%len(ids)]
				s := testScope(id)
				key := fmt.Sprint("k", i%12) // the same keys for every tenant
				var v string
				var err error
				switch i % 3 {
				case 0:
					err = c.Set(ctx, s, key, string(id)+"/"+key)
					v = string(id) + "/" + key
				case 1:
					v, err = c.Get(ctx, s, key)
				default:
					v, err = c.View(s).GetOrLoad(ctx, key, func(context.Context) (string, error) { return string(id) + "/" + key, nil })
				}
				if errors.Is(err, ErrCacheMiss) {
					continue
				}
				if err != nil || v != string(id)+"/"+key {
					select {
					case errs <- fmt.Sprintf("tenant %s key %s got %q, %v", id, key, v, err):
					default:
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := c.Len(); n > 64 {
		t.Errorf("Len = %d over MaxEntries 64", n)
	}
}

func TestTenantCacheLRU(t *testing.T) {
	ctx := context.Background()
	t.Run("PerTenant", func(t *testing.T) {
		c := NewTenantCache[int](CacheConfig{MaxEntries: 100, MaxEntriesPerTenant: 2})
		a, b := testScope(tenantA), testScope(tenantB)
		c.Set(ctx, b, "b1", 1)
		c.Set(ctx, a, "k1", 1)
		c.Set(ctx, a, "k2", 2)
		c.Get(ctx, a, "k1") // k2 is now A's least recently used
		c.Set(ctx, a, "k3", 3)
		if _, err := c.Get(ctx, a, "k2"); !errors.Is(err, ErrCacheMiss) {
			t.Errorf("k2 survived: %v", err)
		}
		for _, k := range []string{"k1", "k3"} {
			if _, err := c.Get(ctx, a, k); err != nil {
				t.Errorf("Get(A, %s): %v", k, err)
			}
		}
		// A's churn never evicts B's entry.
		if v, err := c.Get(ctx, b, "b1"); err != nil || v != 1 {
			t.Errorf("B's entry after A's evictions: %d, %v", v, err)
		}
	})
	t.Run("Overall", func(t *testing.T) {
		c := NewTenantCache[int](CacheConfig{MaxEntries: 3, MaxEntriesPerTenant: 3})
		a, b, cs := testScope(tenantA), testScope(tenantB), testScope(tenantC)
		c.Set(ctx, a, "x", 1)
		c.Set(ctx, b, "x", 2)
		c.Set(ctx, cs, "x", 3)
		c.Get(ctx, a, "x") // B's is now the least recently used of all
		c.Set(ctx, cs, "y", 4)
		if c.Len() != 3 {
			t.Errorf("Len = %d, want 3", c.Len())
		}
		if _, err := c.Get(ctx, b, "x"); !errors.Is(err, ErrCacheMiss) {
			t.Errorf("B's x survived: %v", err)
		}
		if v, _ := c.Get(ctx, a, "x"); v != 1 {
			t.Errorf("A's x = %d", v)
		}
		// Refill: the internal per-tenant lists must stay consistent.
		for i := range 10 {
			c.Set(ctx, b, fmt.Sprint("z", i), i)
		}
		if c.Len() != 3 {
			t.Errorf("Len after refill = %d", c.Len())
		}
		c.Purge(tenantB)
		if c.Len() != 0 {
			t.Errorf("Len after purging the only tenant left = %d", c.Len())
		}
	})
}

func TestTenantCacheTTL(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := NewTenantCache[string](CacheConfig{TTL: time.Minute, Now: clock.Now})
	a := testScope(tenantA)
	c.Set(ctx, a, "k", "v1")
	clock.Advance(59 * time.Second)
	if v, err := c.Get(ctx, a, "k"); err != nil || v != "v1" {
		t.Fatalf("Get at 59s = %q, %v", v, err)
	}
	clock.Advance(time.Second)
	if _, err := c.Get(ctx, a, "k"); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Get at 60s: %v, want ErrCacheMiss", err)
	}
	if c.Len() != 0 {
		t.Errorf("an expired entry stayed after a Get: Len %d", c.Len())
	}
	loads := 0
	load := func(context.Context) (string, error) { loads++; return fmt.Sprint("v", loads+1), nil }
	c.GetOrLoad(ctx, a, "k", load)
	clock.Advance(30 * time.Second)
	c.GetOrLoad(ctx, a, "k", load)
	clock.Advance(31 * time.Second)
	v, _ := c.GetOrLoad(ctx, a, "k", load)
	if loads != 2 || v != "v3" {
		t.Errorf("GetOrLoad across expiry: %d loads, value %q, want 2 and v3", loads, v)
	}
	// Setting again restarts the TTL.
	c.Set(ctx, a, "k", "v4")
	clock.Advance(59 * time.Second)
	if v, _ := c.Get(ctx, a, "k"); v != "v4" {
		t.Errorf("after Set again: %q", v)
	}
}

func TestScopeEndedCache(t *testing.T) {
	ctx := context.Background()
	c := NewTenantCache[string](CacheConfig{})
	s := testScope(tenantA)
	c.Set(ctx, s, "k", "v")
	s.end()
	if _, err := c.Get(ctx, s, "k"); !errors.Is(err, ErrScopeEnded) {
		t.Errorf("Get after end: %v", err)
	}
	if err := c.Set(ctx, s, "k", "w"); !errors.Is(err, ErrScopeEnded) {
		t.Errorf("Set after end: %v", err)
	}
	if _, err := c.GetOrLoad(ctx, s, "x", func(context.Context) (string, error) { return "w", nil }); !errors.Is(err, ErrScopeEnded) {
		t.Errorf("GetOrLoad after end: %v", err)
	}
	// A scope that ends while its load runs does not store.
	s2 := testScope(tenantB)
	if _, err := c.GetOrLoad(ctx, s2, "x", func(context.Context) (string, error) { s2.end(); return "late", nil }); !errors.Is(err, ErrScopeEnded) {
		t.Errorf("GetOrLoad ending mid-load: %v", err)
	}
	var zero Scope
	if _, err := c.Get(ctx, &zero, "k"); !errors.Is(err, tenant.ErrNoTenant) {
		t.Errorf("Get with a zero Scope: %v", err)
	}
	if _, err := c.Get(ctx, nil, "k"); !errors.Is(err, tenant.ErrNoTenant) {
		t.Errorf("Get with a nil Scope: %v", err)
	}
}
