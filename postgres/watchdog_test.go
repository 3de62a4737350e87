package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
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
	// And one for this database only, which RESET ALL alone leaves.
	if _, err := conn.Exec(ctx, `ALTER ROLE CURRENT_USER IN DATABASE `+e.pg.Name+` SET statement_timeout = 0`); err != nil {
		t.Fatalf("planting a setting for this database: %v", err)
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
	if strings.Join(kinds, ",") != "role_setting:reset,role_setting:reset,strong_lock:terminated" {
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
		if strings.HasPrefix(s, "work_mem") || strings.HasPrefix(s, "statement_timeout") {
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

// TestWatchdogTerminate checks what a sweep says it did to a backend: one
// that ended on its own before the signal is "gone", not a failure to
// terminate, and a live one is "terminated" once it has exited.
func TestWatchdogTerminate(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	fn, err := db.CreateFunction(ctx, "wdt_"+strings.TrimPrefix(pg.Name, "bulkhead_test_"))
	if err != nil {
		t.Fatal(err)
	}
	backend := func() (*pgx.Conn, int32) {
		c, err := pgx.Connect(ctx, pg.URL(fn.LoginRole, fn.Password))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c, int32(c.PgConn().PID())
	}
	alive := func(pid int32) bool {
		var n int
		if err := db.Admin().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}

	live, pid := backend()
	if got := postgres.Terminate(db, ctx, pid); got != "terminated" {
		t.Fatalf("a live backend: %q, want terminated", got)
	}
	if alive(pid) || live.Ping(ctx) == nil {
		t.Fatal("the terminated backend is still there")
	}

	ended, pid := backend()
	ended.Close(ctx)
	for i := 0; alive(pid); i++ {
		if i == 600 {
			t.Fatal("a closed connection's backend did not exit")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := postgres.Terminate(db, ctx, pid); got != "gone" {
		t.Fatalf("a backend that had already ended: %q, want gone", got)
	}
}

// TestWatchdogRestoresPasswords: any role may change its own password, so
// business code running as a role whose password bulkhead keeps (the
// gateway's, the business role's) could lock every server out of it. A
// sweep sees the SCRAM verifier no longer match the stored password and
// sets it back.
func TestWatchdogRestoresPasswords(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	role := "bulkhead_tx_wd" + strings.ReplaceAll(strings.TrimPrefix(pg.Name, "bulkhead_test_"), "-", "")
	const stored = "stored-password-0123456789abcdef"
	adm := db.Admin()
	if _, err := adm.Exec(ctx, `CREATE ROLE `+role+` LOGIN IN ROLE bulkhead_app PASSWORD '`+stored+`'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Exec(context.Background(), `DROP ROLE IF EXISTS `+role) })
	if _, err := adm.Exec(ctx, `INSERT INTO bulkhead_control.role_credentials (role, password) VALUES ($1, $2)`, role, stored); err != nil {
		t.Fatal(err)
	}
	passwordFindings := func() []postgres.Finding {
		got, err := db.Sweep(ctx, postgres.WatchdogOptions{MaxIdleInTransaction: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var out []postgres.Finding
		for _, f := range got {
			if f.Kind == "role_password" {
				out = append(out, f)
			}
		}
		return out
	}
	if got := passwordFindings(); len(got) != 0 {
		t.Fatalf("passwords as stored: %v", got)
	}
	conn, err := pgx.Connect(ctx, pg.URL(role, stored))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ALTER ROLE CURRENT_USER PASSWORD 'chosen-by-business-code'`); err != nil {
		t.Fatalf("a role changing its own password: %v", err)
	}
	conn.Close(ctx)
	if c, err := pgx.Connect(ctx, pg.URL(role, stored)); err == nil {
		c.Close(ctx)
		t.Fatal("the stored password still works after the change; the test proves nothing")
	}
	got := passwordFindings()
	if len(got) != 1 || got[0].Role != role || got[0].Action != "reset" {
		t.Fatalf("findings %v, want %s's password reset", got, role)
	}
	c, err := pgx.Connect(ctx, pg.URL(role, stored))
	if err != nil {
		t.Fatalf("the stored password after the sweep: %v", err)
	}
	c.Close(ctx)
	if got := passwordFindings(); len(got) != 0 {
		t.Fatalf("after the reset: %v", got)
	}
}

// TestWatchdogLongStatement: business code may set its own
// statement_timeout to 0 and run a statement for hours, holding a CPU and
// its locks from every tenant. A sweep cancels an app backend's statement
// past MaxStatement, and ends the backend past twice that; it leaves
// statements under the limit, and other roles' statements, alone.
func TestWatchdogLongStatement(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	fn, err := db.CreateFunction(ctx, "wdl_"+strings.TrimPrefix(pg.Name, "bulkhead_test_"))
	if err != nil {
		t.Fatal(err)
	}
	// sleeper starts a statement of 60 s on a new connection, as role
	// url's, and waits until it has run for at least min.
	type sleeper struct {
		conn *pgx.Conn
		pid  int32
		done chan error
	}
	sleep := func(url string, min time.Duration) (*sleeper, time.Duration) {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		s := &sleeper{conn: c, pid: int32(c.PgConn().PID()), done: make(chan error, 1)}
		go func() {
			_, err := c.Exec(context.Background(), `SET statement_timeout = 0; SELECT pg_sleep(60)`)
			s.done <- err
		}()
		for i := 0; ; i++ {
			var ran float64
			err := db.Admin().QueryRow(ctx, `SELECT coalesce(extract(epoch FROM now() - query_start), 0)::float8
				FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, s.pid).Scan(&ran)
			if err == nil && time.Duration(ran*float64(time.Second)) >= min {
				return s, time.Duration(ran * float64(time.Second))
			}
			if i == 1200 {
				t.Fatalf("the statement of backend %d did not start (%v)", s.pid, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	app := pg.URL(fn.LoginRole, fn.Password)
	owner, _ := sleep(pg.AdminURL, 0) // not an app role: never touched
	canceled, ran := sleep(app, 2*time.Second)
	// Under the limit: nothing to find.
	if got, err := db.Sweep(ctx, postgres.WatchdogOptions{MaxStatement: time.Hour}); err != nil || len(got) != 0 {
		t.Fatalf("sweep under the limit: %v %v", got, err)
	}
	// Past the limit (it has run ran, at most 2·limit − 200 ms by the
	// time the sweep reads it, unless the sweep waits over 1.8 s).
	got, err := db.Sweep(ctx, postgres.WatchdogOptions{MaxStatement: ran - 100*time.Millisecond})
	if err != nil || len(got) != 1 || got[0].Kind != "long_statement" || got[0].PID != canceled.pid || got[0].Role != fn.LoginRole || got[0].Action != "canceled" {
		t.Fatalf("sweep past the limit: %v %v, want backend %d's statement canceled", got, err, canceled.pid)
	}
	var pgErr *pgconn.PgError
	if err := <-canceled.done; !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("the long statement ended with %v, want query_canceled (57014)", err)
	}
	// A cancel ends the statement, not the session.
	if err := canceled.conn.Ping(ctx); err != nil {
		t.Fatalf("the canceled statement's session: %v", err)
	}
	// Past twice the limit, the backend is ended.
	ended, ran := sleep(app, time.Second)
	got, err = db.Sweep(ctx, postgres.WatchdogOptions{MaxStatement: ran/2 - 10*time.Millisecond})
	if err != nil || len(got) != 1 || got[0].Kind != "long_statement" || got[0].PID != ended.pid || got[0].Action != "terminated" {
		t.Fatalf("sweep past twice the limit: %v %v, want backend %d terminated", got, err, ended.pid)
	}
	if err := <-ended.done; err == nil {
		t.Fatal("the ended backend's statement finished")
	}
	if err := ended.conn.Ping(ctx); err == nil {
		t.Fatal("the ended backend's session survived")
	}
	// The owner's statement ran on through both sweeps.
	select {
	case err := <-owner.done:
		t.Fatalf("the owner's statement ended: %v", err)
	default:
	}
	if _, err := db.Admin().Exec(ctx, `SELECT pg_cancel_backend($1)`, owner.pid); err != nil {
		t.Fatal(err)
	}
	<-owner.done
}
