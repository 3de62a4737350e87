package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// TestManagedLifecycle runs bulkhead's whole life cycle on the admin
// roles managed services hand out (never a superuser), in a cluster where
// no superuser ever ran Setup: migrate, the data API and the control
// plane, pool and silo tenants, a move each way, offboarding, migrate
// again, lint, the audit chain, the watchdog and gameday.
func TestManagedLifecycle(t *testing.T) {
	for _, kind := range []pgtest.ManagedKind{pgtest.ManagedRDS, pgtest.ManagedBypassRLS} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			managedLifecycle(t, kind)
		})
	}
}

func managedLifecycle(t *testing.T, kind pgtest.ManagedKind) {
	ctx := context.Background()
	d := pgtest.NewManagedDB(t, kind, false)
	cmd := cli(d.AdminURL)
	super, err := pgx.Connect(ctx, d.SuperURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { super.Close(context.Background()) })
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := super.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	// migrate: bulkhead_maint cannot be BYPASSRLS here, and says so.
	out, err := cmd("migrate")
	if err != nil {
		t.Fatalf("migrate as a %s admin: %v\n%s", kind, err, out)
	}
	for _, want := range []string{"warning: bulkhead_maint is not BYPASSRLS", "warning: not a superuser: EXECUTE on pg_terminate_backend"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate does not warn %q:\n%s", want, out)
		}
	}
	if n := count(`SELECT count(*) FROM pg_roles WHERE rolname = 'bulkhead_maint' AND NOT rolbypassrls`); n != 1 {
		t.Fatalf("bulkhead_maint is BYPASSRLS in the managed cluster: the test would not exercise its policies")
	}

	// The control plane and the data API.
	srv := apitest.Start(t, apitest.Options{Database: d})
	acme := srv.CreateTenant(t, "acme", "pool")
	globex := srv.CreateTenant(t, "globex", "silo")
	for _, tn := range []*apitest.Tenant{acme, globex} {
		r := srv.Do(t, "POST", "/rest/v1/projects", tn.AdminToken, map[string]string{"name": "p-" + tn.Slug}, "Prefer", "return=representation")
		if r.Status != http.StatusCreated {
			t.Fatalf("insert as %s: %s", tn.Slug, r)
		}
	}
	r := srv.Do(t, "GET", "/rest/v1/projects?select=name", acme.AdminToken, nil)
	if r.Status != http.StatusOK || string(r.Body) != `[{"name":"p-acme"}]` {
		t.Fatalf("acme reads %s", r)
	}

	// A move each way: the rows follow the tenant (bulkhead_maint copies
	// them, and removes them from where the tenant was).
	for _, to := range []string{"silo", "pool"} {
		var stdout, stderr bytes.Buffer
		if err := run(ctx, []string{"tenants", "move", "acme", "--to", to, "--settle", "4s", "--database-url", d.AdminURL}, &stdout, &stderr); err != nil {
			t.Fatalf("move acme to %s: %v\n%s", to, err, stderr.String())
		}
		token := srv.Login(t, "acme", "admin@acme.test", "pw-admin@acme.test")
		if r := srv.Do(t, "GET", "/rest/v1/projects?select=name", token, nil); string(r.Body) != `[{"name":"p-acme"}]` {
			t.Fatalf("acme reads after its move to %s: %s", to, r)
		}
		if to == "silo" {
			if n := count(`SELECT count(*) FROM app.projects WHERE tenant_id = $1`, acme.UUID); n != 0 {
				t.Fatalf("after moving to a silo, acme still has %d projects in the pool", n)
			}
		}
	}
	if n := count(`SELECT count(*) FROM app.projects WHERE tenant_id = $1`, acme.UUID); n != 1 {
		t.Fatalf("after moving to a silo and back, acme has %d projects in the pool, want 1", n)
	}
	if n := count(`SELECT count(*) FROM pg_namespace WHERE nspname = $1`, "t_"+strings.ReplaceAll(acme.UUID, "-", "")); n != 0 {
		t.Fatalf("acme's silo schema was not dropped after the move back")
	}

	// Offboarding, pool and silo: every row goes.
	for _, tn := range []*apitest.Tenant{acme, globex} {
		if r := srv.Do(t, "DELETE", "/v1/tenants/"+tn.Slug, srv.AdminToken, nil); r.Status != http.StatusOK {
			t.Fatalf("offboard %s: %s", tn.Slug, r)
		}
	}
	if n := count(`SELECT count(*) FROM app.projects`); n != 0 {
		t.Fatalf("%d pool rows left after offboarding", n)
	}
	if n := count(`SELECT count(*) FROM pg_namespace WHERE nspname ~ '^t_[0-9a-f]{32}$'`); n != 0 {
		t.Fatalf("%d silo schemas left after offboarding", n)
	}

	// migrate again changes nothing.
	if out, err := cmd("migrate"); err != nil || !strings.Contains(out, "database is up to date") {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}

	// The audit chain.
	srv.Sequence(t)
	if out, err := cmd("audit", "verify"); err != nil || !strings.Contains(out, "ok:") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}

	// lint: no error; the hardening the admin could not do shows.
	if out, err := cmd("lint"); err != nil || !strings.Contains(out, "L20 app_role_reaches_other_sessions") || !strings.Contains(out, "On a managed service (no superuser) it cannot be done") {
		t.Fatalf("lint: %v\n%s", err, out)
	}

	managedWatchdog(t, d)
}

// managedWatchdog: a setting a function's role plants on itself is reset,
// and its backend idle in a transaction is ended, with the privileges the
// managed admin roles have (CREATEROLE, pg_signal_backend,
// pg_read_all_stats).
func managedWatchdog(t *testing.T, d *pgtest.DB) {
	ctx := context.Background()
	name := "mgd" + strings.ReplaceAll(d.Role[len(d.Role)-12:], "_", "")
	out, err := cli(d.AdminURL)("functions", "create", name)
	if err != nil {
		t.Fatalf("functions create: %v\n%s", err, out)
	}
	pw := out[strings.Index(out, `"password":"`)+len(`"password":"`):]
	pw = pw[:strings.Index(pw, `"`)]
	fn, err := pgx.Connect(ctx, d.URL("bulkhead_fn_"+name, pw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fn.Close(context.Background()) })
	// In this database only: the other subtest's watchdog, in another
	// database of the same cluster, sweeps settings for every database
	// and would otherwise reset this one first (roles are cluster-wide).
	if _, err := fn.Exec(ctx, `ALTER ROLE CURRENT_USER IN DATABASE `+d.Name+` SET work_mem = '64MB'`); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: d.AdminURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	limits, err := db.WatchdogLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(limits) != 2 || !strings.Contains(limits[0], "password") {
		t.Errorf("watchdog limits with CREATEROLE, pg_signal_backend and pg_read_all_stats: %q, want the two a superuser lifts", limits)
	}
	if _, err := fn.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var got []postgres.Finding
	for i := 0; i < 100; i++ {
		fs, err := db.Sweep(ctx, postgres.WatchdogOptions{MaxIdleInTransaction: time.Millisecond})
		if err != nil {
			t.Fatalf("sweep as a managed admin: %v", err)
		}
		got = append(got, fs...)
		if strings.Contains(fmt.Sprint(got), "idle_in_transaction") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := map[string]string{"role_setting": "reset", "idle_in_transaction": "terminated"}
	for _, f := range got {
		if w, ok := want[f.Kind]; ok && f.Role == "bulkhead_fn_"+name {
			if f.Action != w {
				t.Errorf("watchdog %s: %s, want %s", f.Kind, f.Action, w)
			}
			delete(want, f.Kind)
		}
	}
	if len(want) > 0 {
		t.Errorf("watchdog did not find %v; found %v", want, got)
	}
	var settings int
	if err := db.Admin().QueryRow(ctx, `SELECT count(*) FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
		"bulkhead_fn_"+name).Scan(&settings); err != nil || settings != 0 {
		t.Errorf("the function's role still has %d settings (%v)", settings, err)
	}
}

// TestManagedPgcryptoElsewhere: on a database where pgcrypto was installed
// beforehand in public, migrate refuses and says how to fix it.
func TestManagedPgcryptoElsewhere(t *testing.T) {
	t.Parallel()
	d := pgtest.NewManagedDB(t, pgtest.ManagedRDS, true)
	_, err := cli(d.AdminURL)("migrate")
	if err == nil || !strings.Contains(err.Error(), `installed in schema "public"`) ||
		!strings.Contains(err.Error(), "ALTER EXTENSION pgcrypto SET SCHEMA bulkhead_crypto") ||
		!strings.Contains(err.Error(), "a database of its own") {
		t.Fatalf("migrate with pgcrypto in public: %v", err)
	}
	if errors.As(err, new(usageError)) {
		t.Fatalf("a refusal, not a usage error: %v", err)
	}
}

// TestManagedMaintMustSeeRows: where bulkhead_maint does not bypass row
// security (a managed service's admin cannot make it so), offboarding and
// moves see the tenant's rows only through the maint_all policy. Without
// it, or with a restrictive policy that applies to bulkhead_maint, they
// would find nothing to copy or delete and report success with the rows
// left behind; they refuse instead, and change nothing.
func TestManagedMaintMustSeeRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := pgtest.NewManagedDB(t, pgtest.ManagedRDS, false)
	cmd := cli(d.AdminURL)
	if out, err := cmd("migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if _, err := cmd("tenants", "create", "acme"); err != nil {
		t.Fatal(err)
	}
	super, err := pgx.Connect(ctx, d.SuperURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { super.Close(context.Background()) })
	exec := func(q string) {
		t.Helper()
		if _, err := super.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO app.projects (tenant_id, name) SELECT id, 'kept' FROM bulkhead_control.tenants WHERE slug = 'acme'`)
	// lint's L21 says so ahead of time.
	lintL21 := func() bool {
		t.Helper()
		out, err := cmd("lint", "--format", "json", "--fail-on", "error")
		if err != nil {
			t.Fatalf("lint: %v\n%s", err, out)
		}
		return strings.Contains(out, `"id": "L21"`) || strings.Contains(out, `"id":"L21"`)
	}
	if lintL21() {
		t.Fatal("lint reports L21 on a database whose tenant tables all have maint_all")
	}
	for _, tc := range []struct{ name, breakIt, mendIt string }{
		{"no maint_all", `DROP POLICY maint_all ON app.projects`,
			`CREATE POLICY maint_all ON app.projects AS PERMISSIVE FOR ALL TO bulkhead_maint USING (true) WITH CHECK (true)`},
		{"a restrictive policy for PUBLIC", `CREATE POLICY narrow ON app.tasks AS RESTRICTIVE FOR ALL TO PUBLIC USING (tenant_id IS NULL)`,
			`DROP POLICY narrow ON app.tasks`},
	} {
		exec(tc.breakIt)
		if !lintL21() {
			t.Errorf("%s: lint does not report L21", tc.name)
		}
		for _, args := range [][]string{{"tenants", "move", "acme", "--to", "silo", "--settle", "4s"}, {"tenants", "delete", "acme", "--yes"}} {
			_, err := cmd(args...)
			if fault.CodeOf(err) != "maint_cannot_see_rows" {
				t.Errorf("%s: %v: %v, want maint_cannot_see_rows", tc.name, args, err)
			}
		}
		var status, tier string
		var rows int
		if err := super.QueryRow(ctx, `SELECT t.status, t.tier, (SELECT count(*) FROM app.projects p WHERE p.tenant_id = t.id)
			FROM bulkhead_control.tenants t WHERE slug = 'acme'`).Scan(&status, &tier, &rows); err != nil {
			t.Fatal(err)
		}
		if status != "active" || tier != "pool" || rows != 1 {
			t.Fatalf("%s: after the refusals acme is %s, %s, with %d rows in the pool", tc.name, status, tier, rows)
		}
		exec(tc.mendIt)
	}
	if _, err := cmd("tenants", "move", "acme", "--to", "silo", "--settle", "4s"); err != nil {
		t.Fatalf("the move once mended: %v", err)
	}
}
