package postgres_test

import (
	"fmt"
	"testing"

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
