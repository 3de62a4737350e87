package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestAnonymousRefusalsTally: each source has its own share of denials;
// past it requests are refused with a retry and counted, by the code they
// would have had, drained once, and put back when they could not be
// written. An IPv6 /64 is one source.
func TestAnonymousRefusalsTally(t *testing.T) {
	tl := anonTally{bucket: Bucket{Rate: 0.001, Burst: 2}}
	now := time.Unix(1_800_000_000, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 2 {
		if !allowed(&tl, a, "unauthenticated", now) {
			t.Fatalf("refusal %d of a's share of 2 was not audited", i+1)
		}
	}
	for range 3 {
		if allowed(&tl, a, "unauthenticated", now.Add(time.Second)) {
			t.Fatal("a refusal past a's share was audited")
		}
	}
	if allowed(&tl, a, "route_not_found", now.Add(2*time.Second)) {
		t.Fatal("a refusal past a's share was audited")
	}
	if retry, ok := tl.allow(a, "unauthenticated", now.Add(time.Second)); ok || retry <= 0 {
		t.Fatalf("past a's share: allowed %v, retry %v; want refused with a retry", ok, retry)
	}
	if !allowed(&tl, b, "unauthenticated", now) {
		t.Fatal("b's first refusal was not audited while a flooded")
	}
	// Two addresses in one /64 share a tally; the ::ffff: form of an IPv4
	// address is that address.
	v6a, v6b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	allowed(&tl, v6a, "unauthenticated", now)
	allowed(&tl, v6a, "unauthenticated", now)
	if allowed(&tl, v6b, "unauthenticated", now) {
		t.Fatal("another address of the same /64 got a share of its own")
	}
	if allowed(&tl, netip.MustParseAddr("::ffff:192.0.2.1"), "unauthenticated", now.Add(2*time.Second)) {
		t.Fatal("a's address in its IPv4-mapped form got a share of its own")
	}
	got := tl.drain()
	if len(got) != 2 {
		t.Fatalf("drained %+v; want a and the /64", got)
	}
	ra := got[0]
	if ra.source != a || ra.count != 6 || ra.codes["unauthenticated"] != 5 || ra.codes["route_not_found"] != 1 ||
		!ra.first.Equal(now.Add(time.Second)) || !ra.last.Equal(now.Add(2*time.Second)) {
		t.Fatalf("a's summary = %+v; want 6 refusals (5 unauthenticated, 1 route_not_found) from +1s to +2s", ra)
	}
	if got[1].source != netip.MustParseAddr("2001:db8:1:2::") || got[1].count != 1 {
		t.Fatalf("the /64's summary = %+v", got[1])
	}
	if again := tl.drain(); len(again) != 0 {
		t.Fatalf("a second drain returned %+v; want nothing", again)
	}
	// Put back (the audit trail was down), then counted on top.
	tl.putBack(got[:1])
	allowed(&tl, a, "unauthenticated", now.Add(3*time.Second))
	if back := tl.drain(); len(back) != 1 || back[0].count != 7 || !back[0].first.Equal(now.Add(time.Second)) {
		t.Fatalf("after put back and one more: %+v; want a with 7 from +1s", back)
	}
}

// TestAnonymousRefusalsTallyBounded: past maxSources, new sources share one
// tally, so a flood from many addresses cannot grow the map without end.
func allowed(tl *anonTally, a netip.Addr, code string, now time.Time) bool {
	_, ok := tl.allow(a, code, now)
	return ok
}

func TestAnonymousRefusalsTallyBounded(t *testing.T) {
	tl := anonTally{bucket: Bucket{Rate: 0.001, Burst: 1}}
	now := time.Unix(1_800_000_000, 0)
	addr := func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	for i := range maxSources {
		allowed(&tl, addr(i), "unauthenticated", now)
	}
	if !allowed(&tl, addr(maxSources), "unauthenticated", now) {
		t.Fatal("the first source past the bound found no share")
	}
	if allowed(&tl, addr(maxSources+1), "unauthenticated", now) {
		t.Fatal("a second source past the bound got a share of its own")
	}
	if n := len(tl.sources); n != maxSources+1 {
		t.Fatalf("%d sources tallied; want %d (the bound and the shared one)", n, maxSources+1)
	}
	got := tl.drain()
	if len(got) != 1 || got[0].source.IsValid() || got[0].count != 1 {
		t.Fatalf("drained %+v; want one count under the shared tally", got)
	}
}

// TestLoginsInFlightCount: requests admitted by begin count against the
// share while in flight, so a flood cannot all pass before the first
// fails; only failures take from the share.
func TestLoginsInFlightCount(t *testing.T) {
	tl := anonTally{bucket: Bucket{Rate: 0.001, Burst: 2}}
	now := time.Now()
	a := netip.MustParseAddr("192.0.2.7")
	first, _, ok1 := tl.begin(a, "invalid_credentials", now)
	second, _, ok2 := tl.begin(a, "invalid_credentials", now)
	if !ok1 || !ok2 {
		t.Fatal("two logins on a share of 2 were not both admitted")
	}
	if _, retry, ok := tl.begin(a, "invalid_credentials", now); ok || retry <= 0 {
		t.Fatalf("a third login while two are in flight: admitted %v, retry %v; want refused with a retry", ok, retry)
	}
	first(false) // succeeded: gives its place back, takes nothing
	third, _, ok := tl.begin(a, "invalid_credentials", now)
	if !ok {
		t.Fatal("a login after one in flight succeeded was refused")
	}
	second(true)
	third(true) // two failures use up the share
	if _, _, ok := tl.begin(a, "invalid_credentials", time.Now()); ok {
		t.Fatal("a login after two failures on a share of 2 was admitted")
	}
	if got := tl.drain(); len(got) != 1 || got[0].count != 2 || got[0].codes["invalid_credentials"] != 2 {
		t.Fatalf("drained %+v; want the two refused logins counted", got)
	}
}

// TestBusyLoginsHeld: a login refused because the password checks are
// busy gets its 503 held, as a 429 of a request without credentials is,
// so that a flood of them is answered in batches; an authenticated
// request refused the same way (a tenant admin creating a user) is
// answered at once.
func TestBusyLoginsHeld(t *testing.T) {
	var holds []time.Duration
	s := &Server{log: slog.New(slog.DiscardHandler), anonHeld: make(chan struct{}, 4),
		checks: rate.NewLimiter(rate.Limit(0.001), 0)} // never grants a check
	s.quota = limiters{pause: 200 * time.Millisecond, held: make(chan struct{}, 4),
		sleep: func(d time.Duration) { holds = append(holds, d) }}
	w := httptest.NewRecorder()
	if s.passwordCheck(w, httptest.NewRequest("POST", "/v1/auth/token", nil)) {
		t.Fatal("a check was granted by an empty budget")
	}
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("busy login: %d %v; want 503 with Retry-After", w.Code, w.Header())
	}
	if len(holds) != 1 || holds[0] != 200*time.Millisecond {
		t.Fatalf("busy login: holds %v; want one of 200ms", holds)
	}
	r := httptest.NewRequest("POST", "/v1/tenants/acme/users", nil)
	r = r.WithContext(tenant.NewContext(r.Context(), tenant.Principal{Tenant: "acme", Subject: "admin"}))
	if s.passwordCheck(httptest.NewRecorder(), r) {
		t.Fatal("a check was granted by an empty budget")
	}
	if len(holds) != 1 {
		t.Fatalf("an authenticated busy refusal was held: %v", holds)
	}
}
