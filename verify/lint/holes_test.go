package lint_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/verify/lint"
)

// rig builds setup ({{p}} = a unique prefix, also the schema; roles
// {{p}}_owner NOLOGIN and {{p}}_app LOGIN exist) in a fresh test database.
type rig struct {
	d    *pgtest.DB
	conn *pgx.Conn
	p    string
}

const rigBase = `
CREATE ROLE {{p}}_owner NOLOGIN;
CREATE ROLE {{p}}_app LOGIN;
CREATE SCHEMA {{p}} AUTHORIZATION {{p}}_owner;
GRANT USAGE ON SCHEMA {{p}} TO {{p}}_app;
GRANT USAGE ON SCHEMA bulkhead TO {{p}}_owner, {{p}}_app;
GRANT EXECUTE ON FUNCTION bulkhead.tenant_id(), bulkhead.context() TO {{p}}_owner, {{p}}_app;
`

func newRig(t *testing.T, base, setup string) *rig {
	t.Helper()
	d := pgtest.NewDB(t)
	r := &rig{d: d, p: "hl" + randHex(4)}
	t.Cleanup(func() { dropRoles(d.AdminURL, r.p+"_app", r.p+"_owner", r.p+"_svc") })
	r.conn = connect(t, d.AdminURL)
	if _, err := r.conn.Exec(t.Context(), r.sql(base+setup)); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return r
}

func (r *rig) sql(s string) string { return strings.NewReplacer("{{p}}", r.p).Replace(s) }

// lint runs lint and returns the findings about the rig's objects.
func (r *rig) lint(t *testing.T, opt lint.Options) []lint.Finding {
	t.Helper()
	var out []lint.Finding
	for _, f := range run(t, r.conn, opt).Findings {
		if strings.Contains(f.Object.Name, r.p) {
			t.Logf("lint: %s %s %s: %s", f.Severity, f.ID, f.Object, f.Message)
			out = append(out, f)
		}
	}
	return out
}

func hasFinding(fs []lint.Finding, id, object string, min lint.Severity) bool {
	for _, f := range fs {
		if f.ID == id && f.Object.String() == object && f.Severity.AtLeast(min) {
			return true
		}
	}
	return false
}

// asApp runs stmts as {{p}}_app in a rolled-back transaction and returns
// the last statement's single value (or the error).
func (r *rig) asApp(t *testing.T, stmts ...string) (string, error) {
	t.Helper()
	tx, err := r.conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	if _, err := tx.Exec(t.Context(), r.sql("SET LOCAL ROLE {{p}}_app")); err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts[:len(stmts)-1] {
		if _, err := tx.Exec(t.Context(), r.sql(s)); err != nil {
			return "", err
		}
	}
	var v string
	err = tx.QueryRow(t.Context(), r.sql(stmts[len(stmts)-1])).Scan(&v)
	return v, err
}

const (
	tenantA = "00000000-0000-0000-0000-00000000000a"
	tenantB = "00000000-0000-0000-0000-00000000000b"
)

// A07 through a SECURITY DEFINER wrapper: the wrapper reads a plain
// setting and verifies nothing, yet lint treats every definer function as
// a verifier. Any SQL the app role runs forges tenant B.
func TestDefinerWrapperReadingASetting(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigBase, `
SET ROLE {{p}}_owner;
CREATE FUNCTION {{p}}.current_tenant() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
CREATE TABLE {{p}}.docs (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.docs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{p}}.docs FOR ALL TO {{p}}_app
    USING (tenant_id = (SELECT {{p}}.current_tenant())) WITH CHECK (tenant_id = (SELECT {{p}}.current_tenant()));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{p}}.docs TO {{p}}_app;
-- a definer function that checks the setting against a key the app role
-- cannot read: a verifier, not a wrapper
CREATE TABLE {{p}}.keys (k bytea NOT NULL);
CREATE FUNCTION {{p}}.verified_tenant() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT split_part(current_setting('app.ctx', true), '.', 1)::uuid FROM {{p}}.keys k
          WHERE md5(split_part(current_setting('app.ctx', true), '.', 1) || encode(k.k, 'hex')) = split_part(current_setting('app.ctx', true), '.', 2) $$;
CREATE TABLE {{p}}.notes (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{p}}.notes FOR ALL TO {{p}}_app
    USING (tenant_id = (SELECT {{p}}.verified_tenant())) WITH CHECK (tenant_id = (SELECT {{p}}.verified_tenant()));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{p}}.notes TO {{p}}_app;
RESET ROLE;
INSERT INTO {{p}}.docs (tenant_id, body) VALUES ('`+tenantA+`', 'A secret'), ('`+tenantB+`', 'B secret');
`)
	got, err := r.asApp(t,
		"SELECT set_config('app.tenant_id', '"+tenantA+"', true)", // A's request
		"SELECT set_config('app.tenant_id', '"+tenantB+"', true)", // attacker SQL
		"SELECT string_agg(body, ',') FROM {{p}}.docs")
	t.Logf("as A after forging B: %q, %v", got, err)
	if got != "B secret" {
		t.Fatalf("precondition: forgery should read B's row, got %q", got)
	}
	fs := r.lint(t, lint.Options{AppRoles: []string{r.p + "_app"}})
	if !hasFinding(fs, "L05", "policy tenant_all ON "+r.p+".docs", lint.Error) {
		t.Errorf("no L05 error on a policy whose SECURITY DEFINER wrapper returns current_setting() unverified (forgery reads B's rows)")
	}
	if hasFinding(fs, "L05", "policy tenant_all ON "+r.p+".notes", lint.Info) {
		t.Errorf("L05 on a policy whose SECURITY DEFINER function checks the setting against a table the app role cannot read")
	}
}

// SQL-standard function bodies (RETURN … / BEGIN ATOMIC … END, PG 14+)
// keep prosrc empty: lint reads only prosrc, so it sees neither the
// setting an invoker wrapper reads (L05) nor the tenant table a definer
// function reads (L08). The $$-bodied twins are flagged.
func TestSQLStandardBodies(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigBase, `
CREATE TABLE {{p}}.docs (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.docs OWNER TO {{p}}_owner;
ALTER TABLE {{p}}.docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.docs FORCE ROW LEVEL SECURITY;
CREATE TABLE {{p}}.twin (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.twin OWNER TO {{p}}_owner;
ALTER TABLE {{p}}.twin ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.twin FORCE ROW LEVEL SECURITY;
-- invoker wrappers of a plain setting
CREATE FUNCTION {{p}}.tenant_std() RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    RETURN NULLIF(current_setting('app.tenant_id', true), '')::uuid;
CREATE FUNCTION {{p}}.tenant_old() RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
CREATE POLICY tenant_all ON {{p}}.docs FOR ALL TO {{p}}_app USING (tenant_id = (SELECT {{p}}.tenant_std()));
CREATE POLICY tenant_all ON {{p}}.twin FOR ALL TO {{p}}_app USING (tenant_id = (SELECT {{p}}.tenant_old()));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{p}}.docs, {{p}}.twin TO {{p}}_app;
INSERT INTO {{p}}.docs (tenant_id, body) VALUES ('`+tenantA+`', 'A secret'), ('`+tenantB+`', 'B secret');
-- definer functions created by the superuser that return every tenant's rows
CREATE FUNCTION {{p}}.all_docs_std() RETURNS SETOF {{p}}.docs LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC SELECT * FROM {{p}}.docs; END;
CREATE FUNCTION {{p}}.all_docs_old() RETURNS SETOF {{p}}.docs LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM {{p}}.docs $$;
`)
	var src string
	if err := r.conn.QueryRow(t.Context(), r.sql("SELECT '['||prosrc||']' FROM pg_proc WHERE oid = '{{p}}.all_docs_std()'::regprocedure")).Scan(&src); err != nil {
		t.Fatal(err)
	}
	t.Logf("prosrc of the BEGIN ATOMIC function: %s", src)
	got, err := r.asApp(t, "SELECT set_config('app.tenant_id', '"+tenantB+"', true)", "SELECT string_agg(body, ',' ORDER BY body) FROM {{p}}.docs")
	t.Logf("forged B through tenant_std(): %q, %v", got, err)
	got, err = r.asApp(t, "SELECT string_agg(body, ',' ORDER BY body) FROM {{p}}.all_docs_std()")
	t.Logf("all_docs_std() as the app role, no context: %q, %v", got, err)

	fs := r.lint(t, lint.Options{AppRoles: []string{r.p + "_app"}})
	for _, c := range []struct{ id, object string }{
		{"L05", "policy tenant_all ON " + r.p + ".twin"}, // control: flagged
		{"L05", "policy tenant_all ON " + r.p + ".docs"}, // RETURN body: missed
		{"L08", "function " + r.p + ".all_docs_old()"},   // control: flagged
		{"L08", "function " + r.p + ".all_docs_std()"},   // BEGIN ATOMIC body: missed
	} {
		if !hasFinding(fs, c.id, c.object, lint.Warn) {
			t.Errorf("no %s on %s", c.id, c.object)
		}
	}
}

// A32 spelled as CASE, or as COALESCE over a cast tenant column: with no
// context, every tenant's rows. lint reports neither (L05 looks for the
// bare column inside COALESCE and for "IS NULL" under an OR; L04 sees the
// column mentioned).
func TestFailOpenSpellings(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigBase, `
SET ROLE {{p}}_owner;
CREATE TABLE {{p}}.t_case (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
CREATE TABLE {{p}}.t_cast (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
CREATE TABLE {{p}}.t_coalesce (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.t_case ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.t_case FORCE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.t_cast ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.t_cast FORCE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.t_coalesce ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.t_coalesce FORCE ROW LEVEL SECURITY;
CREATE POLICY fail_open ON {{p}}.t_case FOR SELECT TO {{p}}_app
    USING (CASE WHEN (SELECT bulkhead.tenant_id()) IS NULL THEN true ELSE tenant_id = (SELECT bulkhead.tenant_id()) END);
CREATE POLICY fail_open ON {{p}}.t_cast FOR SELECT TO {{p}}_app
    USING (tenant_id::text = COALESCE((SELECT bulkhead.tenant_id())::text, tenant_id::text));
CREATE POLICY fail_open ON {{p}}.t_coalesce FOR SELECT TO {{p}}_app
    USING (tenant_id = COALESCE((SELECT bulkhead.tenant_id()), tenant_id));
GRANT SELECT ON {{p}}.t_case, {{p}}.t_cast, {{p}}.t_coalesce TO {{p}}_app;
RESET ROLE;
INSERT INTO {{p}}.t_case VALUES ('`+tenantA+`', 1, 'A'), ('`+tenantB+`', 2, 'B');
INSERT INTO {{p}}.t_cast VALUES ('`+tenantA+`', 1, 'A'), ('`+tenantB+`', 2, 'B');
INSERT INTO {{p}}.t_coalesce VALUES ('`+tenantA+`', 1, 'A'), ('`+tenantB+`', 2, 'B');
`)
	var defs string
	r.conn.QueryRow(t.Context(), r.sql(`SELECT string_agg(polrelid::regclass || ': ' || pg_get_expr(polqual, polrelid), E'\n') FROM pg_policy WHERE polname = 'fail_open'`)).Scan(&defs)
	t.Logf("deparsed:\n%s", defs)
	fs := r.lint(t, lint.Options{AppRoles: []string{r.p + "_app"}})
	for _, tbl := range []string{"t_coalesce", "t_case", "t_cast"} {
		got, err := r.asApp(t, "SELECT string_agg(body, ',' ORDER BY body) FROM {{p}}."+tbl)
		t.Logf("%s with no context: %q, %v", tbl, got, err)
		obj := "policy fail_open ON " + r.p + "." + tbl
		if !hasFinding(fs, "L05", obj, lint.Error) && !hasFinding(fs, "L04", obj, lint.Error) {
			t.Errorf("%s: no L05/L04 error, yet a missing context reads %q", obj, got)
		}
	}
}

// A restrictive FOR ALL guard with USING only also checks new rows on
// INSERT (PostgreSQL uses USING when WITH CHECK is absent), so the
// permissive INSERT ... WITH CHECK (true) cannot write into another
// tenant. lint reports L03 as an error anyway.
func TestRestrictiveUsingOnlyGuard(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigBase, `
SET ROLE {{p}}_owner;
CREATE TABLE {{p}}.notes (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.notes FORCE ROW LEVEL SECURITY;
CREATE POLICY guard ON {{p}}.notes AS RESTRICTIVE FOR ALL TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
CREATE POLICY sel ON {{p}}.notes FOR SELECT TO {{p}}_app USING (true);
CREATE POLICY ins ON {{p}}.notes FOR INSERT TO {{p}}_app WITH CHECK (true);
GRANT SELECT, INSERT ON {{p}}.notes TO {{p}}_app;
-- the same shape keyed on a setting, to show A in / B out
CREATE TABLE {{p}}.notes_guc (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.notes_guc ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.notes_guc FORCE ROW LEVEL SECURITY;
CREATE POLICY guard ON {{p}}.notes_guc AS RESTRICTIVE FOR ALL TO {{p}}_app USING (tenant_id = current_setting('app.tenant_id')::uuid);
CREATE POLICY sel ON {{p}}.notes_guc FOR SELECT TO {{p}}_app USING (true);
CREATE POLICY ins ON {{p}}.notes_guc FOR INSERT TO {{p}}_app WITH CHECK (true);
GRANT SELECT, INSERT ON {{p}}.notes_guc TO {{p}}_app;
RESET ROLE;
`)
	setA := "SELECT set_config('app.tenant_id', '" + tenantA + "', true)"
	_, errA := r.asApp(t, setA, "INSERT INTO {{p}}.notes_guc VALUES ('"+tenantA+"', 1, 'a') RETURNING 'ok'")
	_, errB := r.asApp(t, setA, "INSERT INTO {{p}}.notes_guc VALUES ('"+tenantB+"', 1, 'planted') RETURNING 'ok'")
	_, errN := r.asApp(t, "INSERT INTO {{p}}.notes VALUES ('"+tenantB+"', 1, 'planted') RETURNING 'ok'")
	t.Logf("A inserts A: %v\nA inserts B: %v\nno context inserts B into notes: %v", errA, errB, errN)
	if errA != nil || errB == nil || errN == nil {
		t.Fatalf("precondition: the USING-only restrictive guard should check inserts")
	}
	fs := r.lint(t, lint.Options{AppRoles: []string{r.p + "_app"}})
	if hasFinding(fs, "L03", "policy ins ON "+r.p+".notes", lint.Error) {
		t.Errorf("false positive: L03 error on an INSERT policy guarded by a restrictive FOR ALL USING (tenant_id = …) policy, which PostgreSQL applies to new rows")
	}
}

// A13 through a unique index that exists only on a partition (the parent
// cannot have one without the partition key): inserts into the parent
// route to the partition, so its unique index is a cross-tenant existence
// oracle. L09 skips partitions.
func TestPartitionUniqueIndex(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigBase, `
SET ROLE {{p}}_owner;
CREATE TABLE {{p}}.events (tenant_id uuid NOT NULL, id int NOT NULL, day date NOT NULL, ref text,
    PRIMARY KEY (tenant_id, id, day)) PARTITION BY RANGE (day);
CREATE TABLE {{p}}.events_2025 PARTITION OF {{p}}.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE UNIQUE INDEX events_2025_ref ON {{p}}.events_2025 (ref);
ALTER TABLE {{p}}.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.events FORCE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.events_2025 ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{p}}.events_2025 FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{p}}.events FOR ALL TO {{p}}_app
    USING (tenant_id = current_setting('app.tenant_id')::uuid);
GRANT SELECT, INSERT ON {{p}}.events TO {{p}}_app;
RESET ROLE;
INSERT INTO {{p}}.events VALUES ('`+tenantB+`', 1, '2025-06-01', 'ceo@bigcorp.example');
`)
	setA := "SELECT set_config('app.tenant_id', '" + tenantA + "', true)"
	_, hit := r.asApp(t, setA, "INSERT INTO {{p}}.events VALUES ('"+tenantA+"', 1, '2025-06-01', 'ceo@bigcorp.example') RETURNING 'ok'")
	_, miss := r.asApp(t, setA, "INSERT INTO {{p}}.events VALUES ('"+tenantA+"', 1, '2025-06-01', 'nobody@example') RETURNING 'ok'")
	t.Logf("A probes B's value: %v\nA probes an absent value: %v", hit, miss)
	if hit == nil || miss != nil {
		t.Fatalf("precondition: the partition's unique index should answer the probe")
	}
	fs := r.lint(t, lint.Options{AppRoles: []string{r.p + "_app"}})
	if !hasFinding(fs, "L09", "index "+r.p+".events_2025_ref", lint.Warn) {
		t.Errorf("no L09 on unique index %s.events_2025_ref of a partition: an existence oracle across tenants", r.p)
	}
}

// A01 as most applications meet it: the only login role created the
// tables, so it owns them and RLS is not forced. With the default app
// roles lint treats that login as an administrator: L02 warn, L06 info, no
// error, exit 0 under the default --fail-on error.
func TestOwnerLoginDefaults(t *testing.T) {
	t.Parallel()
	r := newRig(t, `
CREATE ROLE {{p}}_app LOGIN;
CREATE SCHEMA {{p}} AUTHORIZATION {{p}}_app;
`, `
SET ROLE {{p}}_app;
CREATE TABLE {{p}}.docs (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{p}}.docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{p}}.docs USING (tenant_id = current_setting('app.tenant_id')::uuid);
INSERT INTO {{p}}.docs VALUES ('`+tenantA+`', 1, 'A secret'), ('`+tenantB+`', 2, 'B secret');
RESET ROLE;
`)
	got, err := r.asApp(t, "SELECT set_config('app.tenant_id', '"+tenantA+"', true)", "SELECT string_agg(body, ',' ORDER BY body) FROM {{p}}.docs")
	t.Logf("the app's login with A's context: %q, %v", got, err)
	rep := run(t, r.conn, lint.Options{})
	t.Logf("default app roles include %s: %v", r.p+"_app", contains(rep.AppRoles, r.p+"_app"))
	var errs int
	for _, f := range rep.Findings {
		if strings.Contains(f.Object.Name, r.p) {
			t.Logf("lint: %s %s %s: %s", f.Severity, f.ID, f.Object, f.Message)
			if f.Severity == lint.Error {
				errs++
			}
		}
	}
	if errs == 0 {
		t.Errorf("no error-level finding (lint exits 0) while the app's only login reads every tenant's rows")
	}
}
