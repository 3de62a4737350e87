package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/fault"
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

// TestOffboardingWithoutARecordKey: with no key to sign the offboarding
// record, offboarding refuses before it changes anything (the tenant was
// left "offboarding" before), and says what to do.
func TestOffboardingWithoutARecordKey(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	tn, _, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: "keeps", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.SigningKey(ctx, postgres.KeyRecord)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RetireKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.OffboardTenant(ctx, tn.ID); fault.CodeOf(err) != "no_signing_key" {
		t.Fatalf("offboarding with no record key: %v, want no_signing_key", err)
	}
	got, err := db.FindTenantByID(ctx, tn.ID)
	if err != nil || got.Status != tenant.Active {
		t.Fatalf("after the refused offboarding: %+v %v, want it active", got, err)
	}
}
