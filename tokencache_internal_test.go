package bulkhead

import (
	"fmt"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestTokenCacheDropsExpiredFirst: a full token cache makes room by
// dropping expired tokens, not the live ones of active users.
func TestTokenCacheDropsExpiredFirst(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var c tokenCache
	for i := range tokenCacheMax {
		exp := now.Add(time.Minute)
		if i%2 == 0 {
			exp = now.Add(-time.Second) // half of them have expired
		}
		c.put(fmt.Sprint("t", i), tenant.Principal{Subject: "u", Expires: exp}, now)
	}
	c.put("new", tenant.Principal{Subject: "n", Expires: now.Add(time.Minute)}, now)
	if _, ok := c.get("new", now); !ok {
		t.Fatal("the new token was not kept")
	}
	if _, ok := c.get("t1", now); !ok {
		t.Fatal("a live token was dropped to make room")
	}
	if n := len(c.m); n != tokenCacheMax/2+1 {
		t.Fatalf("%d tokens kept, want the %d live ones and the new one", n, tokenCacheMax/2)
	}
	// All live and full: it starts empty rather than sweep on every put.
	var full tokenCache
	for i := range tokenCacheMax {
		full.put(fmt.Sprint("t", i), tenant.Principal{Expires: now.Add(time.Minute)}, now)
	}
	full.put("new", tenant.Principal{Expires: now.Add(time.Minute)}, now)
	if len(full.m) != 1 {
		t.Fatalf("%d tokens after filling with live ones, want 1", len(full.m))
	}
}

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
