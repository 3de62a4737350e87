package tokencache_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/tokencache"
)

var now = time.Unix(1_800_000_000, 0)

// TestExpiry: a token is served until its deadline and not at it; a
// deadline already passed keeps nothing.
func TestExpiry(t *testing.T) {
	c := tokencache.Cache[string]{Max: 10}
	c.Put("a", "alice", now.Add(time.Minute), now)
	c.Put("old", "bob", now, now)
	if v, ok := c.Get("a", now.Add(time.Minute-time.Nanosecond)); !ok || v != "alice" {
		t.Fatalf("Get before the deadline = %q, %v; want alice", v, ok)
	}
	if _, ok := c.Get("a", now.Add(time.Minute)); ok {
		t.Fatal("served at its deadline")
	}
	if _, ok := c.Get("old", now.Add(-time.Hour)); ok || c.Len() != 1 {
		t.Fatalf("a token put at its deadline was kept (%d held)", c.Len())
	}
	c.Delete("a")
	if _, ok := c.Get("a", now); ok {
		t.Fatal("served after Delete")
	}
	var off tokencache.Cache[string]
	off.Put("a", "alice", now.Add(time.Minute), now)
	if _, ok := off.Get("a", now); ok {
		t.Fatal("a cache without Max kept a token")
	}
}

// TestFullDropsExpiredFirst: a full cache makes room by dropping expired
// tokens, not the live ones of active users; full of live ones, it starts
// empty.
func TestFullDropsExpiredFirst(t *testing.T) {
	const max = 1000
	c := tokencache.Cache[int]{Max: max}
	for i := range max {
		until := now.Add(time.Minute)
		if i%2 == 0 {
			until = now.Add(time.Second) // half of them expire first
		}
		c.Put(fmt.Sprint("t", i), i, until, now)
	}
	later := now.Add(2 * time.Second)
	c.Put("new", -1, later.Add(time.Minute), later)
	if _, ok := c.Get("new", later); !ok {
		t.Fatal("the new token was not kept")
	}
	if v, ok := c.Get("t1", later); !ok || v != 1 {
		t.Fatal("a live token was dropped to make room")
	}
	if n := c.Len(); n != max/2+1 {
		t.Fatalf("%d tokens kept, want the %d live ones and the new one", n, max/2)
	}
	full := tokencache.Cache[int]{Max: max}
	for i := range max {
		full.Put(fmt.Sprint("t", i), i, now.Add(time.Minute), now)
	}
	full.Put("new", -1, now.Add(time.Minute), now)
	if n := full.Len(); n != 1 {
		t.Fatalf("%d tokens after filling with live ones, want 1", n)
	}
	full.Clear()
	if full.Len() != 0 {
		t.Fatal("Clear kept tokens")
	}
}
