package httpapi

import (
	"errors"
	"testing"

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
		release, _, err := l.acquire(noisy)
		if err != nil {
			t.Fatalf("slot %d of 2: %v", i+1, err)
		}
		held = append(held, release)
	}
	if _, retry, err := l.acquire(noisy); !errors.Is(err, errBusy) || retry <= 0 {
		t.Fatalf("a third transaction with a share of 2: err %v, retry %v; want too_many_transactions with a retry", err, retry)
	}
	release, _, err := l.acquire(quiet)
	if err != nil {
		t.Fatalf("another tenant while the first holds its share: %v", err)
	}
	release()
	held[0]()
	if release, _, err := l.acquire(noisy); err != nil {
		t.Fatalf("after a release: %v", err)
	} else {
		release()
	}
	// With no cap, the plan decides.
	l = limiters{limits: l.limits}
	for i := range 16 {
		if _, _, err := l.acquire(noisy); err != nil {
			t.Fatalf("uncapped slot %d of 16: %v", i+1, err)
		}
	}
}
