package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/postgres"
)

func TestWatchdog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	fn, err := e.db.CreateFunction(ctx, "wd_"+strings.TrimPrefix(e.pg.Name, "bulkhead_test_"))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing to find on a clean database.
	if got, err := e.db.Sweep(ctx, postgres.WatchdogOptions{}); err != nil || len(got) != 0 {
		t.Fatalf("clean sweep: %v %v", got, err)
	}
	conn, err := pgx.Connect(ctx, e.pg.URL(fn.LoginRole, fn.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// A compromised function plants settings for its role and locks a
	// tenant table: both only need its own role's privileges.
	if _, err := conn.Exec(ctx, `ALTER ROLE CURRENT_USER SET work_mem = '1GB'`); err != nil {
		t.Fatalf("planting a setting: %v", err)
	}
	if _, err := conn.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `LOCK TABLE app.projects IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatalf("LOCK TABLE as an app role: %v", err)
	}
	holder := conn.PgConn().PID()
	got, err := e.db.Sweep(ctx, postgres.WatchdogOptions{MaxIdleInTransaction: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, f := range got {
		if f.Role != fn.LoginRole {
			t.Errorf("finding about another role: %v", f)
		}
		kinds = append(kinds, f.Kind+":"+f.Action)
	}
	if strings.Join(kinds, ",") != "role_setting:reset,strong_lock:terminated" {
		t.Fatalf("findings %v, want a reset role setting and a terminated lock holder", got)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("the lock holder's connection survived")
	}
	// "terminated" means gone: the sweep waited for the backend to exit.
	var left int
	if err := e.db.Admin().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, holder).Scan(&left); err != nil || left != 0 {
		t.Fatalf("the terminated lock holder is still in pg_stat_activity (%d, %v)", left, err)
	}
	var settings []string
	if err := e.db.Admin().QueryRow(ctx, `SELECT coalesce(array_agg(c), '{}') FROM pg_db_role_setting s, unnest(s.setconfig) c
		WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)`, fn.LoginRole).Scan(&settings); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if strings.HasPrefix(s, "work_mem") {
			t.Fatalf("planted setting survived: %v", settings)
		}
	}
	// Idle in a transaction past the limit.
	conn2, err := pgx.Connect(ctx, e.pg.URL(fn.LoginRole, fn.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(context.Background())
	if _, err := conn2.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn2.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	got, err = e.db.Sweep(ctx, postgres.WatchdogOptions{MaxIdleInTransaction: time.Nanosecond})
	if err != nil || len(got) != 1 || got[0].Kind != "idle_in_transaction" || got[0].Action != "terminated" {
		t.Fatalf("idle sweep: %v %v", got, err)
	}
}
