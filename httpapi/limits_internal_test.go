package httpapi

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestTenantShareOfThePool: a plan that allows more transactions than half
// the pool is cut to half, so a tenant that uses all of its slots leaves
// connections for everyone else.
func TestTenantShareOfThePool(t *testing.T) {
	l := limiters{limits: map[string]Limit{"premium": {Rate: 1000, Burst: 1000, Concurrent: 16}}, share: 2}
	noisy := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000001", Plan: "premium"}
	quiet := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000002", Plan: "premium"}
	var held []func()
	for i := range 2 {
		release, _, err := l.slot(noisy)
		if err != nil {
			t.Fatalf("slot %d of 2: %v", i+1, err)
		}
		held = append(held, release)
	}
	if _, retry, err := l.slot(noisy); !errors.Is(err, errBusy) || retry <= 0 {
		t.Fatalf("a third transaction with a share of 2: err %v, retry %v; want too_many_transactions with a retry", err, retry)
	}
	release, _, err := l.slot(quiet)
	if err != nil {
		t.Fatalf("another tenant while the first holds its share: %v", err)
	}
	release()
	held[0]()
	if release, _, err := l.slot(noisy); err != nil {
		t.Fatalf("after a release: %v", err)
	} else {
		release()
	}
	// With no cap, the plan decides.
	l = limiters{limits: l.limits}
	for i := range 16 {
		if _, _, err := l.slot(noisy); err != nil {
			t.Fatalf("uncapped slot %d of 16: %v", i+1, err)
		}
	}
}

// TestRefusalsHeldForPersistentTenants: a tenant refused again within a
// second gets its next refusal held (no longer than its Retry-After); its
// first refusal, and everyone else, are answered at once.
func TestRefusalsHeldForPersistentTenants(t *testing.T) {
	var holds []time.Duration
	l := limiters{limits: map[string]Limit{"basic": {Rate: 0.001, Burst: 1, Concurrent: 4}},
		pause: 200 * time.Millisecond, held: make(chan struct{}, 1), sleep: func(d time.Duration) { holds = append(holds, d) }}
	noisy := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000001", Plan: "basic"}
	other := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000002", Plan: "basic"}
	if _, err := l.admit(noisy); err != nil {
		t.Fatalf("first request within the burst: %v", err)
	}
	if _, err := l.admit(noisy); !errors.Is(err, errTooMany) || len(holds) != 0 {
		t.Fatalf("first refusal: err %v, holds %v; want rate_limited sent at once", err, holds)
	}
	for i := range 3 {
		if _, err := l.admit(noisy); !errors.Is(err, errTooMany) || len(holds) != i+1 || holds[i] != 200*time.Millisecond {
			t.Fatalf("refusal %d in a row: err %v, holds %v; want each held 200ms", i+2, err, holds)
		}
	}
	if _, err := l.admit(other); err != nil || len(holds) != 3 {
		t.Fatalf("another tenant: err %v, holds %v; want admitted, nothing held", err, holds)
	}
	// A pause longer than Retry-After (whole seconds, at least 1) is cut
	// to it.
	l.pause = 5 * time.Second
	l.limits["basic"] = Limit{Rate: 1000, Burst: 1000, Concurrent: 1}
	busy := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000003", Plan: "basic"}
	l.slot(busy)
	l.slot(busy)
	if _, _, err := l.slot(busy); !errors.Is(err, errBusy) || holds[len(holds)-1] != time.Second {
		t.Fatalf("busy refusal in a row with a 5s pause: err %v, holds %v; want held 1s, its Retry-After", err, holds)
	}
	// With every hold slot taken, refusals go at once.
	n := len(holds)
	l.held <- struct{}{}
	if _, err := l.admit(noisy); !errors.Is(err, errTooMany) || len(holds) != n {
		t.Fatalf("with the holds full: err %v, holds %v; want sent at once", err, holds[n:])
	}
}

// TestHoldSlotsApart: 429s held for sources without credentials and for
// tenants have slots of their own, so a flood that fills one kind leaves
// the other still held.
func TestHoldSlotsApart(t *testing.T) {
	var holds []time.Duration
	s := &Server{anonHeld: make(chan struct{}, 1)}
	s.quota = limiters{limits: map[string]Limit{"basic": {Rate: 0.001, Burst: 1, Concurrent: 4}},
		pause: 200 * time.Millisecond, held: make(chan struct{}, 1), sleep: func(d time.Duration) { holds = append(holds, d) }}
	s.anonHeld <- struct{}{} // a flood without credentials holds every anonymous slot
	s.holdAnonymous(time.Second)
	if len(holds) != 0 {
		t.Fatalf("an anonymous 429 was held with its slots full: %v", holds)
	}
	noisy := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000001", Plan: "basic"}
	s.quota.admit(noisy)
	s.quota.admit(noisy)
	s.quota.admit(noisy) // refused again within a second: held
	if len(holds) != 1 || holds[0] != 200*time.Millisecond {
		t.Fatalf("a tenant's repeated refusal with the anonymous slots full: holds %v; want one of 200ms", holds)
	}
	<-s.anonHeld
	s.quota.held <- struct{}{} // and the other way round
	s.holdAnonymous(time.Second)
	if len(holds) != 2 {
		t.Fatalf("an anonymous 429 with the tenants' slots full: holds %v; want it held", holds)
	}
}

// TestTimeBudget: a request is charged, when it starts, what the tenant's
// recent requests took, so that expensive ones are admitted one at a time
// as the budget refills; a debt makes the next wait until it is repaid;
// cheap requests are not held back.
func TestTimeBudget(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	b := newTimeBudget(200*time.Millisecond, t0) // 0.2 s a second, burst 0.2 s
	// Nothing learned yet: the first request costs nothing up front, and
	// runs alone: one arriving meanwhile is told to wait for it.
	c1, _, first, ok1 := b.begin(at(0))
	_, _, wait, ok2 := b.begin(at(0))
	if !ok1 || first != nil || c1 != 0 || ok2 || wait == nil {
		t.Fatalf("the first requests: %v %v, then %v %v; want the first admitted, charged nothing, the second told to wait", c1, ok1, ok2, wait)
	}
	// It took 400 ms: a debt of 0.2 s, 400 ms expected of the next, and
	// the one waiting goes on.
	b.end(at(400), c1, 400*time.Millisecond)
	select {
	case <-wait:
	default:
		t.Fatal("the first request ended and the one waiting for it was not let go")
	}
	_, retry, _, ok := b.begin(at(400))
	if ok || retry <= 0 {
		t.Fatalf("in debt: admitted %v, retry %v; want a wait", ok, retry)
	}
	// After retry the debt is repaid and the expected cost (at most a
	// burst: 200 ms) is there: admitted then, not before.
	if _, _, _, ok := b.begin(at(400).Add(retry - time.Millisecond)); ok {
		t.Fatal("admitted before the retry it was told")
	}
	then := at(400).Add(retry + time.Millisecond)
	c3, _, _, ok := b.begin(then)
	if !ok || c3 != 200*time.Millisecond {
		t.Fatalf("after the retry: admitted %v, charged %v; want 200 ms up front", ok, c3)
	}
	// Charged up front, a second expensive request waits for the first.
	if _, _, first, ok := b.begin(then); ok || first != nil {
		t.Fatal("a second expensive request admitted, or told to wait, while the first runs")
	}
	// The expected cost then moves by a quarter of each difference.
	b.end(then.Add(100*time.Millisecond), c3, 100*time.Millisecond)
	if e := b.expected; e < 0.324 || e > 0.326 {
		t.Fatalf("expected %v s after 0.4 and 0.1; want 0.325", e)
	}
	// A tenant whose requests are cheap is never held back at its pace,
	// nor made to wait once its first has ended.
	cheap := newTimeBudget(200*time.Millisecond, t0)
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * 10 * time.Millisecond) // 100 a second
		c, retry, first, ok := cheap.begin(now)
		if !ok || first != nil {
			t.Fatalf("cheap request %d refused, retry %v, or told to wait", i, retry)
		}
		if i > 0 {
			c2, _, first, ok := cheap.begin(now) // another at once
			if !ok || first != nil {
				t.Fatalf("a second cheap request at %d refused or told to wait", i)
			}
			cheap.end(now, c2, time.Millisecond)
		}
		cheap.end(now, c, time.Millisecond)
	}
}

// TestReleasesShareATimer: holds that fall due within one grain end
// together, on one timer; a hold in a later grain gets its own; a hold
// whose grain has begun ends at once; and none ends after it is due.
func TestReleasesShareATimer(t *testing.T) {
	start := time.Unix(1000, 0) // on a grain boundary
	now := start
	type timer struct {
		after time.Duration
		fire  func()
	}
	var timers []timer
	r := &releases{now: func() time.Time { return now },
		afterFunc: func(d time.Duration, f func()) { timers = append(timers, timer{d, f}) }}

	a := r.wait(200 * time.Millisecond)
	now = start.Add(10 * time.Millisecond)
	b := r.wait(200 * time.Millisecond) // due at 210ms: the same grain as a (200 to 225ms)
	now = start.Add(30 * time.Millisecond)
	c := r.wait(200 * time.Millisecond) // due at 230ms: the next grain
	if a == nil || a != b || c == nil || c == a {
		t.Fatalf("channels a %p, b %p, c %p: want a and b one, c another", a, b, c)
	}
	if len(timers) != 2 {
		t.Fatalf("%d timers for three holds in two grains, want 2", len(timers))
	}
	// Each timer fires at its grain's start: never after a hold is due.
	if timers[0].after != 200*time.Millisecond || timers[1].after != 195*time.Millisecond {
		t.Errorf("timers after %v and %v, want 200ms (from 0) and 195ms (from 30ms)", timers[0].after, timers[1].after)
	}
	if ch := r.wait(10 * time.Millisecond); ch != nil {
		t.Errorf("a hold due within the grain that has begun (at 40ms, grain from 25ms) was held")
	}
	timers[0].fire()
	select {
	case <-a:
	default:
		t.Fatal("the first grain's holds were not released by its timer")
	}
	select {
	case <-c:
		t.Fatal("the second grain's hold was released by the first grain's timer")
	default:
	}
	if len(r.slots) != 1 {
		t.Errorf("%d grains pending after one fired, want 1", len(r.slots))
	}
	timers[1].fire()
	<-c
	if len(r.slots) != 0 {
		t.Errorf("%d grains pending after both fired, want 0", len(r.slots))
	}
}

// TestRefusalsHeldPerTenant: at most maxHeldPerTenant of one tenant's
// refusals are held at once; past that they are sent at once, another
// tenant's are still held, and the count survives a change of plan.
func TestRefusalsHeldPerTenant(t *testing.T) {
	var holding atomic.Int32
	release := make(chan struct{})
	l := limiters{limits: map[string]Limit{"basic": {Rate: 0.001, Burst: 1, Concurrent: 4}, "premium": {Rate: 0.001, Burst: 1, Concurrent: 4}},
		pause: 200 * time.Millisecond, held: make(chan struct{}, maxHeld),
		sleep: func(time.Duration) { holding.Add(1); <-release }}
	noisy := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000001", Plan: "basic"}
	l.admit(noisy) // the burst
	l.admit(noisy) // the first refusal, sent at once
	if holding.Load() != 0 {
		t.Fatal("the first refusal was held")
	}
	const extra = 5
	done := make(chan error)
	for range maxHeldPerTenant + extra {
		go func() {
			_, err := l.admit(noisy)
			done <- err
		}()
	}
	// The held ones wait for release; the others come back now.
	for range extra {
		if err := <-done; !errors.Is(err, errTooMany) {
			t.Fatalf("a refusal past the tenant's held share: %v, want rate_limited", err)
		}
	}
	if n := holding.Load(); n != maxHeldPerTenant {
		t.Fatalf("%d of the tenant's refusals held, want %d", n, maxHeldPerTenant)
	}
	// Another tenant's refusals are still held.
	other := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000002", Plan: "basic"}
	l.admit(other)
	l.admit(other)
	go func() {
		_, err := l.admit(other)
		done <- err
	}()
	for holding.Load() != maxHeldPerTenant+1 {
		time.Sleep(time.Millisecond)
	}
	// A plan change keeps the count: the tenant is still at its share.
	moved := *noisy
	moved.Plan = "premium"
	if got := l.get(&moved).held.Load(); got != maxHeldPerTenant {
		t.Fatalf("after a plan change the tenant has %d refusals held, want %d", got, maxHeldPerTenant)
	}
	close(release)
	for range maxHeldPerTenant + 1 {
		if err := <-done; !errors.Is(err, errTooMany) {
			t.Fatalf("a held refusal: %v, want rate_limited", err)
		}
	}
	if n := l.get(&moved).held.Load(); n != 0 {
		t.Fatalf("%d refusals counted as held after all were sent", n)
	}
}

// TestTimeSettledWhereCharged: a request is settled on the budget it was
// charged to, even when its tenant's plan changes while it runs (the
// limiter, and its budget, are then made anew): the old budget learns
// from it and lets go of any request waiting for it, and the new one is
// left to learn from its own.
func TestTimeSettledWhereCharged(t *testing.T) {
	l := limiters{limits: map[string]Limit{
		"basic":   {Rate: 1000, Burst: 1000, Concurrent: 4, StatementTime: 200 * time.Millisecond},
		"premium": {Rate: 1000, Burst: 1000, Concurrent: 4, StatementTime: 500 * time.Millisecond},
	}}
	ten := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000001", Plan: "basic"}
	sp, _, err := l.beginTime(t.Context(), ten)
	if err != nil || sp.b == nil {
		t.Fatalf("the first request: %+v, %v", sp, err)
	}
	old := sp.b
	moved := *ten
	moved.Plan = "premium"
	sp2, _, err := l.beginTime(t.Context(), &moved) // the first on the new plan's budget
	if err != nil || sp2.b == nil || sp2.b == old {
		t.Fatalf("after the plan change: %+v, %v; want a budget of its own", sp2, err)
	}
	l.endTime(sp, time.Millisecond)
	if old.first != nil || sp2.b.first == nil {
		t.Fatalf("settled the wrong budget: old first %v, new first %v; want the old one's ended, the new one's still waiting", old.first, sp2.b.first)
	}
	l.endTime(sp2, time.Millisecond)
	if sp2.b.first != nil {
		t.Fatal("the new budget's first request ended and it did not learn")
	}
}

// TestTimeSettledWhenWorkPanics: a tenant's first request whose work
// panics (answered 500 by the recoverer) is still settled, so the
// tenant's next request runs rather than waiting for it until its
// deadline.
func TestTimeSettledWhenWorkPanics(t *testing.T) {
	l := limiters{limits: map[string]Limit{"basic": {Rate: 1000, Burst: 1000, Concurrent: 4, StatementTime: 200 * time.Millisecond}}}
	ten := &tenant.Tenant{ID: "00000000-0000-4000-8000-000000000001", Plan: "basic"}
	sp, _, err := l.beginTime(t.Context(), ten)
	if err != nil || sp.b == nil {
		t.Fatalf("the first request: %+v, %v", sp, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the work's panic did not reach the caller")
			}
		}()
		l.spendTime(sp, func(took *time.Duration) error {
			*took = time.Millisecond
			panic("the work failed")
		})
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := l.beginTime(ctx, ten); err != nil {
		t.Fatalf("the next request after a panicking first one: %v; want it admitted at once", err)
	}
}
