package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestStatus: a set-up database is current; silos put back on older
// versions are listed as behind with their versions, offboarded ones are
// not; a migration this build does not know is reported; and reading the
// status changes nothing, not even on a database bulkhead never set up.
func TestStatus(t *testing.T) {
	t.Parallel()
	db, pg := pgtest.Open(t)
	ctx := t.Context()
	st, err := postgres.Status(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	if !st.SetUp || !st.Current() || len(st.Applied) == 0 || len(st.Pending) != 0 || len(st.Unknown) != 0 || len(st.Silos) != 0 {
		t.Fatalf("a freshly set-up database: %+v", st)
	}
	// The version `bulkhead version` reports is the newest a set-up
	// database has, SQL or Go migration alike.
	if got, want := postgres.SchemaVersion(), slices.Max(st.Applied); got != want {
		t.Errorf("SchemaVersion() = %d, the newest migration applied is %d", got, want)
	}
	var silos []*tenant.Tenant
	for i := range 4 {
		s, _, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(fmt.Sprintf("silo-%d", i)), Tier: tenant.Silo})
		if err != nil {
			t.Fatal(err)
		}
		silos = append(silos, s)
	}
	if _, _, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: "pooled", Tier: tenant.Pool}); err != nil {
		t.Fatal(err)
	}
	conn, exec := adminSession(t, pg.AdminURL)
	// silo-1 and silo-2 behind; silo-3 behind but offboarded.
	exec(`UPDATE bulkhead_control.tenants SET schema_version = 1 WHERE id = $1`, string(silos[1].ID))
	exec(`UPDATE bulkhead_control.tenants SET schema_version = 2 WHERE id = $1`, string(silos[2].ID))
	exec(`UPDATE bulkhead_control.tenants SET schema_version = 1, status = 'offboarded' WHERE id = $1`, string(silos[3].ID))
	snapshot := func() string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, `SELECT (SELECT string_agg(slug || ':' || schema_version || ':' || status, ',' ORDER BY slug) FROM bulkhead_control.tenants)
			|| '|' || (SELECT count(*) FROM bulkhead_control.schema_migrations)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	st, err = postgres.Status(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	want := []postgres.SiloVersion{{Slug: "silo-1", Version: 1}, {Slug: "silo-2", Version: 2}}
	if st.Current() || !slices.Equal(st.Behind, want) || st.Silos[postgres.TenantSchemaVersion] != 1 || st.Silos[1] != 1 || st.Silos[2] != 1 || len(st.Silos) != 3 {
		t.Fatalf("with two silos behind: %+v", st)
	}
	if after := snapshot(); after != before {
		t.Fatalf("Status changed the catalog:\n%s\n%s", before, after)
	}
	// MigrateSilos agrees: it brings exactly those two forward.
	rep, err := db.MigrateSilos(ctx, postgres.MigrateOptions{})
	if err != nil || rep.Total != 2 || rep.Migrated != 2 {
		t.Fatalf("MigrateSilos after Status: %+v %v", rep, err)
	}
	if st, err = postgres.Status(ctx, pg.AdminURL); err != nil || !st.Current() {
		t.Fatalf("after MigrateSilos: %+v %v", st, err)
	}

	// A migration from a newer build.
	exec(`INSERT INTO bulkhead_control.schema_migrations (version_id, is_applied) VALUES (999999, true)`)
	if st, err = postgres.Status(ctx, pg.AdminURL); err != nil || !slices.Equal(st.Unknown, []int64{999999}) || len(st.Pending) != 0 {
		t.Fatalf("with a migration this build does not know: %+v %v", st, err)
	}
	// A migration rolled back (goose's later row says not applied) is pending.
	last := st.Applied[len(st.Applied)-2]
	exec(`INSERT INTO bulkhead_control.schema_migrations (version_id, is_applied) VALUES ($1, false)`, last)
	if st, err = postgres.Status(ctx, pg.AdminURL); err != nil || !slices.Equal(st.Pending, []int64{last}) {
		t.Fatalf("with migration %d's latest row not applied: %+v %v", last, st, err)
	}

	// A database bulkhead never set up: all pending, nothing created.
	u, err := url.Parse(pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	empty := pg.Name + "_empty"
	exec(`CREATE DATABASE ` + empty)
	t.Cleanup(func() { conn.Exec(ctx, `DROP DATABASE IF EXISTS `+empty+` WITH (FORCE)`) })
	u.Path = "/" + empty
	st, err = postgres.Status(ctx, u.String())
	if err != nil || st.SetUp || st.Current() || len(st.Pending) == 0 || len(st.Applied) != 0 {
		t.Fatalf("a database never set up: %+v %v", st, err)
	}
	ec, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close(ctx)
	var schemas int
	if err := ec.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bulkhead%'`).Scan(&schemas); err != nil || schemas != 0 {
		t.Fatalf("Status created %d bulkhead schemas in a database it only read (%v)", schemas, err)
	}
}

// TestSetupRefusesNewerDatabase: a database a newer bulkhead migrated is
// refused by Setup (and so by migrate, serve and dev) before anything is
// touched: no hardening step, no role, no migration row.
func TestSetupRefusesNewerDatabase(t *testing.T) {
	t.Parallel()
	_, pg := pgtest.Open(t)
	ctx := t.Context()
	conn, exec := adminSession(t, pg.AdminURL)
	// What Setup would undo: a grant its hardening revokes.
	state := func() string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, `SELECT pg_catalog.has_schema_privilege('public', 'public', 'CREATE')::text
			|| '|' || (SELECT count(*) FROM bulkhead_control.schema_migrations)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	exec(`GRANT CREATE ON SCHEMA public TO PUBLIC`)
	newer := postgres.SchemaVersion() + 1
	exec(`INSERT INTO bulkhead_control.schema_migrations (version_id, is_applied) VALUES ($1, true)`, newer)
	before := state()
	_, err := postgres.Setup(ctx, pg.AdminURL, nil)
	if fault.CodeOf(err) != "migrated_by_newer" || !strings.Contains(err.Error(), fmt.Sprintf("migration %d, newer than this bulkhead's %d", newer, postgres.SchemaVersion())) {
		t.Fatalf("Setup on a database at migration %d: %v, want migrated_by_newer", newer, err)
	}
	if after := state(); after != before {
		t.Fatalf("the refused Setup changed the database: %s, then %s", before, after)
	}
	// Rolled back (goose's later row says not applied), the database is
	// this build's again, and Setup hardens it.
	exec(`INSERT INTO bulkhead_control.schema_migrations (version_id, is_applied) VALUES ($1, false)`, newer)
	if _, err := postgres.Setup(ctx, pg.AdminURL, nil); err != nil {
		t.Fatalf("Setup after the newer migration was rolled back: %v", err)
	}
	if s := state(); !strings.HasPrefix(s, "false|") {
		t.Fatalf("Setup did not harden the database: %s", s)
	}
}

// TestSetupTakesTurns: a Setup waits while another holds the set-up lock
// of the same database (servers starting together), and goes on once it
// is released.
func TestSetupTakesTurns(t *testing.T) {
	t.Parallel()
	_, pg := pgtest.Open(t)
	ctx := t.Context()
	other, exec := adminSession(t, pg.AdminURL)
	exec(`SELECT pg_advisory_lock($1)`, postgres.SetupLockKey)
	done := make(chan error, 1)
	go func() {
		_, err := postgres.Setup(ctx, pg.AdminURL, nil)
		done <- err
	}()
	// The Setup waits on the lock: PostgreSQL shows its request, not granted.
	for waiting := false; !waiting; {
		select {
		case err := <-done:
			t.Fatalf("Setup finished while another held the set-up lock: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if err := other.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_database d ON d.oid = l.database
			WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	exec(`SELECT pg_advisory_unlock($1)`, postgres.SetupLockKey)
	if err := <-done; err != nil {
		t.Fatalf("Setup after the lock was released: %v", err)
	}
}

// TestOpenChecksTheSchema: Open (servers, minters) refuses a database
// behind this build's migrations, naming both and what to run, and opens
// one a newer bulkhead migrated, with a warning (a newer release keeps
// older ones working through a rollout).
func TestOpenChecksTheSchema(t *testing.T) {
	t.Parallel()
	_, pg := pgtest.Open(t)
	ctx := t.Context()
	_, exec := adminSession(t, pg.AdminURL)
	known := postgres.SchemaVersion()
	// The newest migration rolled back, as goose records it.
	exec(`INSERT INTO bulkhead_control.schema_migrations (version_id, is_applied) VALUES ($1, false)`, known)
	for _, c := range []postgres.Config{{AdminURL: pg.AdminURL}, {AdminURL: pg.AdminURL, AppURL: pg.AdminURL}} {
		db, err := postgres.Open(ctx, c)
		if err == nil {
			db.Close()
		}
		if fault.CodeOf(err) != "not_migrated" || !strings.Contains(err.Error(), "Run bulkhead migrate") {
			t.Fatalf("Open (AppURL set: %v) on a database behind this build: %v, want not_migrated", c.AppURL != "", err)
		}
	}
	exec(`INSERT INTO bulkhead_control.schema_migrations (version_id, is_applied) VALUES ($1, true), ($2, true)`, known, known+1)
	var logged strings.Builder
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatalf("Open on a database a newer bulkhead migrated: %v", err)
	}
	db.Close()
	if !strings.Contains(logged.String(), "migrated by a newer bulkhead") {
		t.Fatalf("no warning for a newer database; log:\n%s", logged.String())
	}
}

// adminSession connects to url as its role for the test's length, and
// returns the connection with an exec that fails the test on an error.
func adminSession(t *testing.T, url string) (*pgx.Conn, func(sql string, args ...any)) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}
}
