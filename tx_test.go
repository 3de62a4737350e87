package bulkhead_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestTxBusinessPool: in a minter, DB.Tx runs business code on its own
// pool (not the data API's, whose statements are cached). Tenant A's code,
// compromised, tries to reach a pool neighbour and a silo, and plants
// session state; none of it reaches them or the next user of the
// connection (one connection, so the next user gets the very same one).
// openOneConnection opens a minter on a database of its own (so that the
// test can run again with -count) whose pools hold one connection each: a
// tenant's transaction after another's reuses its connection.
func openOneConnection(t *testing.T) *bulkhead.DB {
	t.Helper()
	databaseURL := pgtest.NewDB(t).AdminURL
	sep := "?"
	if strings.Contains(databaseURL, "?") {
		sep = "&"
	}
	db, err := bulkhead.Open(context.Background(), bulkhead.Config{DatabaseURL: databaseURL + sep + "pool_max_conns=1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestTxBusinessPool(t *testing.T) {
	db := openOneConnection(t)
	ctx := context.Background()
	mk := func(slug string, tier tenant.Tier) (context.Context, string) {
		tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(slug), Tier: tier})
		if err != nil {
			t.Fatal(err)
		}
		tctx := tenant.NewContext(ctx, tenant.Principal{Subject: "u-" + slug, TenantID: tn.ID, Role: tenant.Admin})
		table, err := db.Table(tctx, "projects")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Tx(tctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` (name) VALUES ($1)`, "canary-"+slug)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return tctx, table
	}
	actx, _ := mk("txpool-a", tenant.Pool)
	cctx, _ := mk("txpool-c", tenant.Pool)
	_, silo := mk("txpool-b", tenant.Silo)
	c, _ := tenant.FromContext(cctx)

	var gatewayPID uint32
	gw, err := db.Postgres().App().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gatewayPID = gw.Conn().PgConn().PID()
	gw.Release()

	err = db.Tx(actx, func(tx pgx.Tx) error {
		var app, who string
		var pid uint32
		if err := tx.QueryRow(ctx, `SELECT current_setting('application_name'), pg_backend_pid(), current_user::text`).Scan(&app, &pid, &who); err != nil {
			return err
		}
		if app != "bulkhead" || pid == gatewayPID {
			t.Errorf("business code ran as application %q on backend %d (the gateway's is %d); want its own pool", app, pid, gatewayPID)
		}
		// Not as the gateway's role, which every tenant's data API
		// requests use: any role may ALTER ROLE CURRENT_USER PASSWORD or
		// SET defaults for itself.
		if who == db.AppRole() || !strings.HasPrefix(who, postgres.BusinessRolePrefix) {
			t.Errorf("business code runs as %q (the gateway is %q), want a %s… role of its own", who, db.AppRole(), postgres.BusinessRolePrefix)
		}
		var names []string
		rows, err := tx.Query(ctx, `SELECT name FROM app.projects WHERE tenant_id = $1 OR name LIKE 'canary-%'`, string(c.TenantID))
		if err != nil {
			return err
		}
		if names, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if len(names) != 1 || names[0] != "canary-txpool-a" {
			t.Errorf("A's code reading the pool by C's id sees %v; want only its own canary", names)
		}
		// The silo is another schema; every way in must fail or find nothing.
		var n int
		if _, err := tx.Exec(ctx, `SAVEPOINT s`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+silo).Scan(&n); err == nil && n != 0 {
			t.Errorf("A's code sees %d rows of the silo", n)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT s`); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO app.projects (tenant_id, name) VALUES ($1, 'planted')`, string(c.TenantID))
		if fault.KindOf(postgres.Translate(err)) != fault.Denied {
			t.Errorf("A's code writing a row for C: err = %v, want a row-security denial", err)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT s`); err != nil {
			return err
		}
		// Session state for the next user: A's context at session level,
		// and a prepared statement.
		_, err = tx.Exec(ctx, `SELECT set_config('bulkhead.context', current_setting('bulkhead.context'), false)`)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `PREPARE planted AS SELECT name FROM app.projects`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Tx(cctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name FROM app.projects`)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(names) != 1 || names[0] != "canary-txpool-c" {
			t.Errorf("C, on the connection A's code used, sees %v; want only its own canary", names)
		}
		if _, err := tx.Exec(ctx, `SAVEPOINT s`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `EXECUTE planted`); err == nil {
			t.Errorf("A's prepared statement survived into C's transaction")
		}
		_, err = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT s`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Outside any transaction, the business pool's connection has no
	// context left.
	bp, err := db.Postgres().Business(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left *string
	if err := bp.QueryRow(ctx, `SELECT current_setting('bulkhead.context', true)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != nil && *left != "" {
		t.Fatalf("the business pool's connection kept a context: %.20s…", *left)
	}
}

// TestBusinessHandleHasNoCatalog: a handle opened for business code holds
// no catalog caches; asking it for a minter's facts is ErrNotMinter, and
// forgetting a tenant is harmless. The minter's policies cache serves its
// copy until told to forget it (its clock stands still here).
func TestBusinessHandleHasNoCatalog(t *testing.T) {
	// A database of its own, so that the test can run again (-count).
	databaseURL := pgtest.NewDB(t).AdminURL
	ctx := context.Background()
	now := time.Now()
	minter, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer minter.Close()
	tn, _, err := minter.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "bizhandle", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	fn, err := minter.Postgres().CreateFunction(ctx, "bizhandle_"+string(tn.ID)[:8])
	if err != nil {
		t.Fatal(err)
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: pgURL(fn.LoginRole, fn.Password)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.ForgetTenant(tn.ID)
	db.ForgetPolicies(tn.ID)
	if _, err := db.Policies(ctx, tn); err != bulkhead.ErrNotMinter {
		t.Fatalf("Policies on a business handle: %v, want ErrNotMinter", err)
	}
	if _, err := db.ResolveTenant(ctx, tenant.Principal{TenantID: tn.ID}); err != bulkhead.ErrNotMinter {
		t.Fatalf("ResolveTenant on a business handle: %v, want ErrNotMinter", err)
	}
	// The minter's cache: policies load, and a change is seen once forgotten.
	tp, err := minter.Policies(ctx, tn)
	if err != nil || len(tp.Policies) != 1 || len(tp.Boundary) != 1 {
		t.Fatalf("minter's policies: %+v, %v; want the plan's template alone", tp, err)
	}
	if _, err := minter.Postgres().Admin().Exec(ctx, `INSERT INTO bulkhead_control.policies (tenant_id, name, document) VALUES ($1, 'broken', '{"not":"a policy"}')`, tn.ID); err != nil {
		t.Fatal(err)
	}
	if tp, _ := minter.Policies(ctx, tn); len(tp.Policies) != 1 {
		t.Fatalf("the cached copy was not served: %d documents", len(tp.Policies))
	}
	minter.ForgetPolicies(tn.ID)
	tp, err = minter.Policies(ctx, tn)
	if err != nil || len(tp.Policies) != 2 {
		t.Fatalf("after ForgetPolicies: %d documents (%v), want the template and the stored one", len(tp.Policies), err)
	}
	if tp.Policies[1].Statement[0].Sid != "StoredPolicyInvalid" {
		t.Fatalf("a stored document that does not parse stands as %+v, want the deny-all", tp.Policies[1])
	}
	// Another tenant on the same plan gets its own entry, not the first
	// tenant's documents.
	other, _, err := minter.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "bizhandle-other", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	if other.Plan != tn.Plan {
		t.Fatalf("plans %q and %q: the test wants the same plan", other.Plan, tn.Plan)
	}
	if op, err := minter.Policies(ctx, other); err != nil || len(op.Policies) != 1 {
		t.Fatalf("another tenant's policies: %d documents (%v), want its template alone", len(op.Policies), err)
	}
}

// TestTxLeavesNoNotifications: a notification business code made arrive on
// its connection (LISTEN, then NOTIFY, which any role may run) does not
// wait in the driver for the next tenant's transaction on that connection.
func TestTxLeavesNoNotifications(t *testing.T) {
	db := openOneConnection(t)
	ctx := context.Background()
	tctx := func(slug string) context.Context {
		tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(slug), Tier: tenant.Pool})
		if err != nil {
			t.Fatal(err)
		}
		return tenant.NewContext(ctx, tenant.Principal{Subject: "u-" + slug, TenantID: tn.ID, Role: tenant.Admin})
	}
	actx, bctx := tctx("notify-a"), tctx("notify-b")
	var pidA, pidB uint32
	if err := db.Tx(actx, func(tx pgx.Tx) error {
		pidA = tx.Conn().PgConn().PID()
		for _, q := range []string{`LISTEN tenant_chan`, `NOTIFY tenant_chan, 'a-secret'`} {
			if _, err := tx.Exec(actx, q); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(bctx, func(tx pgx.Tx) error {
		pidB = tx.Conn().PgConn().PID()
		wctx, cancel := context.WithTimeout(bctx, 300*time.Millisecond)
		defer cancel()
		if n, err := tx.Conn().WaitForNotification(wctx); err == nil {
			t.Errorf("B's transaction received A's notification on %q: %q", n.Channel, n.Payload)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if pidA != pidB {
		t.Fatalf("A and B ran on backends %d and %d; the test needs one connection", pidA, pidB)
	}
}

// TestOpenBoundsTenantCacheTTL: a minter whose tenant cache outlived a
// move's shortest settling could route a moved tenant to its old place
// after the move, so Open refuses it before it connects; the bound itself
// and shorter ones are accepted.
func TestOpenBoundsTenantCacheTTL(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{-time.Second, bulkhead.MaxTenantCacheTTL + time.Millisecond, time.Minute} {
		_, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: "postgres://nobody@127.0.0.1:1/none", TenantCacheTTL: ttl})
		if fault.CodeOf(err) != "invalid_config" || !strings.Contains(fault.MessageOf(err), "TenantCacheTTL") {
			t.Errorf("TenantCacheTTL %s: %v, want invalid_config", ttl, err)
		}
	}
	url := pgtest.NewDB(t).AdminURL
	for _, ttl := range []time.Duration{0, time.Millisecond, bulkhead.MaxTenantCacheTTL} {
		db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: url, TenantCacheTTL: ttl})
		if err != nil {
			t.Fatalf("TenantCacheTTL %s: %v", ttl, err)
		}
		db.Close()
	}
}

// TestTxStatementTimeout: each statement of a Tx is bounded by
// Config.StatementTimeout (30 s by default); one that runs longer fails
// with statement_timeout and its transaction writes nothing. A negative
// value leaves the login role's own setting, and values PostgreSQL would
// take as "none" (under a millisecond) or past the maximum are refused
// before Open connects.
func TestTxStatementTimeout(t *testing.T) {
	ctx := context.Background()
	for _, d := range []time.Duration{time.Microsecond, 999 * time.Microsecond, bulkhead.MaxStatementTimeout + time.Millisecond} {
		_, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: "postgres://nobody@127.0.0.1:1/none", StatementTimeout: d})
		if fault.CodeOf(err) != "invalid_config" || !strings.Contains(fault.MessageOf(err), "StatementTimeout") {
			t.Errorf("StatementTimeout %s: %v, want invalid_config", d, err)
		}
	}
	url := pgtest.NewDB(t).AdminURL
	open := func(d time.Duration) *bulkhead.DB {
		db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: url, StatementTimeout: d})
		if err != nil {
			t.Fatalf("StatementTimeout %s: %v", d, err)
		}
		t.Cleanup(db.Close)
		return db
	}
	db := open(0)
	tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "timed", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	tctx := tenant.NewContext(ctx, tenant.Principal{Subject: "u-timed", TenantID: tn.ID, Role: tenant.Admin})
	show := func(db *bulkhead.DB) (v string) {
		t.Helper()
		if err := db.Tx(tctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SHOW statement_timeout`).Scan(&v)
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := show(db); v != "30s" {
		t.Errorf("the default: statement_timeout %q in Tx, want 30s", v)
	}
	if v := show(open(-1)); v != "0" {
		t.Errorf("a negative StatementTimeout: statement_timeout %q in Tx, want the role's own (0)", v)
	}
	short := open(200 * time.Millisecond)
	if v := show(short); v != "200ms" {
		t.Errorf("StatementTimeout 200ms: statement_timeout %q in Tx", v)
	}
	table, err := db.Table(tctx, "projects")
	if err != nil {
		t.Fatal(err)
	}
	err = short.Tx(tctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (name) VALUES ('written before the slow statement')`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_sleep(5)`)
		return err
	})
	if fault.CodeOf(err) != "statement_timeout" {
		t.Fatalf("a 5 s statement under a 200ms timeout: %v, want statement_timeout", err)
	}
	var n int
	if err := db.Tx(tctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	}); err != nil || n != 0 {
		t.Fatalf("the timed-out transaction's insert: %d rows, %v; want none", n, err)
	}
	// The timeout is the transaction's: the next one on the same pool
	// runs with the default again.
	if v := show(db); v != "30s" {
		t.Errorf("after a timed-out transaction: statement_timeout %q, want 30s", v)
	}
	// A request's own timeout replaces the configured one; one under a
	// millisecond is a millisecond, never PostgreSQL's "none"; none at all
	// leaves the configured one.
	for d, want := range map[time.Duration]string{250 * time.Millisecond: "250ms", time.Microsecond: "1ms", 0: "30s", -time.Second: "30s"} {
		var v string
		if err := db.Tx(bulkhead.WithStatementTimeout(tctx, d), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SHOW statement_timeout`).Scan(&v)
		}); err != nil || v != want {
			t.Errorf("WithStatementTimeout(%s): statement_timeout %q, %v; want %s", d, v, err, want)
		}
	}
	// Parallel workers: the role's (PostgreSQL's default 2) unless the
	// request says; a negative count is none.
	for ctx, want := range map[context.Context]string{tctx: "2", bulkhead.WithParallelWorkers(tctx, 0): "0", bulkhead.WithParallelWorkers(tctx, 3): "3", bulkhead.WithParallelWorkers(tctx, -1): "0"} {
		if v := txSetting(t, db, ctx, "max_parallel_workers_per_gather"); v != want {
			t.Errorf("max_parallel_workers_per_gather %q in Tx, want %s", v, want)
		}
	}
	both := bulkhead.WithParallelWorkers(bulkhead.WithStatementTimeout(tctx, 700*time.Millisecond), 1)
	if w, v := txSetting(t, db, both, "max_parallel_workers_per_gather"), txSetting(t, db, both, "statement_timeout"); w != "1" || v != "700ms" {
		t.Errorf("both in one context: workers %q, statement_timeout %q", w, v)
	}
}

// txSetting is a setting's value inside a DB.Tx with ctx.
func txSetting(t *testing.T, db *bulkhead.DB, ctx context.Context, name string) (v string) {
	t.Helper()
	if err := db.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_setting($1)`, name).Scan(&v)
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
