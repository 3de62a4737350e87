package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a database with two pool and two silo tenants, each with one
// canary project.
type env struct {
	db      *postgres.DB
	pg      *pgtest.DB
	key     ctxtoken.Key
	tenants map[string]*tenant.Tenant
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	db, pg := pgtest.Open(t)
	k, err := db.SigningKey(ctx, postgres.KeyContext)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, pg: pg, key: ctxtoken.Key{ID: k.ID, Secret: k.Secret}, tenants: map[string]*tenant.Tenant{}}
	for slug, tier := range map[string]tenant.Tier{"pa": tenant.Pool, "pb": tenant.Pool, "sa": tenant.Silo, "sb": tenant.Silo} {
		tn, created, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(slug), Tier: tier})
		if err != nil || !created {
			t.Fatalf("CreateTenant(%s) = %v, %v", slug, created, err)
		}
		e.tenants[slug] = tn
		e.exec(t, e.mintTB(t, slug), `INSERT INTO `+e.table(slug, "projects")+` (name) VALUES ($1)`, "canary-"+slug)
	}
	return e
}

// adminConn connects as the superuser, for the test's own inspection and
// tampering; it closes when the test ends.
func (e *env) adminConn(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), e.pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (e *env) table(slug, name string) string {
	s, _ := postgres.Schema(e.tenants[slug].Placement)
	return `"` + s + `"."` + name + `"`
}

func (e *env) claims(slug string) ctxtoken.Claims {
	now := time.Now().Unix()
	tn := e.tenants[slug]
	return ctxtoken.Claims{Tenant: string(tn.Slug), TenantID: string(tn.ID), Subject: "u-" + slug, Role: "member",
		Scope: []string{"select", "insert", "update", "delete"}, IssuedAt: now, ExpiresAt: now + 60,
		Audience: e.db.AppRole, RequestID: "r1"}
}

func (e *env) mintTB(t testing.TB, slug string) string {
	t.Helper()
	tok, err := ctxtoken.Mint(e.key, e.claims(slug))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) mint(t *testing.T, slug string, edit func(*ctxtoken.Claims)) string {
	t.Helper()
	c := e.claims(slug)
	if edit != nil {
		edit(&c)
	}
	tok, err := ctxtoken.Mint(e.key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signRaw signs slug's claims, edited as a JSON object, with the real
// context key, bypassing ctxtoken.Mint's own checks.
func (e *env) signRaw(t *testing.T, slug string, edit func(map[string]any)) string {
	t.Helper()
	b, err := json.Marshal(e.claims(slug))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return sign(e.key, b)
}

func (e *env) exec(t testing.TB, token, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	err := postgres.ScopedTx(ctx, e.db.App(), token, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	})
	if err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// names returns the project names visible under token in slug's placement.
func (e *env) names(t *testing.T, token, slug string) []string {
	t.Helper()
	var out []string
	err := postgres.ScopedTx(t.Context(), e.db.App(), token, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), `SELECT name FROM `+e.table(slug, "projects")+` ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatalf("names: %v", err)
	}
	return out
}

func TestContextVerifiedByDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for slug := range e.tenants {
		if got := e.names(t, e.mint(t, slug, nil), slug); len(got) != 1 || got[0] != "canary-"+slug {
			t.Fatalf("own tenant %s sees %v, want [canary-%s]", slug, got, slug)
		}
	}
	other := ctxtoken.Key{ID: e.key.ID, Secret: []byte(strings.Repeat("k", 32))}
	forgedKey, _ := ctxtoken.Mint(other, e.claims("pa"))
	unknownKid, _ := ctxtoken.Mint(ctxtoken.Key{ID: "nope", Secret: e.key.Secret}, e.claims("pa"))
	valid := e.mint(t, "pa", nil)
	parts := strings.Split(valid, ".")
	edited := e.claims("pb")
	editedTok, _ := ctxtoken.Mint(e.key, edited)
	swapped := parts[0] + "." + parts[1] + "." + strings.Split(editedTok, ".")[2] + "." + parts[3]
	for _, tt := range []struct{ name, token string }{
		{"wrong key", forgedKey},
		{"unknown kid", unknownKid},
		{"payload of another tenant under pa's mac", swapped},
		{"stripped mac", parts[0] + "." + parts[1] + "." + parts[2] + "."},
		{"whitespace in base64", parts[0] + "." + parts[1] + "." + parts[2][:4] + " " + parts[2][4:] + "." + parts[3]},
		{"padded mac", parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[3] + "="},
		{"mac in standard base64", parts[0] + "." + parts[1] + "." + parts[2] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[3][:42]) + "+"},
		{"fifth part", valid + ".x"},
		// pb's own context with its MAC's last character changed in the
		// two bits base64url leaves unused: the same bytes to a lenient
		// decoder, so it must be refused for its text.
		{"mac with its spare bits set", spareBits(e.mint(t, "pb", nil))},
		{"other version", "v2." + parts[1] + "." + parts[2] + "." + parts[3]},
		{"oversized", parts[0] + "." + parts[1] + "." + parts[2] + strings.Repeat("A", 4096) + "." + parts[3]},
		{"raw tenant uuid", string(e.tenants["pb"].ID)},
		{"raw json claims", `{"tenant_id":"` + string(e.tenants["pb"].ID) + `"}`},
		{"expired", e.mint(t, "pb", func(c *ctxtoken.Claims) { c.IssuedAt -= 120; c.ExpiresAt = time.Now().Unix() - 1 })},
		{"lifetime over max", e.mint(t, "pb", func(c *ctxtoken.Claims) { c.ExpiresAt = c.IssuedAt + 3600 })},
		{"issued in the future", e.mint(t, "pb", func(c *ctxtoken.Claims) { c.IssuedAt += 100; c.ExpiresAt += 100 })},
		{"other login role", e.mint(t, "pb", func(c *ctxtoken.Claims) { c.Audience = "bulkhead_fn_other" })},
		{"unknown tenant", e.mint(t, "pb", func(c *ctxtoken.Claims) { c.TenantID = "00000000-0000-4000-8000-000000000000" })},
		// Signed with the real key by a minter that forgets a claim or
		// spells it as a string: another minter than bulkhead's could.
		{"no exp", e.signRaw(t, "pb", func(m map[string]any) { delete(m, "exp") })},
		{"no iat", e.signRaw(t, "pb", func(m map[string]any) { delete(m, "iat") })},
		{"exp as a string", e.signRaw(t, "pb", func(m map[string]any) { m["exp"] = fmt.Sprint(m["exp"]) })},
		{"null exp", e.signRaw(t, "pb", func(m map[string]any) { m["exp"] = nil })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, slug := range []string{"pb", "sb"} {
				if got := e.names(t, tt.token, slug); len(got) != 0 {
					t.Fatalf("%s sees %v in %s, want nothing", tt.name, got, slug)
				}
				err := postgres.ScopedTx(t.Context(), e.db.App(), tt.token, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
					_, err := tx.Exec(t.Context(), `INSERT INTO `+e.table(slug, "projects")+` (tenant_id, name) VALUES ($1, 'planted')`, string(e.tenants[slug].ID))
					return err
				})
				if fault.KindOf(err) != fault.Denied {
					t.Fatalf("insert into %s with %s: err = %v, want a row-security denial", slug, tt.name, err)
				}
			}
		})
	}
}

func TestScopeLimitsCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	readOnly := e.mint(t, "pa", func(c *ctxtoken.Claims) { c.Scope = []string{"select"} })
	if got := e.names(t, readOnly, "pa"); len(got) != 1 {
		t.Fatalf("read-only context sees %v, want the canary", got)
	}
	var deleted int64
	err := postgres.ScopedTx(t.Context(), e.db.App(), readOnly, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(t.Context(), `DELETE FROM app.projects`)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil || deleted != 0 {
		t.Fatalf("delete under a select-only scope: %d rows, %v; want 0 rows", deleted, err)
	}
	if got := e.names(t, readOnly, "pa"); len(got) != 1 {
		t.Fatalf("after the refused delete: %v", got)
	}
}

func TestSuspendedTenantStopsAtNextStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.mint(t, "pa", nil)
	ctx := t.Context()
	err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n); err != nil || n != 1 {
			t.Errorf("before suspension: %d, %v", n, err)
		}
		if err := e.db.SetTenantStatus(ctx, e.tenants["pa"].ID, tenant.Suspended); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n); err != nil || n != 0 {
			t.Errorf("after suspension, same transaction: %d rows, %v; want 0", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestContextExpiresInsideTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	// exp is checked against statement_timestamp(), not now(): a
	// transaction begun before exp cannot keep using the context after it.
	tok := e.mint(t, "pa", func(c *ctxtoken.Claims) { c.ExpiresAt = time.Now().Unix() + 2 })
	err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n); err != nil || n != 1 {
			t.Errorf("before exp: %d, %v", n, err)
		}
		var exp int64
		if err := tx.QueryRow(ctx, `SELECT (pg_catalog.current_setting('bulkhead.context') IS NOT NULL)::int`).Scan(&exp); err != nil {
			return err
		}
		// Wait in the database until the context's exp has passed.
		if _, err := tx.Exec(ctx, `SELECT pg_sleep(greatest(0, $1 - extract(epoch from clock_timestamp())) + 0.2)`, float64(time.Now().Unix()+2)); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n); err != nil || n != 0 {
			t.Errorf("after exp, same transaction: %d rows, %v; want 0", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSiloRefusesOtherTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	// pa's valid context, aimed at sb's silo, with pa's own tenant_id: the
	// policy would let pa's row in; the silo's CHECK must not.
	for _, from := range []string{"pa", "sa"} {
		tok := e.mint(t, from, nil)
		err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+e.table("sb", "projects")+` (name) VALUES ('planted')`)
			return err
		})
		if k := fault.KindOf(err); k != fault.Invalid && k != fault.Denied {
			t.Fatalf("%s writing into sb's silo: err = %v, want refused", from, err)
		}
		if got := e.names(t, tok, "sb"); len(got) != 0 {
			t.Fatalf("%s sees %v in sb's silo", from, got)
		}
	}
	if got := e.names(t, e.mint(t, "sb", nil), "sb"); len(got) != 1 {
		t.Fatalf("sb sees %v, want only its canary", got)
	}
}

// TestAppRoleCannot plays a compromised function: the gateway login role
// with a valid context for pa, running whatever SQL it likes.
func TestAppRoleCannot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	tok := e.mint(t, "pa", nil)
	for _, tt := range []struct{ name, sql string }{
		{"read keys", `SELECT * FROM bulkhead_control.keys`},
		{"read the catalog", `SELECT * FROM bulkhead_control.tenants`},
		{"read credentials", `SELECT * FROM bulkhead_control.role_credentials`},
		{"call pgcrypto directly", `SELECT bulkhead_crypto.digest('x', 'sha256')`},
		{"disable RLS", `ALTER TABLE app.projects DISABLE ROW LEVEL SECURITY`},
		{"unforce RLS", `ALTER TABLE app.projects NO FORCE ROW LEVEL SECURITY`},
		{"drop the policy", `DROP POLICY tenant_select ON app.projects`},
		{"truncate", `TRUNCATE app.projects`},
		{"set role owner", `SET ROLE bulkhead_owner`},
		{"set role maint", `SET ROLE bulkhead_maint`},
		{"create temp table", `CREATE TEMP TABLE x (a int)`},
		{"create table in app", `CREATE TABLE app.x (a int)`},
		{"create table in public", `CREATE TABLE public.x (a int)`},
		{"create schema", `CREATE SCHEMA evil`},
		{"create function", `CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'select 1'`},
		{"terminate a backend", `SELECT pg_terminate_backend(pg_backend_pid() + 1)`},
		{"cancel a backend", `SELECT pg_cancel_backend(pg_backend_pid() + 1)`},
		{"notify", `SELECT pg_notify('x', 'y')`},
		{"seed the backend's random generator", `SELECT setseed(0.42)`},
		{"advisory lock", `SELECT pg_advisory_lock(1)`},
		{"large object", `SELECT lo_create(0)`},
		{"see other sessions", `SELECT query FROM pg_stat_activity`},
		{"see locks", `SELECT * FROM pg_locks`},
		// The functions behind those views: revoking only the views left
		// every session's locks (which silo is in use) and the per-table
		// counters (a silo's churn) readable.
		{"see locks through pg_lock_status", `SELECT * FROM pg_catalog.pg_lock_status()`},
		{"see other sessions through pg_stat_get_activity", `SELECT * FROM pg_catalog.pg_stat_get_activity(NULL)`},
		{"see who blocks whom", `SELECT pg_catalog.pg_blocking_pids(pg_catalog.pg_backend_pid())`},
		{"read a table's row counters", `SELECT pg_catalog.pg_stat_get_tuples_inserted('app.projects'::regclass)`},
		{"read the database's counters", `SELECT pg_catalog.pg_stat_get_db_xact_commit(0)`},
		{"read files", `SELECT pg_read_file('postgresql.conf')`},
		{"copy from program", `COPY app.projects FROM PROGRAM 'id'`},
		{"references oracle", `CREATE TABLE app.probe (r uuid REFERENCES app.projects)`},
		{"alter the verifier", `CREATE OR REPLACE FUNCTION bulkhead.tenant_id() RETURNS uuid LANGUAGE sql AS 'select null::uuid'`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, tt.sql)
				return err
			})
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: err = %v, want a PostgreSQL error", tt.sql, err)
			}
			if pe.Code != "42501" && pe.Code != "42P01" && pe.Code != "3F000" && pe.Code != "42883" {
				t.Fatalf("%s: SQLSTATE %s (%s), want a privilege error", tt.sql, pe.Code, pe.Message)
			}
		})
	}
}

// TestMonitoringKeepsStatistics: what Harden takes from PUBLIC, the
// statistics and lock views and the functions behind them, pg_monitor
// still has.
func TestMonitoringKeepsStatistics(t *testing.T) {
	t.Parallel()
	_, pg := pgtest.Open(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	role := pg.Name + "_monitor" // roles are cluster-wide: named after this test's database
	if _, err := conn.Exec(ctx, `CREATE ROLE `+role+` NOLOGIN IN ROLE pg_monitor`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pg.AdminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), `DROP ROLE IF EXISTS `+role)
	})
	for _, q := range []string{
		`SELECT count(*) FROM pg_catalog.pg_locks`,
		`SELECT count(*) FROM pg_catalog.pg_lock_status()`,
		`SELECT count(*) FROM pg_catalog.pg_stat_activity`,
		`SELECT count(*) FROM pg_catalog.pg_stat_user_tables`,
		`SELECT pg_catalog.pg_stat_get_tuples_inserted('pg_catalog.pg_class'::regclass)`,
	} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+role); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Errorf("as a member of pg_monitor, %s: %v", q, err)
		}
		tx.Rollback(ctx)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	var super, bypass, canLogin bool
	var owned, schemasWithCreate int
	var temp bool
	err := db.Admin().QueryRow(ctx, `SELECT r.rolsuper, r.rolbypassrls, r.rolcanlogin,
		(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid),
		(SELECT count(*) FROM pg_namespace n WHERE has_schema_privilege(r.oid, n.oid, 'CREATE')),
		has_database_privilege(r.oid, current_database(), 'TEMP')
		FROM pg_roles r WHERE r.rolname = $1`, db.AppRole).Scan(&super, &bypass, &canLogin, &owned, &schemasWithCreate, &temp)
	if err != nil {
		t.Fatal(err)
	}
	if super || bypass || !canLogin || owned != 0 || schemasWithCreate != 0 || temp {
		t.Fatalf("gateway: super=%v bypassrls=%v login=%v owns=%d create-schemas=%d temp=%v", super, bypass, canLogin, owned, schemasWithCreate, temp)
	}
	var privs []string
	rows, err := db.Admin().Query(ctx, `SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p
		WHERE has_table_privilege($1, 'app.projects', p)`, db.AppRole)
	if err != nil {
		t.Fatal(err)
	}
	privs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(privs, ",") != "SELECT,INSERT,UPDATE,DELETE" {
		t.Fatalf("gateway privileges on app.projects = %v", privs)
	}
	var forced, enabled bool
	if err := db.Admin().QueryRow(ctx, `SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'app.tasks'::regclass`).Scan(&enabled, &forced); err != nil || !forced || !enabled {
		t.Fatalf("app.tasks row security enabled=%v forced=%v %v", enabled, forced, err)
	}
}

// TestContextDoesNotOutliveStatement runs scoped work on a one-connection
// pool and then asks the same connection, with no context, what it can see.
func TestContextDoesNotOutliveStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool := e.onePool(t, cachedGateway)
	var n int64
	for _, check := range []func() error{nil, func() error { return nil }} {
		err := postgres.ScopedStatement(ctx, pool, e.mint(t, "pa", nil), `SELECT count(*) FROM app.projects`, nil,
			func(r pgx.Row) error { return r.Scan(&n) }, check)
		if err != nil || n != 1 {
			t.Fatalf("scoped count = %d, %v; want 1", n, err)
		}
		var setting *string
		var after int64
		if err := pool.QueryRow(ctx, `SELECT current_setting('bulkhead.context', true), (SELECT count(*) FROM app.projects)`).Scan(&setting, &after); err != nil {
			t.Fatal(err)
		}
		if (setting != nil && *setting != "") || after != 0 {
			t.Fatalf("after the scoped statement the connection still has context %v and sees %d rows", setting, after)
		}
	}
	// A statement that fails takes its context with it, and the connection
	// is usable.
	err := postgres.ScopedStatement(ctx, pool, e.mint(t, "pa", nil), `SELECT 1/0`, nil, func(r pgx.Row) error { return r.Scan(&n) }, nil)
	if err == nil {
		t.Fatal("1/0 succeeded")
	}
	var after int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&after); err != nil || after != 0 {
		t.Fatalf("after a failed scoped statement: %d rows, %v", after, err)
	}
}

// TestScopedStatementLimits: a plan's statement timeout and parallel
// workers hold for the scoped statement, in any combination, and neither
// outlives it on the connection.
func TestScopedStatementLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool := e.onePool(t, cachedGateway)
	const q = `SELECT current_setting('statement_timeout'), current_setting('max_parallel_workers_per_gather')`
	var timeout0, parallel0 string
	if err := pool.QueryRow(ctx, q).Scan(&timeout0, &parallel0); err != nil {
		t.Fatal(err)
	}
	if parallel0 == "0" || parallel0 == "3" {
		t.Fatalf("the session's max_parallel_workers_per_gather is %s; the test needs another", parallel0)
	}
	for _, c := range []struct {
		name                   string
		opts                   []postgres.StatementOption
		wantTimeout, wantPlans string
	}{
		{"none", nil, timeout0, parallel0},
		{"timeout", []postgres.StatementOption{postgres.StatementTimeout(1500 * time.Millisecond)}, "1500ms", parallel0},
		{"no workers", []postgres.StatementOption{postgres.ParallelWorkers(0)}, timeout0, "0"},
		{"negative workers", []postgres.StatementOption{postgres.ParallelWorkers(-3)}, timeout0, "0"},
		{"both", []postgres.StatementOption{postgres.StatementTimeout(2 * time.Second), postgres.ParallelWorkers(3)}, "2s", "3"},
	} {
		for _, check := range []func() error{nil, func() error { return nil }} {
			var gotTimeout, gotPlans string
			err := postgres.ScopedStatement(ctx, pool, e.mint(t, "pa", nil), q, nil,
				func(r pgx.Row) error { return r.Scan(&gotTimeout, &gotPlans) }, check, c.opts...)
			if err != nil || gotTimeout != c.wantTimeout || gotPlans != c.wantPlans {
				t.Fatalf("%s (check %v): statement_timeout %q, max_parallel_workers_per_gather %q, %v; want %q and %q",
					c.name, check != nil, gotTimeout, gotPlans, err, c.wantTimeout, c.wantPlans)
			}
			var afterTimeout, afterPlans string
			if err := pool.QueryRow(ctx, q).Scan(&afterTimeout, &afterPlans); err != nil || afterTimeout != timeout0 || afterPlans != parallel0 {
				t.Fatalf("%s: after the statement the connection has statement_timeout %q, max_parallel_workers_per_gather %q, %v",
					c.name, afterTimeout, afterPlans, err)
			}
		}
	}
}

// TestBusinessCodeCannotReplaceCachedStatements: the gateway's connections
// cache prepared statements. Business code never runs on them (it gets its
// own pool), but if it did, through ScopedTx, a statement it swaps for its
// own SQL under the same name must not reach the next user of the
// connection.
func TestBusinessCodeCannotReplaceCachedStatements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool := e.onePool(t, cachedGateway)
	const q = `SELECT count(*) FROM app.projects`
	count := func(slug string) (int64, error) {
		var n int64
		err := postgres.ScopedStatement(ctx, pool, e.mint(t, slug, nil), q, nil, func(r pgx.Row) error { return r.Scan(&n) }, nil)
		return n, err
	}
	if n, err := count("pa"); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want 1", n, err)
	}
	// The compromised function finds the gateway's statement and replaces it.
	var name string
	err := postgres.ScopedTx(ctx, pool, e.mint(t, "pb", nil), postgres.ScopeOptions{Untrusted: true}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT name FROM pg_catalog.pg_prepared_statements WHERE statement = $1`, q).Scan(&name); err != nil {
			return fmt.Errorf("the gateway's statement is not prepared on the connection: %w", err)
		}
		if _, err := tx.Exec(ctx, `DEALLOCATE `+pgx.Identifier{name}.Sanitize()+`; PREPARE `+pgx.Identifier{name}.Sanitize()+` AS SELECT 666::bigint`); err != nil {
			return err
		}
		var got int64
		if err := tx.QueryRow(ctx, `EXECUTE `+pgx.Identifier{name}.Sanitize()).Scan(&got); err != nil || got != 666 {
			return fmt.Errorf("the swap did not take: %d, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if n, err := count("pa"); err != nil || n != 1 {
			t.Fatalf("after business code swapped %s: count = %d, %v; want 1", name, n, err)
		}
	}
}

// cachedGateway is the gateway's pool config with prepared statements
// opted in.
func cachedGateway(u string) (*pgxpool.Config, error) {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return postgres.GatewayPoolConfig(u + sep + "default_query_exec_mode=cache_statement")
}

// onePool is a one-connection pool on the gateway role, made by config
// (postgres.AppPoolConfig or postgres.GatewayPoolConfig), so that
// successive calls share one session.
func (e *env) onePool(t *testing.T, config func(string) (*pgxpool.Config, error)) *pgxpool.Pool {
	t.Helper()
	cfg, err := config(e.pg.URL(e.db.AppRole, gatewayPassword(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func gatewayPassword(t *testing.T, e *env) string {
	t.Helper()
	var pw string
	if err := e.db.Admin().QueryRow(t.Context(), `SELECT password FROM bulkhead_control.role_credentials WHERE role = $1`, e.db.AppRole).Scan(&pw); err != nil {
		t.Fatal(err)
	}
	return pw
}

// TestEachDatabaseHasItsOwnGateway migrates a second database in the same
// cluster: it gets a gateway role of its own, and the first database's
// gateway keeps its password.
func TestEachDatabaseHasItsOwnGateway(t *testing.T) {
	t.Parallel()
	first, pg := pgtest.Open(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := pg.Name + "_second"
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	u, err := url.Parse(pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	if _, err := postgres.Setup(ctx, u.String(), nil); err != nil {
		t.Fatal(err)
	}
	second, err := postgres.Open(ctx, postgres.Config{AdminURL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.AppRole == first.AppRole || !strings.HasPrefix(second.AppRole, postgres.GatewayRolePrefix) {
		t.Fatalf("gateway roles %q and %q", first.AppRole, second.AppRole)
	}
	again, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL})
	if err != nil {
		t.Fatalf("the first database after the second was migrated: %v", err)
	}
	again.Close()
}

// TestContextFormCheckedFirst: the verifier checks the strict token form
// before it looks anything up or decodes anything, and says so in its log
// line ("malformed"); a well-formed token with a key nobody has is
// reported as such, so the test tells the two apart.
func TestContextFormCheckedFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(e.pg.URL(e.db.AppRole, gatewayPassword(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	reason := func(tok string) string {
		t.Helper()
		notices = nil
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var isNull bool
		if _, err := tx.Exec(ctx, `SET LOCAL client_min_messages = log`); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(ctx, `SELECT set_config('bulkhead.context', $1, true) IS NULL OR bulkhead.context() IS NULL`, tok).Scan(&isNull); err != nil {
			t.Fatalf("%q: %v", tok, err)
		}
		if !isNull {
			t.Fatalf("%q verified", tok)
		}
		for _, n := range notices {
			if strings.HasPrefix(n, "bulkhead: ") {
				return n
			}
		}
		t.Fatalf("%q: no log line from the verifier (notices %q)", tok, notices)
		return ""
	}
	parts := strings.Split(e.mint(t, "pa", nil), ".")
	join := func(p ...string) string { return strings.Join(p, ".") }
	for _, tt := range []struct{ name, token string }{
		{"kid outside the alphabet", join(parts[0], "ab!cd", parts[2], parts[3])},
		{"kid over 32 characters", join(parts[0], strings.Repeat("k", 33), parts[2], parts[3])},
		{"payload outside the alphabet", join(parts[0], parts[1], parts[2][:8]+"+"+parts[2][9:], parts[3])},
		{"padded mac", join(parts[0], parts[1], parts[2], parts[3]+"=")},
		{"short mac", join(parts[0], parts[1], parts[2], parts[3][:42])},
		{"long mac", join(parts[0], parts[1], parts[2], parts[3]+"A")},
		{"empty kid", join(parts[0], "", parts[2], parts[3])},
		{"empty mac", join(parts[0], parts[1], parts[2], "")},
		{"kid with a dot", join(parts[0], "a.b", parts[2], parts[3])},
		{"empty payload", join(parts[0], parts[1], "", parts[3])},
		{"fifth part", join(parts[0], parts[1], parts[2], parts[3], "x")},
		{"other version", join("v2", parts[1], parts[2], parts[3])},
		{"newline at the end", join(parts[0], parts[1], parts[2], parts[3]) + "\n"},
	} {
		if got := reason(tt.token); !strings.Contains(got, "(malformed)") {
			t.Errorf("%s: %q, want it refused as malformed", tt.name, got)
		}
	}
	if got := reason(join(parts[0], "nosuchkey", parts[2], parts[3])); !strings.Contains(got, "(unknown key)") {
		t.Errorf("a well-formed token with an unknown key: %q, want unknown key", got)
	}
	if got := reason(e.signRaw(t, "pa", func(m map[string]any) { delete(m, "exp") })); !strings.Contains(got, "(exp or iat missing or not a number)") {
		t.Errorf("signed claims without exp: %q, want exp or iat missing", got)
	}
}

// spareBits returns tok with the lowest of the two unused bits of its
// MAC's last base64url character set.
func spareBits(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[i|1])
}

// TestSiloRoutingAndTampering plays compromised business code of a pool
// tenant (pa) and of a silo tenant (sa), with valid contexts, on the
// gateway's role and on the business role, against silo tenant sb. Routing
// tricks reach sb's tables (every app role has USAGE on every silo schema)
// but read and change nothing there; and no app role can change sb's silo
// (objects, constraints, policies, triggers, rules, indexes, defaults) or
// plant anything in a schema that resolves names, including pg_temp.
func TestSiloRoutingAndTampering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	business, err := e.db.Business(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb := e.tenants["sb"]
	s := `"` + sb.Placement + `"`
	for _, role := range []struct {
		name string
		pool *pgxpool.Pool
	}{{"gateway", e.db.App()}, {"business", business}} {
		for _, from := range []string{"pa", "sa"} {
			user := role.pool.Config().ConnConfig.User
			tok := e.mint(t, from, func(c *ctxtoken.Claims) { c.Audience = user })
			run := func(sqls ...string) (n int64, err error) {
				err = postgres.ScopedTx(ctx, role.pool, tok, postgres.ScopeOptions{Untrusted: true}, func(tx pgx.Tx) error {
					for _, q := range sqls {
						tag, err := tx.Exec(ctx, q)
						if err != nil {
							return err
						}
						n = tag.RowsAffected()
					}
					return nil
				})
				return n, err
			}
			t.Run(role.name+"/"+from+"/reach", func(t *testing.T) {
				for _, tt := range []struct {
					name string
					sqls []string
				}{
					{"search_path to sb's silo, unqualified read", []string{`SET LOCAL search_path = ` + s + `, pg_temp`, `SELECT * FROM projects`}},
					{"set_config of search_path, pg_temp first", []string{`SELECT pg_catalog.set_config('search_path', 'pg_temp, ` + sb.Placement + `', true)`, `SELECT * FROM projects`}},
					{"schema-qualified read", []string{`SELECT * FROM ` + s + `.projects`}},
					{"read through a join of both silos", []string{`SELECT b.* FROM ` + s + `.projects b JOIN ` + e.table(from, "projects") + ` a ON true`}},
					{"update", []string{`UPDATE ` + s + `.projects SET name = 'taken'`}},
					{"delete", []string{`DELETE FROM ` + s + `.tasks`, `DELETE FROM ` + s + `.projects`}},
					{"prepared against sb's silo", []string{`PREPARE p AS SELECT * FROM ` + s + `.projects`, `EXECUTE p`}},
				} {
					n, err := run(tt.sqls...)
					if err != nil || n != 0 {
						t.Errorf("%s: %d rows, %v; want none and no error", tt.name, n, err)
					}
				}
				for _, tt := range []struct {
					name string
					sqls []string
				}{
					{"unqualified insert on sb's search_path", []string{`SET LOCAL search_path = ` + s, `INSERT INTO projects (name) VALUES ('planted')`}},
					{"insert with sb's tenant_id", []string{`INSERT INTO ` + s + `.projects (tenant_id, name) VALUES ('` + string(sb.ID) + `', 'planted')`}},
					{"insert with its own tenant_id", []string{`INSERT INTO ` + s + `.projects (name) VALUES ('planted')`}},
				} {
					if _, err := run(tt.sqls...); err == nil {
						t.Errorf("%s: succeeded", tt.name)
					}
				}
			})
			t.Run(role.name+"/"+from+"/tamper", func(t *testing.T) {
				for _, q := range []string{
					`CREATE TABLE ` + s + `.evil (a int)`,
					`CREATE VIEW ` + s + `.evil AS SELECT 1`,
					`CREATE FUNCTION ` + s + `.now() RETURNS timestamptz LANGUAGE sql AS 'select null::timestamptz'`,
					`CREATE FUNCTION pg_temp.claimed_tenant_id() RETURNS uuid LANGUAGE sql AS 'select null::uuid'`,
					`CREATE OPERATOR ` + s + `.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = pg_catalog.uuid_ne)`,
					`CREATE TRIGGER evil BEFORE INSERT ON ` + s + `.projects FOR EACH ROW EXECUTE FUNCTION bulkhead_audit.record_change()`,
					`CREATE RULE evil AS ON INSERT TO ` + s + `.projects DO INSTEAD NOTHING`,
					`CREATE INDEX evil ON ` + s + `.projects ((pg_catalog.length(name)))`,
					`CREATE POLICY evil ON ` + s + `.projects USING (true)`,
					`DROP POLICY tenant_select ON ` + s + `.projects`,
					`ALTER TABLE ` + s + `.projects NO FORCE ROW LEVEL SECURITY`,
					`ALTER TABLE ` + s + `.projects DROP CONSTRAINT projects_tenant_id_check`,
					`ALTER TABLE ` + s + `.projects ALTER COLUMN tenant_id SET DEFAULT '` + string(sb.ID) + `'`,
					`ALTER TABLE ` + s + `.projects ADD COLUMN evil int`,
					`ALTER TABLE ` + s + `.projects DISABLE TRIGGER audit_insert`,
					`ALTER TABLE ` + s + `.projects RENAME TO evil`,
					`ALTER SCHEMA ` + s + ` RENAME TO evil`,
					`DROP SCHEMA ` + s + ` CASCADE`,
					`TRUNCATE ` + s + `.projects CASCADE`,
					`COMMENT ON TABLE ` + s + `.projects IS 'evil'`,
					`CREATE STATISTICS evil ON name, description FROM ` + s + `.projects`,
				} {
					_, err := run(q)
					var pe *pgconn.PgError
					if !errors.As(err, &pe) || (pe.Code != "42501" && pe.Code != "42P01" && pe.Code != "3F000" && pe.Code != "42883") {
						t.Errorf("%s: %v, want a privilege error", q, err)
					}
				}
			})
		}
	}
	// sb still has exactly its canary, and its tables their definitions.
	if got := e.names(t, e.mint(t, "sb", nil), "sb"); len(got) != 1 || got[0] != "canary-sb" {
		t.Fatalf("sb sees %v, want its canary", got)
	}
	var check bool
	if err := e.adminConn(t).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ($1 || '.projects')::regclass
		AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%' || $2 || '%')`, s, string(sb.ID)).Scan(&check); err != nil || !check {
		t.Fatalf("sb's silo lost its CHECK: %v %v", check, err)
	}
}

// TestPingAppNamesTheGateway: Open no longer connects the data API's
// pool, so a gateway role that cannot log in shows at PingApp, which a
// server calls at its start: an error that names the role, never a
// served request.
func TestPingAppNamesTheGateway(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, pg := pgtest.Open(t)
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL, AppURL: pg.URL("bulkhead_gw_nosuchrole", "wrong")})
	if err != nil {
		t.Fatalf("Open with a gateway that cannot log in: %v; want it to connect only the control plane", err)
	}
	defer db.Close()
	if err := db.PingApp(ctx); err == nil || !strings.Contains(err.Error(), "connect as bulkhead_gw_nosuchrole") {
		t.Errorf("PingApp = %v, want an error naming the role", err)
	}
}

// TestPingBusyPool: Ping (GET /readyz) does not queue behind requests for
// a pool whose every connection is in use: a busy server is ready. With
// a connection free, it pings; with the gateway unable to log in, it
// says so.
func TestPingBusyPool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, pg := pgtest.Open(t)
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL, AppMaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	held, err := db.App().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The only connection is in use: a ping that waited for it would run
	// into this deadline (canceled, not a slow machine: nothing releases
	// the connection before Ping returns).
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = db.Ping(short)
	cancel()
	held.Release()
	if err != nil {
		t.Fatalf("Ping with the app pool's one connection in use: %v, want nil (busy is ready)", err)
	}

	bad, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL, AppURL: pg.URL("bulkhead_gw_nosuchrole", "wrong")})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx); err == nil || !strings.Contains(err.Error(), "connect as bulkhead_gw_nosuchrole") {
		t.Errorf("Ping with a gateway that cannot log in = %v, want an error naming the role", err)
	}
}
