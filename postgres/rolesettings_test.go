package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// TestOwnRoleSettings: app login roles get settings only a superuser may
// change. temp_file_limit bounds the temporary files one statement of
// business code may write (work_mem is any role's to lower, so a sort
// spills), which would otherwise fill the disk every tenant is on. The
// role cannot lift it; Setup gives it to roles that lack it and keeps a
// value a superuser chose; the watchdog puts it back after a reset.
func TestOwnRoleSettings(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	fn, err := db.CreateFunction(ctx, "rs_"+strings.TrimPrefix(pg.Name, "bulkhead_test_"))
	if err != nil {
		t.Fatal(err)
	}
	settings := func() []string {
		t.Helper()
		var got []string
		if err := db.Admin().QueryRow(ctx, `SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM pg_db_role_setting s, unnest(s.setconfig) c
			WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1) AND s.setdatabase = 0`, fn.LoginRole).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []string{"log_parameter_max_length=0", "log_parameter_max_length_on_error=0", "temp_file_limit=" + postgres.TempFileLimit}
	if got := settings(); !slices.Equal(got, want) {
		t.Fatalf("a new function role's settings: %q, want %q", got, want)
	}
	conn, err := pgx.Connect(ctx, pg.URL(fn.LoginRole, fn.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var limit string
	if err := conn.QueryRow(ctx, `SELECT current_setting('temp_file_limit')`).Scan(&limit); err != nil || limit != postgres.TempFileLimit {
		t.Fatalf("temp_file_limit in the function's session: %q, %v", limit, err)
	}
	var pgErr *pgconn.PgError
	for _, s := range []string{`SET temp_file_limit = -1`, `ALTER ROLE CURRENT_USER SET temp_file_limit = -1`, `ALTER ROLE CURRENT_USER RESET temp_file_limit`} {
		if _, err := conn.Exec(ctx, s); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the function: %v, want insufficient_privilege", s, err)
		}
	}

	// A role made before the setting existed (or by a set-up without a
	// superuser) gets it from the next Setup. Lint counts every app role
	// of the cluster: keep tests that demand a clean lint from seeing
	// this one without its setting.
	pgtest.LockClusterRoles(t, pg.AdminURL, true)
	if _, err := db.Admin().Exec(ctx, `ALTER ROLE `+pgx.Identifier{fn.LoginRole}.Sanitize()+` RESET temp_file_limit`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Setup(ctx, pg.AdminURL, nil); err != nil {
		t.Fatal(err)
	}
	if got := settings(); !slices.Equal(got, want) {
		t.Fatalf("after Setup, a role without temp_file_limit: %q, want %q", got, want)
	}

	// A superuser's own value stays, and holds: a sort the function makes
	// spill past it fails.
	if _, err := db.Admin().Exec(ctx, `ALTER ROLE `+pgx.Identifier{fn.LoginRole}.Sanitize()+` SET temp_file_limit = '1MB'`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Setup(ctx, pg.AdminURL, nil); err != nil {
		t.Fatal(err)
	}
	if got := settings(); !slices.Contains(got, "temp_file_limit=1MB") {
		t.Fatalf("after Setup, a role with its own temp_file_limit: %q, want 1MB kept", got)
	}
	spill, err := pgx.Connect(ctx, pg.URL(fn.LoginRole, fn.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer spill.Close(context.Background())
	_, err = spill.Exec(ctx, `SET work_mem = '64kB'; SELECT count(*) FROM (SELECT g::text FROM generate_series(1, 500000) g ORDER BY 1) s`)
	if !errors.As(err, &pgErr) || pgErr.Code != "53400" {
		t.Fatalf("a sort spilling past temp_file_limit: %v, want configuration_limit_exceeded (53400)", err)
	}

	// The watchdog's reset of planted settings puts bulkhead's back.
	if _, err := conn.Exec(ctx, `ALTER ROLE CURRENT_USER SET work_mem = '1GB'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Sweep(ctx, postgres.WatchdogOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := settings(); !slices.Equal(got, want) {
		t.Fatalf("after the watchdog's reset: %q, want %q", got, want)
	}
}

// TestFunctionConnectionLimit: a function's login role's connection limit
// bounds how many statements it runs at once; out of range is refused
// before anything is made.
func TestFunctionConnectionLimit(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	name := "cl_" + strings.TrimPrefix(pg.Name, "bulkhead_test_")
	limit := func(role string) int {
		n := -2
		if err := db.Admin().QueryRow(ctx, `SELECT coalesce((SELECT rolconnlimit FROM pg_roles WHERE rolname = $1), -2)`, role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, bad := range []int{-1, postgres.MaxFunctionConnections + 1} {
		if _, err := db.CreateFunctionWith(ctx, name, postgres.FunctionOptions{ConnectionLimit: bad}); fault.CodeOf(err) != "invalid_connection_limit" {
			t.Errorf("connection limit %d: %v, want invalid_connection_limit", bad, err)
		}
	}
	if n := limit(postgres.FunctionRolePrefix + name); n != -2 {
		t.Fatalf("a refused function made its role (limit %d)", n)
	}
	fn, err := db.CreateFunctionWith(ctx, name, postgres.FunctionOptions{ConnectionLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := limit(fn.LoginRole); n != 2 {
		t.Fatalf("connection limit %d, want 2", n)
	}
	// Two sessions, and a third is refused by PostgreSQL.
	for i := 0; i < 2; i++ {
		c, err := pgx.Connect(ctx, pg.URL(fn.LoginRole, fn.Password))
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		defer c.Close(context.Background())
	}
	var pgErr *pgconn.PgError
	if c, err := pgx.Connect(ctx, pg.URL(fn.LoginRole, fn.Password)); !errors.As(err, &pgErr) || pgErr.Code != "53300" {
		if err == nil {
			c.Close(context.Background())
		}
		t.Fatalf("a third session: %v, want too_many_connections (53300)", err)
	}
}

// TestDeleteFunction: revoking a compromised function removes its
// credential and its login role in one transaction and ends the sessions
// it holds; an unknown name changes nothing.
func TestDeleteFunction(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	suffix := strings.TrimPrefix(pg.Name, "bulkhead_test_")
	fn, err := db.CreateFunction(ctx, "del_"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	other, err := db.CreateFunction(ctx, "keep_"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	session, err := pgx.Connect(ctx, pg.URL(fn.LoginRole, fn.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())

	if _, err := db.DeleteFunction(ctx, "nobody_"+suffix); fault.CodeOf(err) != "function_not_found" {
		t.Fatalf("deleting an unknown function: %v, want function_not_found", err)
	}
	ended, err := db.DeleteFunction(ctx, fn.Name)
	if err != nil || ended != 1 {
		t.Fatalf("DeleteFunction = %d, %v; want its one session ended", ended, err)
	}
	if err := session.Ping(ctx); err == nil {
		t.Error("the deleted function's session still answers")
	}
	if _, err := pgx.Connect(ctx, pg.URL(fn.LoginRole, fn.Password)); err == nil {
		t.Error("the deleted function's role still logs in")
	}
	if _, err := db.FindFunctionByToken(ctx, fn.Token); !errors.Is(err, postgres.ErrBadFunctionToken) {
		t.Errorf("the deleted function's credential: %v, want ErrBadFunctionToken", err)
	}
	var roles int
	if err := db.Admin().QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, fn.LoginRole).Scan(&roles); err != nil || roles != 0 {
		t.Errorf("the deleted function's role: %d left (%v)", roles, err)
	}
	if _, err := db.DeleteFunction(ctx, fn.Name); fault.CodeOf(err) != "function_not_found" {
		t.Errorf("deleting it again: %v, want function_not_found", err)
	}
	// The other function is untouched.
	if f, err := db.FindFunctionByToken(ctx, other.Token); err != nil || f.Name != other.Name {
		t.Errorf("the other function's credential: %v, %v", f, err)
	}
	fs, err := db.ListFunctions(ctx)
	if err != nil || len(fs) != 1 || fs[0].Name != other.Name || fs[0].RoleMissing {
		t.Errorf("ListFunctions after the delete: %+v, %v; want only %s, with its role", fs, err, other.Name)
	}
}
