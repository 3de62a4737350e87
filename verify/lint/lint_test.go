package lint_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
	"github.com/bulkhead-dev/bulkhead/verify/lint"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func run(t *testing.T, conn *pgx.Conn, opt lint.Options) *lint.Report {
	t.Helper()
	rep, err := lint.Run(t.Context(), conn, opt)
	if err != nil {
		t.Fatalf("lint.Run: %v", err)
	}
	return rep
}

// TestBulkheadClean lints a freshly migrated bulkhead database with a pool
// tenant, a silo tenant and a registered function: bulkhead's own schema
// must have no finding at warn or above.
func TestBulkheadClean(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := pgtest.NewDB(t)
	// Lint counts every member of bulkhead_app in the cluster: keep other
	// tests' deliberate weakenings of cluster-wide roles out of this one.
	pgtest.LockClusterRoles(t, d.AdminURL, false)
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: d.AdminURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []postgres.TenantCreate{{Slug: "acme", Tier: tenant.Pool}, {Slug: "globex", Tier: tenant.Silo}} {
		if _, _, err := db.CreateTenant(ctx, c); err != nil {
			t.Fatalf("CreateTenant(%s): %v", c.Slug, err)
		}
	}
	fn := "lintclean_" + randHex(4)
	if _, err := db.CreateFunction(ctx, fn); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	t.Cleanup(func() { dropRoles(d.AdminURL, postgres.FunctionRolePrefix+fn) })

	conn := connect(t, d.AdminURL)
	var gateway string
	if err := conn.QueryRow(ctx, `SELECT role FROM bulkhead_control.role_credentials WHERE starts_with(role, $1)`, postgres.GatewayRolePrefix).Scan(&gateway); err != nil {
		t.Fatalf("find the gateway role: %v", err)
	}
	rep := run(t, conn, lint.Options{})
	if !rep.Bulkhead {
		t.Errorf("Report.Bulkhead = false on a bulkhead database")
	}
	for _, want := range []string{gateway, postgres.FunctionRolePrefix + fn} {
		if !contains(rep.AppRoles, want) {
			t.Errorf("default app roles %v lack %s", rep.AppRoles, want)
		}
	}
	for _, f := range rep.Findings {
		if f.Severity.AtLeast(lint.Warn) {
			t.Errorf("finding on bulkhead's own schema: %s %s %s: %s", f.Severity, f.ID, f.Object, f.Message)
		} else {
			t.Logf("%s %s %s: %s", f.Severity, f.ID, f.Object, f.Message)
		}
	}
	// The silo schema was linted too.
	var sawSilo bool
	for _, s := range rep.Schemas {
		sawSilo = sawSilo || strings.HasPrefix(s, "t_")
	}
	if !sawSilo {
		t.Errorf("exposed schemas %v lack the silo schema", rep.Schemas)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dropRoles removes cluster-wide roles a test made (their objects live in
// the test database, which pgtest drops).
func dropRoles(adminURL string, roles ...string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, r := range roles {
		conn.Exec(ctx, `DROP OWNED BY `+r+` CASCADE`)
		conn.Exec(ctx, `DROP ROLE IF EXISTS `+r)
	}
}

// bed is a lintbed built in a test database.
type bed struct {
	db             *pgtest.DB
	prefix, schema string
}

func (b *bed) appRoles() []string { return []string{b.prefix + "_app", b.prefix + "_app2"} }

// inScope reports whether a finding is about the lintbed: its objects,
// roles and extensions, or the database.
func (b *bed) inScope(f lint.Finding) bool {
	switch f.Object.Kind {
	case "extension", "database", "user mapping":
		return true
	}
	return strings.Contains(f.Object.Name, b.prefix)
}

// newBed builds testdata/lintbed.sql in a fresh test database.
func newBed(t *testing.T) *bed {
	t.Helper()
	d := pgtest.NewDB(t)
	b := &bed{db: d, prefix: "lb" + randHex(4)}
	b.schema = b.prefix + "_bed"
	sql, err := os.ReadFile("testdata/lintbed.sql")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("{{p}}", b.prefix, "{{s}}", b.schema, "{{db}}", d.Name).Replace(string(sql))
	t.Cleanup(func() {
		dropRoles(d.AdminURL, b.prefix+"_app", b.prefix+"_app2", b.prefix+"_svc", b.prefix+"_owner")
	})
	conn := connect(t, d.AdminURL)
	if _, err := conn.Exec(t.Context(), s); err != nil {
		t.Fatalf("build the lintbed: %v", err)
	}
	return b
}

// expected returns, per finding id, the objects the lintbed must fire it on.
func (b *bed) expected() map[string][]string {
	s := b.schema
	q := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, strings.ReplaceAll(n, "$", s))
		}
		return out
	}
	return map[string][]string{
		"L01":   q("table $.t01_no_rls", "table $.t01_unreachable"),
		"L02":   q("table $.t02_not_forced"),
		"L03":   q("policy ins ON $.t03_write", "policy upd ON $.t03_write"),
		"L04":   q("policy public_read ON $.t04_or"),
		"L05":   q("policy by_setting ON $.t05_setting", "policy by_meta ON $.t05_meta", "policy fail_open ON $.t05_failopen", "policy by_wrapper ON $.t05_wrapper"),
		"L06":   {"role " + b.prefix + "_app", "role " + b.prefix + "_app2"},
		"L07":   q("view $.v07_definer", "materialized view $.m07_matview"),
		"L08":   q("function $.f08_mutable()", "function $.f08_temp_first()", "function $.f08_reads()"),
		"L09":   q("constraint t09_parent_id_key ON $.t09_parent", "constraint t09_child_parent_id_fkey ON $.t09_child", "index $.t09_child_code"),
		"L10":   q("policy per_row ON $.t10_per_row"),
		"L11":   q("table $.t11_no_index"),
		"L12":   q("table $.t12_truncate", "table $.t06_owned"),
		"L13":   {"schema " + s + "_open", "database " + b.db.Name},
		"L14":   q("table $.t14_part_a"),
		"L15":   q("sequence $.s15_seq"),
		"L16":   q("function $.f16_leaky(text,text)"),
		"L17":   {"extension postgres_fdw", "user mapping PUBLIC SERVER " + b.prefix + "_srv"},
		"L20":   {"database " + b.db.Name},
		"L22":   {"database " + b.db.Name},
		"L23":   {"database " + b.db.Name},
		"S0003": q("policy mine ON $.n03_per_row"),
		"S0006": q("table $.t04_or", "table $.t04_guarded"),
		"S0007": q("table $.n07_policy_no_rls"),
		"S0008": q("table $.n08_no_policy"),
		"S0010": q("view $.v10_definer"),
		"S0011": q("function $.f11_mutable()"),
		"S0013": q("table $.n13_shared", "table $.n23_secrets"),
		"S0014": {"extension citext"},
		"S0015": q("policy by_meta ON $.n15_meta"),
		"S0016": q("materialized view $.m16_matview"),
		"S0017": q("foreign table $.f17_remote"),
		"S0022": {"extension hstore"},
		"S0023": q("table $.n23_secrets"),
		"S0024": q("policy anyone ON $.n24_always"),
		"S0028": q("function $.f28_bypass_definer()", "function $.ok_definer()"),
	}
}

func (b *bed) lint(t *testing.T) *lint.Report {
	t.Helper()
	return run(t, connect(t, b.db.AdminURL), lint.Options{AppRoles: b.appRoles()})
}

// TestLintbed builds one of each misconfiguration and checks that each
// finding id fires on exactly the intended objects, and that the fixed
// twins (ok_*) stay quiet.
func TestLintbed(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	rep := b.lint(t)
	got := map[string][]string{}
	for _, f := range rep.Findings {
		if b.inScope(f) {
			got[f.ID] = append(got[f.ID], f.Object.String())
		}
		if strings.Contains(f.Object.Name, ".ok_") && f.Severity.AtLeast(lint.Warn) {
			t.Errorf("fixed twin fired: %s %s %s: %s", f.Severity, f.ID, f.Object, f.Message)
		}
	}
	want := b.expected()
	ids := map[string]bool{}
	for id := range want {
		ids[id] = true
	}
	for id := range got {
		ids[id] = true
	}
	var sorted []string
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		t.Run(id, func(t *testing.T) {
			w, g := append([]string(nil), want[id]...), append([]string(nil), got[id]...)
			sort.Strings(w)
			sort.Strings(g)
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("objects with %s (-want +got):\n%s", id, diff)
				for _, f := range rep.Findings {
					if f.ID == id && b.inScope(f) {
						t.Logf("  %s %s: %s", f.Severity, f.Object, f.Message)
					}
				}
			}
		})
	}
	// L20 names the advisory-lock functions too (the lintbed grants one
	// to PUBLIC, one to its app role), and revokes PUBLIC's without
	// handing it to pg_monitor.
	for _, f := range rep.Findings {
		if f.ID == "L20" && b.inScope(f) {
			for _, fn := range []string{"pg_catalog.pg_try_advisory_lock(bigint)", "pg_catalog.pg_advisory_lock(integer,integer)"} {
				if !strings.Contains(f.Message, fn) {
					t.Errorf("L20 does not name %s: %s", fn, f.Message)
				}
			}
			if !strings.Contains(f.Fix, "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_try_advisory_lock(bigint) FROM PUBLIC;") || strings.Contains(f.Fix, "pg_try_advisory_lock(bigint) TO pg_monitor") {
				t.Errorf("L20's fix for the advisory locks: %s", f.Fix)
			}
		}
	}
	// Every rule but L18 (needs an old server), L19 (needs a bulkhead
	// database: TestTamperedVerifier) and L21 (needs one whose
	// bulkhead_maint does not bypass row security, as on a managed
	// service: cmd/bulkhead TestManagedMaintMustSeeRows) is exercised.
	for _, r := range lint.Rules() {
		if r.ID != "L18" && r.ID != "L19" && r.ID != "L21" && len(want[r.ID]) == 0 {
			t.Errorf("rule %s has no lintbed case", r.ID)
		}
	}
	// Severities that depend on the object.
	for _, c := range []struct{ id, object string }{
		{"L01", "table " + b.schema + ".t01_unreachable"},
		{"S0028", "function " + b.schema + ".ok_definer()"},
	} {
		for _, f := range rep.Findings {
			if f.ID == c.id && f.Object.String() == c.object && f.Severity != lint.Info {
				t.Errorf("%s on %s: severity %s, want info", c.id, c.object, f.Severity)
			}
		}
	}
}

// TestLintbedFixes applies the SQL of every finding on the lintbed and
// lints again: each fix must run and make its finding go away.
func TestLintbedFixes(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	ctx := t.Context()
	conn := connect(t, b.db.AdminURL)
	var pending []lint.Finding
	for _, f := range b.lint(t).Findings {
		if b.inScope(f) && f.Severity.AtLeast(lint.Warn) {
			pending = append(pending, f)
		}
	}
	failed := map[string]error{}
	// A fix may depend on another (a foreign key before the key it uses),
	// so failures are retried while there is progress.
	for round := 0; len(pending) > 0; round++ {
		var again []lint.Finding
		for _, f := range pending {
			if _, err := conn.Exec(ctx, f.Fix); err != nil {
				again = append(again, f)
				failed[f.ID+" "+f.Object.String()] = err
				continue
			}
			delete(failed, f.ID+" "+f.Object.String())
		}
		if len(again) == len(pending) {
			break
		}
		pending = again
	}
	// The one fix that cannot run here: dropping postgres_fdw while a
	// server uses it (lint never suggests CASCADE).
	wantFailed := []string{"L17 extension postgres_fdw"}
	var gotFailed []string
	for k, err := range failed {
		gotFailed = append(gotFailed, k)
		if !contains(wantFailed, k) {
			t.Errorf("fix for %s failed: %v", k, err)
		}
	}
	sort.Strings(gotFailed)
	if diff := cmp.Diff(wantFailed, gotFailed); diff != "" {
		t.Errorf("failed fixes (-want +got):\n%s", diff)
	}
	for _, f := range b.lint(t).Findings {
		if b.inScope(f) && f.Severity.AtLeast(lint.Warn) && !contains(wantFailed, f.ID+" "+f.Object.String()) {
			t.Errorf("after the fixes: %s %s %s: %s\nfix: %s", f.Severity, f.ID, f.Object, f.Message, f.Fix)
		}
	}
}

// TestPerRowFalsePositive is splinter 0003's false positive: PostgreSQL
// deparses (select auth.jwt() ->> 'tenant_id') as "( SELECT (auth.jwt()
// ->> …))", an init-plan that runs once. Only the seed's bare call runs
// per row.
func TestPerRowFalsePositive(t *testing.T) {
	t.Parallel()
	d := pgtest.NewDB(t)
	p := "pr" + randHex(4)
	t.Cleanup(func() { dropRoles(d.AdminURL, p+"_app") })
	conn := connect(t, d.AdminURL)
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE ROLE %s_app LOGIN; CREATE SCHEMA %s; GRANT USAGE ON SCHEMA %s TO %s_app;\n", p, p, p, p)
	for _, c := range []struct{ table, using string }{
		{"seed", "tenant_id = auth.jwt() ->> 'tenant_id'"},
		{"sub_select", "tenant_id = (select auth.jwt() ->> 'tenant_id')"},
		{"sub_select_call", "tenant_id = (select auth.jwt()) ->> 'tenant_id'"},
		{"nested", "tenant_id = (select (select auth.jwt()) ->> 'tenant_id')"},
	} {
		fmt.Fprintf(&b, `CREATE TABLE %[1]s.%[2]s (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE %[1]s.%[2]s ENABLE ROW LEVEL SECURITY; ALTER TABLE %[1]s.%[2]s FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON %[1]s.%[2]s FOR SELECT TO %[1]s_app USING (%[3]s);
GRANT SELECT ON %[1]s.%[2]s TO %[1]s_app;
`, p, c.table, c.using)
	}
	if _, err := conn.Exec(t.Context(), b.String()); err != nil {
		t.Fatal(err)
	}
	rep := run(t, conn, lint.Options{AppRoles: []string{p + "_app"}})
	var got []string
	for _, f := range rep.Findings {
		if (f.ID == "L10" || f.ID == "S0003") && strings.Contains(f.Object.Name, p) {
			got = append(got, f.ID+" "+f.Object.Name)
			if want := "(SELECT auth.jwt())"; !strings.Contains(f.Fix, want) {
				t.Errorf("fix %q lacks the fast form %s", f.Fix, want)
			}
		}
	}
	if diff := cmp.Diff([]string{"L10 p ON " + p + ".seed"}, got); diff != "" {
		t.Errorf("per-row findings (-want +got):\n%s", diff)
	}
}

// TestOptions covers the parameters: an unknown app role or schema is an
// invalid option, a custom tenant column changes which tables are tenant
// tables, and --schemas limits the splinter-derived checks.
func TestOptions(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	conn := connect(t, b.db.AdminURL)
	ctx := t.Context()
	t.Run("ErrUnknownRole", func(t *testing.T) {
		_, err := lint.Run(ctx, conn, lint.Options{AppRoles: []string{"no_such_role_" + randHex(4)}})
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("Run(unknown role) = %v, want an invalid_role error", err)
		}
	})
	t.Run("ErrUnknownSchema", func(t *testing.T) {
		_, err := lint.Run(ctx, conn, lint.Options{AppRoles: b.appRoles(), Schemas: []string{"no_such_schema"}})
		if err == nil {
			t.Fatal("Run(unknown schema) = nil error")
		}
	})
	t.Run("TenantColumn", func(t *testing.T) {
		rep := run(t, conn, lint.Options{AppRoles: b.appRoles(), TenantColumn: "owner_id"})
		// n13_shared has no owner_id; n07_policy_no_rls has one and no row security.
		var l01 []string
		for _, f := range rep.Findings {
			if f.ID == "L01" && b.inScope(f) {
				l01 = append(l01, f.Object.Name)
			}
		}
		if want := []string{b.schema + ".n07_policy_no_rls"}; !cmp.Equal(want, l01) {
			t.Errorf("L01 with tenant column owner_id = %v, want %v", l01, want)
		}
	})
	t.Run("Schemas", func(t *testing.T) {
		rep := run(t, conn, lint.Options{AppRoles: b.appRoles(), Schemas: []string{"public"}})
		exposedOnly := []string{"S0010", "S0011", "S0013", "S0016", "S0017", "S0023", "S0028"}
		for _, f := range rep.Findings {
			if contains(exposedOnly, f.ID) && strings.Contains(f.Object.Name, b.schema+".") {
				t.Errorf("%s on %s, outside the exposed schemas", f.ID, f.Object)
			}
		}
		if !cmp.Equal(rep.Schemas, []string{"public"}) {
			t.Errorf("Report.Schemas = %v", rep.Schemas)
		}
	})
}
