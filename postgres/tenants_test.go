package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
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

// TestOffboardingWaitsForOlderTransactions: a row inserted by a statement
// that began before the offboarding (its context verified then) and
// committed after the deletion stayed behind, since the deletion could not
// see it uncommitted. Offboarding now waits for such transactions first.
func TestOffboardingWaitsForOlderTransactions(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	tn, _, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: "late-writer", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.SigningKey(ctx, postgres.KeyContext)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := ctxtoken.Mint(ctxtoken.Key{ID: k.ID, Secret: k.Secret}, ctxtoken.Claims{TenantID: string(tn.ID), Tenant: "late-writer", Subject: "u",
		Role: "admin", Scope: []string{"select", "insert", "update", "delete"}, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), Audience: db.AppRole, RequestID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.App().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, postgres.SetContextSQL, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ('written before, committed after')`); err != nil {
		t.Fatal(err)
	}
	// A lock on the tenant's user holds the offboarding after it deleted
	// the rows (it deletes the users next), so that the insert can commit
	// after that deletion, as it would by chance.
	if _, err := db.CreateUser(ctx, tn.ID, "late@writer.test", "not-a-hash", tenant.Member); err != nil {
		t.Fatal(err)
	}
	lock, err := db.Admin().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `SELECT 1 FROM bulkhead_control.users WHERE tenant_id = $1 FOR UPDATE`, string(tn.ID)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := db.OffboardTenant(ctx, tn.ID); done <- err }()
	// Commit the insert once the offboarding waits: on the user's lock
	// (it has deleted the rows), or for older transactions to end.
	for i := 0; ; i++ {
		var waiting bool
		if err := db.Admin().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
			AND (wait_event_type = 'Lock' OR query LIKE '%xact_start < $1%') AND pid <> pg_backend_pid())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if i == 1000 {
			t.Fatal("the offboarding never waited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var left int
	if err := db.Admin().QueryRow(ctx, `SELECT count(*) FROM app.projects WHERE tenant_id = $1`, string(tn.ID)).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d rows of the offboarded tenant remain: a transaction older than the offboarding committed after its deletion", left)
	}
}
