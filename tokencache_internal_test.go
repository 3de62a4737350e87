package bulkhead

import (
	"fmt"
	"testing"
	"time"
)

// TestRejectCacheBounded: rejected tokens are remembered for
// rejectCacheAge, and a full cache drops the aged ones first, starting
// empty only when that frees less than a quarter of it.
func TestRejectCacheBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := digestCache{max: rejectCacheMax, age: rejectCacheAge}
	for i := range rejectCacheMax {
		at := now
		if i%2 == 0 {
			at = now.Add(-rejectCacheAge) // half of them have aged out
		}
		c.put(fmt.Sprint("t", i), at)
	}
	if c.has("t0", now) || !c.has("t1", now) {
		t.Fatal("want t0 aged out and t1 remembered")
	}
	c.put("new", now)
	if !c.has("new", now) || !c.has("t1", now) {
		t.Fatal("a full cache dropped a live rejection to make room")
	}
	if n := len(c.m); n != rejectCacheMax/2+1 {
		t.Fatalf("%d remembered, want the %d live ones and the new one", n, rejectCacheMax/2)
	}
	full := digestCache{max: rejectCacheMax, age: rejectCacheAge}
	for i := range rejectCacheMax {
		full.put(fmt.Sprint("t", i), now)
	}
	full.put("new", now)
	if n := len(full.m); n != 1 {
		t.Fatalf("%d remembered after filling with live ones, want a fresh start", n)
	}
}
