package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// TestOffboardingSilo offboards silo tenant sa, which has rows in its silo
// and, written by its own business code, in the pool tables. Nothing of sa
// survives (no rows anywhere, no object in or of its schema), and nothing
// of the other tenants changes: sb's silo keeps every object and row, and
// the pool tenants keep theirs.
func TestOffboardingSilo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	admin := e.adminConn(t)
	sa, sb := e.tenants["sa"], e.tenants["sb"]
	e.exec(t, e.mint(t, "sa", nil), `INSERT INTO app.projects (name) VALUES ('sa in the pool')`)
	objects := func(schema string) (n int) {
		t.Helper()
		if err := admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid)
			+ (SELECT count(*) FROM pg_type WHERE typnamespace = n.oid) + (SELECT count(*) FROM pg_proc WHERE pronamespace = n.oid)
			+ (SELECT count(*) FROM pg_constraint WHERE connamespace = n.oid)
			FROM pg_namespace n WHERE nspname = $1`, schema).Scan(&n); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		return n
	}
	count := func(sql string, args ...any) (n int) {
		t.Helper()
		if err := admin.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	sbObjects, poolRows := objects(sb.Placement), count(`SELECT count(*) FROM app.projects WHERE tenant_id <> $1`, string(sa.ID))
	rec, err := e.db.OffboardTenant(ctx, sa.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.DroppedSchema != sa.Placement || rec.DeletedRows["app.projects"] != 1 {
		t.Fatalf("record %+v, want %s dropped and one pool row deleted", rec, sa.Placement)
	}
	if n := count(`SELECT count(*) FROM pg_namespace WHERE nspname = $1`, sa.Placement); n != 0 {
		t.Fatalf("sa's schema %s survived", sa.Placement)
	}
	if n := count(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname IN ('projects', 'tasks') AND n.nspname NOT IN ('app', $1)`, sb.Placement); n != 0 {
		t.Fatalf("%d tenant tables outside the pool and sb's silo after sa's offboarding", n)
	}
	if n := count(`SELECT count(*) FROM app.projects WHERE tenant_id = $1`, string(sa.ID)); n != 0 {
		t.Fatalf("%d of sa's pool rows survived", n)
	}
	if got := objects(sb.Placement); got != sbObjects || got == 0 {
		t.Fatalf("sb's silo has %d objects after sa's offboarding, had %d", got, sbObjects)
	}
	if got := count(`SELECT count(*) FROM app.projects WHERE tenant_id <> $1`, string(sa.ID)); got != poolRows {
		t.Fatalf("the pool has %d other tenants' rows after sa's offboarding, had %d", got, poolRows)
	}
	if got := e.names(t, e.mint(t, "sb", nil), "sb"); len(got) != 1 {
		t.Fatalf("sb sees %v after sa's offboarding, want its canary", got)
	}
}

// TestOffboardingRefusesAMisplacedSilo: a silo tenant whose catalog
// placement is not its own schema (the catalog was changed by hand: here
// to sb's schema) is not offboarded. sb's schema was never at risk (only
// the tenant's own schema name is ever dropped), but offboarding skipped
// the drop, so sa's schema and rows stayed, and marked sa offboarded all
// the same, with no dropped schema in its record.
func TestOffboardingRefusesAMisplacedSilo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	admin := e.adminConn(t)
	sa, sb := e.tenants["sa"], e.tenants["sb"]
	if _, err := admin.Exec(ctx, `UPDATE bulkhead_control.tenants SET placement = $2 WHERE id = $1`, string(sa.ID), sb.Placement); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.db.OffboardTenant(ctx, sa.ID); err == nil {
		t.Fatalf("offboarded a silo tenant whose placement is not its schema: %+v", rec)
	}
	var status string
	var schemas int
	if err := admin.QueryRow(ctx, `SELECT status, (SELECT count(*) FROM pg_namespace WHERE nspname IN ($2, $3))
		FROM bulkhead_control.tenants WHERE id = $1`, string(sa.ID), sa.ID.SchemaName(), sb.Placement).Scan(&status, &schemas); err != nil {
		t.Fatal(err)
	}
	if status == string(tenant.Offboarded) || schemas != 2 {
		t.Fatalf("after the refusal: sa %s, %d of the two silo schemas left", status, schemas)
	}
	if got := e.names(t, e.mint(t, "sb", nil), "sb"); len(got) != 1 {
		t.Fatalf("sb sees %v, want its canary", got)
	}
}
