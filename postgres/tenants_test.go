package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestCreateTenantRetryRace: the same create sent several times at once,
// as a client retrying a slow request would, creates the tenant once and
// answers every other call with the existing tenant, not a conflict. A
// different tenant under the same id still conflicts.
func TestCreateTenantRetryRace(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	for round := range 4 {
		c := postgres.TenantCreate{Slug: tenant.Slug(fmt.Sprintf("umbrella-%d", round)), Name: "Umbrella", Tier: tenant.Silo, Plan: "premium"}
		var wg sync.WaitGroup
		created := make([]bool, 4)
		errs := make([]error, 4)
		for i := range created {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, created[i], errs[i] = db.CreateTenant(ctx, c)
			}()
		}
		wg.Wait()
		n := 0
		for i := range created {
			if errs[i] != nil {
				t.Fatalf("%s: call %d of %d identical creates: %v", c.Slug, i, len(created), errs[i])
			}
			if created[i] {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s: %d calls say they created it, want 1", c.Slug, n)
		}
		c.Tier = tenant.Pool
		if _, _, err := db.CreateTenant(ctx, c); !errors.Is(err, postgres.ErrTenantExists) {
			t.Fatalf("%s as a pool tenant: %v, want ErrTenantExists", c.Slug, err)
		}
	}
}
