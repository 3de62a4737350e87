package bulkhead_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestTxBusinessPool: in a minter, DB.Tx runs business code on its own
// pool (not the data API's, whose statements are cached). Tenant A's code,
// compromised, tries to reach a pool neighbour and a silo, and plants
// session state; none of it reaches them or the next user of the
// connection (one connection, so the next user gets the very same one).
func TestTxBusinessPool(t *testing.T) {
	ctx := context.Background()
	sep := "?"
	if strings.Contains(databaseURL, "?") {
		sep = "&"
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL + sep + "pool_max_conns=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
		var app string
		var pid uint32
		if err := tx.QueryRow(ctx, `SELECT current_setting('application_name'), pg_backend_pid()`).Scan(&app, &pid); err != nil {
			return err
		}
		if app != "bulkhead" || pid == gatewayPID {
			t.Errorf("business code ran as application %q on backend %d (the gateway's is %d); want its own pool", app, pid, gatewayPID)
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
