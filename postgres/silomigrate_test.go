package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestMigrateSilos puts three silos back on version 1 (no audit triggers,
// statistics on), breaks one of them, and migrates: the two healthy ones
// reach the latest version in their own transactions, the broken one is
// reported and left exactly as it was, and a second run resumes with it.
func TestMigrateSilos(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	var silos []*tenant.Tenant
	for i := 0; i < 5; i++ {
		s, _, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(fmt.Sprintf("silo-%d", i)), Tier: tenant.Silo})
		if err != nil {
			t.Fatal(err)
		}
		silos = append(silos, s)
	}
	conn, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range silos[:3] {
		for _, sql := range []string{
			`UPDATE bulkhead_control.tenants SET schema_version = 1 WHERE id = '` + string(s.ID) + `'`,
			`DROP TRIGGER audit_insert ON ` + s.Placement + `.projects`,
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The third one is broken: its tasks table is gone.
	if _, err := conn.Exec(ctx, `DROP TABLE `+silos[2].Placement+`.tasks`); err != nil {
		t.Fatal(err)
	}
	var calls int
	rep, err := db.MigrateSilos(ctx, postgres.MigrateOptions{Concurrency: 2, Progress: func(done, failed, total int) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 3 || rep.Migrated != 2 || len(rep.Failed) != 1 || rep.Failed["silo-2"] == "" || calls != 3 {
		t.Fatalf("first run: %+v (%d progress calls)", rep, calls)
	}
	version := func(s *tenant.Tenant) (v int) {
		conn.QueryRow(ctx, `SELECT schema_version FROM bulkhead_control.tenants WHERE id = $1`, string(s.ID)).Scan(&v)
		return v
	}
	trigger := func(s *tenant.Tenant) (ok bool) {
		conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_insert' AND tgrelid = ($1 || '.projects')::regclass)`, s.Placement).Scan(&ok)
		return ok
	}
	for i, s := range silos {
		want := postgres.TenantSchemaVersion
		if i == 2 {
			want = 1
		}
		if v := version(s); v != want || trigger(s) != (i != 2) {
			t.Fatalf("%s: version %d (want %d), audit trigger %v", s.Slug, v, want, trigger(s))
		}
	}
	// A second run picks up only what is left.
	rep, err = db.MigrateSilos(ctx, postgres.MigrateOptions{})
	if err != nil || rep.Total != 1 || rep.Migrated != 0 || len(rep.Failed) != 1 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
}

// TestMigrateSilosDoesNotWaitOnLocks: tenant A's business code, with A's
// valid context, locks a table of B's silo (an app role may: it has UPDATE
// and DELETE on every silo table) and keeps the lock. The migration of B's
// silo gives up after the lock timeout instead of waiting, holding the
// locks it already took on B's other tables and queueing B's traffic
// behind it, for as long as A likes; B is reported and left on its old
// version, and the other silos migrate.
func TestMigrateSilosDoesNotWaitOnLocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	admin := e.adminConn(t)
	for _, slug := range []string{"sa", "sb"} {
		if _, err := admin.Exec(ctx, `UPDATE bulkhead_control.tenants SET schema_version = 3 WHERE id = $1`, string(e.tenants[slug].ID)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := e.db.App().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, postgres.SetContextSQL, e.mint(t, "pa", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+e.table("sb", "tasks")+` IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rep, err := e.db.MigrateSilos(mctx, postgres.MigrateOptions{Concurrency: 1, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("MigrateSilos while another tenant holds a lock on sb's silo: %v (it waited)", err)
	}
	if rep.Total != 2 || rep.Migrated != 1 || rep.Failed["sb"] == "" {
		t.Fatalf("report %+v, want sa migrated and sb failed", rep)
	}
	var va, vb int
	if err := admin.QueryRow(ctx, `SELECT (SELECT schema_version FROM bulkhead_control.tenants WHERE id = $1),
		(SELECT schema_version FROM bulkhead_control.tenants WHERE id = $2)`, string(e.tenants["sa"].ID), string(e.tenants["sb"].ID)).Scan(&va, &vb); err != nil {
		t.Fatal(err)
	}
	if va != postgres.TenantSchemaVersion || vb != 3 {
		t.Fatalf("versions sa=%d sb=%d, want %d and 3", va, vb, postgres.TenantSchemaVersion)
	}
	// Once the lock is gone, the next run finishes sb.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.db.MigrateSilos(ctx, postgres.MigrateOptions{}); err != nil || rep.Migrated != 1 || len(rep.Failed) != 0 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
}

// TestMigrateSilosLeavesOffboardingAlone: a silo listed as behind whose
// tenant is marked offboarding before its migration takes the catalog
// row's lock is not migrated: the offboarding drops the schema, and a
// migration working on it meanwhile would only contend with the drop.
func TestMigrateSilosLeavesOffboardingAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	admin := e.adminConn(t)
	sb := string(e.tenants["sb"].ID)
	if _, err := admin.Exec(ctx, `UPDATE bulkhead_control.tenants SET schema_version = 3 WHERE id = $1`, sb); err != nil {
		t.Fatal(err)
	}
	mark, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mark.Rollback(context.WithoutCancel(ctx))
	if _, err := mark.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'offboarding' WHERE id = $1`, sb); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep *postgres.MigrateReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := e.db.MigrateSilos(ctx, postgres.MigrateOptions{LockTimeout: time.Minute})
		done <- result{rep, err}
	}()
	// Commit the mark once the migration waits for the catalog row.
	waitForLockWait(t, admin)
	if err := mark.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.rep.Total != 1 || r.rep.Migrated != 0 || r.rep.Failed["sb"] == "" {
		t.Fatalf("MigrateSilos = %+v, %v; want sb listed and left alone", r.rep, r.err)
	}
	var v int
	if err := admin.QueryRow(ctx, `SELECT schema_version FROM bulkhead_control.tenants WHERE id = $1`, sb).Scan(&v); err != nil || v != 3 {
		t.Fatalf("sb's version %d (%v), want 3", v, err)
	}
}

// waitForLockWait returns once some other backend of the database waits
// for a lock.
func waitForLockWait(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for i := 0; ; i++ {
		var waiting bool
		if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND pid <> pg_backend_pid())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if i == 1000 {
			t.Fatal("nothing ever waited for a lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
