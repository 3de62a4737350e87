package fresh

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type loadFunc = func(context.Context) (int, error)

// newCache returns a cache whose Load calls the function last given to
// the returned setter.
func newCache(t *testing.T) (*Cache[string, int], *clock, func(loadFunc)) {
	t.Helper()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	var cur atomic.Pointer[loadFunc]
	c := &Cache[string, int]{MaxAge: 2 * time.Second, Now: clk.now,
		Load: func(ctx context.Context, _ string) (int, error) { return (*cur.Load())(ctx) }}
	return c, clk, func(f loadFunc) { cur.Store(&f) }
}

// idle waits until no load is running, so that a background load's result
// is stored before the test reads again.
func idle[K comparable, V any](t *testing.T, c *Cache[K, V]) {
	t.Helper()
	for range 5000 {
		c.mu.Lock()
		n := len(c.calls)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("a load is still running after 5 s")
}

// counter is a load that returns 1, 2, 3... and counts its calls.
type counter struct{ n atomic.Int64 }

func (c *counter) load(context.Context) (int, error) { return int(c.n.Add(1)), nil }

func get(t *testing.T, c *Cache[string, int], k string) int {
	t.Helper()
	v, err := c.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return v
}

func TestServesWithinMaxAgeOnly(t *testing.T) {
	c, clk, setLoad := newCache(t)
	var l counter
	setLoad(l.load)
	if v := get(t, c, "a"); v != 1 {
		t.Fatalf("first read = %d, want the first load", v)
	}
	clk.advance(999 * time.Millisecond)
	if v := get(t, c, "a"); v != 1 || l.n.Load() != 1 {
		t.Fatalf("young value: got %d after %d loads, want 1 after 1", v, l.n.Load())
	}
	// Past MaxAge the old value is never served: the read waits for a load.
	clk.advance(1001 * time.Millisecond)
	if v := get(t, c, "a"); v != 2 {
		t.Fatalf("at MaxAge: got %d, want the second load's value", v)
	}
	if v := get(t, c, "b"); v != 3 {
		t.Fatalf("another key: got %d, want its own load", v)
	}
}

func TestRefreshesAhead(t *testing.T) {
	c, clk, setLoad := newCache(t)
	release := make(chan struct{})
	var calls atomic.Int64
	setLoad(func(context.Context) (int, error) {
		n := calls.Add(1)
		if n > 1 {
			<-release
		}
		return int(n), nil
	})
	get(t, c, "a")
	clk.advance(1500 * time.Millisecond) // past half of MaxAge
	// The reads are answered from the cache while the reload waits, and
	// only one reload runs.
	for range 3 {
		if v := get(t, c, "a"); v != 1 {
			t.Fatalf("during the refresh: got %d, want the cached 1", v)
		}
	}
	close(release)
	idle(t, c)
	if calls.Load() != 2 {
		t.Fatalf("%d loads, want the first and one refresh", calls.Load())
	}
	// The refreshed value dates from when its load began (1.5 s), so it is
	// served until 3.5 s and not after.
	clk.advance(1900 * time.Millisecond)
	if v := get(t, c, "a"); v != 2 {
		t.Fatalf("after the refresh: got %d, want 2", v)
	}
	idle(t, c) // that read, at 1.9 s of age, refreshed again
	clk.advance(2 * time.Second)
	if v := get(t, c, "a"); v != 4 {
		t.Fatalf("at MaxAge after the second refresh: got %d, want a new load (4)", v)
	}
}

func TestConcurrentMissesShareOneLoad(t *testing.T) {
	c, _, setLoad := newCache(t)
	release := make(chan struct{})
	var calls atomic.Int64
	setLoad(func(context.Context) (int, error) {
		calls.Add(1)
		<-release
		return 7, nil
	})
	var wg sync.WaitGroup
	got := make([]int, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Get(context.Background(), "a")
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		}()
	}
	for range 5000 { // until the load has started
		if calls.Load() > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let the other readers reach the wait
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d loads for 16 concurrent misses, want 1", calls.Load())
	}
	for i, v := range got {
		if v != 7 {
			t.Fatalf("reader %d got %d, want 7", i, v)
		}
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c, _, setLoad := newCache(t)
	boom := errors.New("boom")
	setLoad(func(context.Context) (int, error) { return 0, boom })
	if _, err := c.Get(context.Background(), "a"); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the load's error", err)
	}
	var l counter
	setLoad(l.load)
	if v := get(t, c, "a"); v != 1 || l.n.Load() != 1 {
		t.Fatalf("after a failed load: got %d after %d loads, want a new load", v, l.n.Load())
	}
}

func TestFailedRefreshKeepsTheBound(t *testing.T) {
	c, clk, setLoad := newCache(t)
	setLoad(func(context.Context) (int, error) { return 1, nil })
	get(t, c, "a")
	clk.advance(1500 * time.Millisecond)
	setLoad(func(context.Context) (int, error) { return 0, errors.New("database down") })
	if v := get(t, c, "a"); v != 1 {
		t.Fatalf("got %d, want the cached 1 while the refresh fails", v)
	}
	idle(t, c)
	clk.advance(500 * time.Millisecond)
	if _, err := c.Get(context.Background(), "a"); err == nil {
		t.Fatal("served a value past MaxAge after a failed refresh")
	}
}

func TestForgetDuringLoad(t *testing.T) {
	c, _, setLoad := newCache(t)
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan int)
	setLoad(func(context.Context) (int, error) {
		close(started)
		<-release
		return 1, nil // read before the change Forget announces
	})
	go func() {
		v, _ := c.Get(context.Background(), "a")
		done <- v
	}()
	<-started
	c.Forget("a")
	close(release)
	if v := <-done; v != 1 {
		t.Fatalf("the waiting read got %d, want the load's 1", v)
	}
	idle(t, c)
	var l counter
	setLoad(l.load)
	if v := get(t, c, "a"); v != 1 || l.n.Load() != 1 {
		t.Fatal("a value loaded before Forget was stored")
	}
	c.ForgetFunc(func(_ string, v int) bool { return v == 1 })
	if c.Len() != 0 {
		t.Fatalf("ForgetFunc left %d entries", c.Len())
	}
}

// TestCanceledReaderDoesNotCancelTheLoad: the load runs apart from the
// request that started it, neither canceled with it nor carrying its values.
func TestCanceledReaderDoesNotCancelTheLoad(t *testing.T) {
	c, _, setLoad := newCache(t)
	release := make(chan struct{})
	started := make(chan struct{})
	type principalKey struct{}
	setLoad(func(lctx context.Context) (int, error) {
		close(started)
		<-release
		if lctx.Value(principalKey{}) != nil {
			return 0, errors.New("the load sees the request's principal")
		}
		return 5, lctx.Err()
	})
	// The reader's context carries a principal; the load, which other
	// requests may share, must not see it.
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), principalKey{}, "tenant-a"))
	errc := make(chan error)
	go func() {
		_, err := c.Get(ctx, "a")
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled reader: err = %v, want context.Canceled", err)
	}
	close(release)
	idle(t, c)
	var l counter
	setLoad(l.load)
	if v := get(t, c, "a"); v != 5 || l.n.Load() != 0 {
		t.Fatalf("got %d after %d loads, want the first load's 5 stored", v, l.n.Load())
	}
}

func TestBounded(t *testing.T) {
	c, _, setLoad := newCache(t)
	c.MaxEntries = 3
	var l counter
	setLoad(l.load)
	for _, k := range []string{"a", "b", "c", "d"} {
		get(t, c, k)
	}
	if c.Len() > 3 {
		t.Fatalf("%d entries, want at most 3", c.Len())
	}
}

func TestFullCacheDropsExpiredFirst(t *testing.T) {
	c, clk, setLoad := newCache(t)
	c.MaxEntries = 4
	var l counter
	setLoad(l.load)
	get(t, c, "old1")
	get(t, c, "old2")
	clk.advance(2 * time.Second) // old1 and old2 have expired
	get(t, c, "young1")
	get(t, c, "young2")
	get(t, c, "new") // full: the expired two go, the young two stay
	if c.Len() != 3 {
		t.Fatalf("%d entries, want young1, young2 and new", c.Len())
	}
	loads := l.n.Load()
	for _, k := range []string{"young1", "young2", "new"} {
		get(t, c, k)
	}
	if l.n.Load() != loads {
		t.Fatalf("%d loads for values that should have been kept", l.n.Load()-loads)
	}
	// Replacing a key of a full cache does not empty it.
	get(t, c, "young3")
	if c.Len() != 4 {
		t.Fatalf("%d entries, want 4", c.Len())
	}
	clk.advance(1500 * time.Millisecond) // young1 and young2 refresh ahead
	get(t, c, "young1")
	idle(t, c)
	if c.Len() != 4 {
		t.Fatalf("a refresh of a present key changed the size to %d", c.Len())
	}
}
