// Package pgtest gives tests a real PostgreSQL: the cluster named by
// BULKHEAD_TEST_DATABASE_URL (a superuser URL), or else a throwaway cluster
// it starts itself (initdb into a temp dir, loopback, a random port). It
// migrates a template database once and gives each test its own database
// cloned from it. It never skips: without PostgreSQL the tests fail and say
// what to install.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgcluster"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// EnvURL names the environment variable with a superuser URL of an
// existing cluster.
const EnvURL = "BULKHEAD_TEST_DATABASE_URL"

var (
	createMu sync.Mutex
	mu       sync.Mutex
	base     *url.URL // superuser URL, path = database
	template string
	cluster  *pgcluster.Cluster
)

// Main runs the package's tests against a PostgreSQL. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Functions in before run first, for package-wide set-up such as
// [NewDBForExamples]; an error fails the run.
func Main(m *testing.M, before ...func() error) {
	code := 0
	for _, f := range before {
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			code = 1
		}
	}
	if code == 0 {
		code = m.Run()
	}
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	if cluster != nil {
		cluster.Stop()
		os.RemoveAll(cluster.Dir)
	}
	os.Exit(code)
}

func setup(tb testing.TB) {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if template != "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	raw := os.Getenv(EnvURL)
	if raw == "" {
		// Clusters of test runs that were killed are stopped and removed.
		dir, _, err := pgcluster.TempDir("bulkhead-pgtest-cluster-")
		if err != nil {
			tb.Fatal(err)
		}
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Settings: map[string]string{
			"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		}})
		if err != nil {
			os.RemoveAll(dir)
			tb.Fatalf("pgtest: no PostgreSQL: set %s to a superuser URL, or install the server so a throwaway cluster can start (%s): %v",
				EnvURL, pgcluster.InstallHint, err)
		}
		cluster = c
		raw = c.AdminURL("postgres")
	}
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	base = u
	name, err := buildTemplate(ctx)
	if err != nil {
		tb.Fatalf("pgtest: build template: %v", err)
	}
	template = name
}

// migrationsHash names the template after what builds it, so a cluster
// shared between runs never serves a stale template.
func migrationsHash() string {
	h := sha256.New()
	fs.WalkDir(postgres.MigrationFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(postgres.MigrationFS(), p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	fmt.Fprint(h, postgres.SetupVersion)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func buildTemplate(ctx context.Context) (string, error) {
	name := "bulkhead_tpl_" + migrationsHash()
	native := os.Getenv(EnvVerifier) == "native"
	if native {
		// The library is named after its source, so the name says which.
		lib, err := nativeLibrary()
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256([]byte(lib))
		name += "_n" + hex.EncodeToString(sum[:4])
	}
	conn, err := pgx.Connect(ctx, dbURL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	// Several test binaries may share one cluster: build under a lock.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7262001)`); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(7262001)`)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return "", err
	}
	if _, err := postgres.Setup(ctx, dbURL(building), nil); err != nil {
		return "", err
	}
	if native {
		if err := installNative(ctx, dbURL(building)); err != nil {
			return "", err
		}
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		return "", err
	}
	return name, nil
}

func dbURL(db string) string {
	u := *base
	u.Path = "/" + db
	return u.String()
}

// DB is one test's database.
type DB struct {
	Name     string
	AdminURL string // superuser, except for NewManagedDB's
	// SuperURL and Role are set by NewManagedDB only: the cluster
	// superuser's URL of the database, and the managed admin role.
	SuperURL string
	Role     string
}

// URL returns a URL for the test database as role with password.
func (d *DB) URL(role, password string) string {
	u, _ := url.Parse(d.AdminURL)
	u.User = url.UserPassword(role, password)
	return u.String()
}

// NewDB creates a database for one test from the migrated template,
// hardened like a provisioned one, and drops it when the test ends.
func NewDB(tb testing.TB) *DB {
	tb.Helper()
	setup(tb)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	name := "bulkhead_test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, dbURL("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	// Copies of one template are made one at a time: PostgreSQL refuses
	// (after waiting) to copy a database another backend is using.
	createMu.Lock()
	_, err = conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+template)
	createMu.Unlock()
	if err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	d := &DB{Name: name, AdminURL: dbURL(name)}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dbURL("postgres"))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	// Database privileges are not copied from a template: Setup (which is
	// idempotent) applies them.
	if _, err := postgres.Setup(ctx, d.AdminURL, nil); err != nil {
		tb.Fatalf("pgtest: setup %s: %v", name, err)
	}
	return d
}

// Open opens a postgres.DB on a fresh test database.
func Open(tb testing.TB) (*postgres.DB, *DB) {
	tb.Helper()
	d := NewDB(tb)
	db, err := postgres.Open(context.Background(), postgres.Config{AdminURL: d.AdminURL})
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	tb.Cleanup(db.Close)
	return db, d
}

// tbless adapts Setup's failures for callers without a testing.TB.
type tbless struct {
	testing.TB
	err error
}

func (t *tbless) Helper()                      {}
func (t *tbless) Fatalf(f string, args ...any) { t.err = fmt.Errorf(f, args...); panic(t) }
func (t *tbless) Fatal(args ...any)            { t.err = fmt.Errorf("%v", fmt.Sprint(args...)); panic(t) }
func (t *tbless) Cleanup(f func())             { cleanups = append(cleanups, f) }

var cleanups []func()

// NewDBForExamples is NewDB for code without a testing.TB, such as
// Example functions: the database is dropped when Main returns.
func NewDBForExamples() (d *DB, err error) {
	t := &tbless{}
	defer func() {
		if r := recover(); r != nil {
			if r != t {
				panic(r)
			}
			err = t.err
		}
	}()
	return NewDB(t), nil
}

// clusterRolesLock is the advisory lock key that orders tests which change
// or read cluster-wide role state.
const clusterRolesLock = 0x62756c6b // "bulk"

// LockClusterRoles holds, until tb ends, a lock on the cluster's role
// state. Roles and memberships are cluster-wide while test databases are
// not: a test that grants a bypassing role to a member of bulkhead_app
// takes it exclusive, and a test that demands a clean lint of its own
// database (lint counts every member of bulkhead_app that can connect)
// takes it shared, so the one never sees the other's weakening. The lock
// lives in the "postgres" database of the cluster adminURL points at,
// because advisory locks are per database.
func LockClusterRoles(tb testing.TB, adminURL string, exclusive bool) {
	tb.Helper()
	u, err := url.Parse(adminURL)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	u.Path = "/postgres"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		tb.Fatalf("pgtest: lock cluster roles: %v", err)
	}
	fn := "pg_advisory_lock_shared"
	if exclusive {
		fn = "pg_advisory_lock"
	}
	if _, err := conn.Exec(ctx, `SELECT `+fn+`($1)`, int64(clusterRolesLock)); err != nil {
		conn.Close(ctx)
		tb.Fatalf("pgtest: lock cluster roles: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) }) // closing releases the lock
}

// ManagedKind is the admin role a managed PostgreSQL service hands its
// customer: never a superuser.
type ManagedKind string

const (
	// ManagedRDS is like Amazon RDS's master user: CREATEROLE, CREATEDB,
	// and (through rds_superuser) pg_monitor, pg_signal_backend and
	// pg_read_all_stats; no BYPASSRLS.
	ManagedRDS ManagedKind = "rds"
	// ManagedBypassRLS is like Supabase's postgres role or Neon's
	// neon_superuser members: CREATEROLE, CREATEDB, BYPASSRLS,
	// pg_read_all_stats and pg_signal_backend, not pg_monitor.
	ManagedBypassRLS ManagedKind = "bypassrls"
)

var (
	managedMu      sync.Mutex
	managedCluster *pgcluster.Cluster
)

// managed starts, once per test binary, a private cluster in which no
// superuser ever runs Setup: bulkhead's cluster roles there are made by
// the managed admin roles, as they are on a managed service. Server
// settings are PostgreSQL's defaults (parameters are logged), as a
// managed service's are until its customer changes them.
func managed(tb testing.TB) *pgcluster.Cluster {
	tb.Helper()
	managedMu.Lock()
	defer managedMu.Unlock()
	if managedCluster != nil {
		return managedCluster
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, _, err := pgcluster.TempDir("bulkhead-pgtest-managed-")
	if err != nil {
		tb.Fatal(err)
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Settings: map[string]string{
		"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		"log_parameter_max_length": "-1", "log_parameter_max_length_on_error": "0",
	}})
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("pgtest: no PostgreSQL for the managed cluster (%s): %v", pgcluster.InstallHint, err)
	}
	managedCluster = c
	cleanups = append(cleanups, func() {
		c.Stop()
		os.RemoveAll(c.Dir)
	})
	return c
}

// NewManagedDB creates an empty database (not set up) in a private
// cluster, owned by a new login role of the given kind, as a managed
// service hands them out. With pgcrypto, the superuser installs it in
// schema public first, as some services do on request. AdminURL is the
// managed role's URL; SuperURL the cluster superuser's, for checking from
// outside and for breaking things on purpose, never for the code under
// test. The database and the role are dropped when tb ends.
func NewManagedDB(tb testing.TB, kind ManagedKind, pgcrypto bool) *DB {
	tb.Helper()
	c := managed(tb)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	suffix := hex.EncodeToString(b)
	role, name, pw := "mgd_"+string(kind)+"_"+suffix, "bulkhead_mgd_"+suffix, hex.EncodeToString(b)+"pw"
	conn, err := pgx.Connect(ctx, c.AdminURL("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	var stmts []string
	switch kind {
	case ManagedRDS:
		stmts = append(stmts, `CREATE ROLE `+role+` LOGIN NOSUPERUSER CREATEROLE CREATEDB NOBYPASSRLS PASSWORD '`+pw+`'
			IN ROLE pg_monitor, pg_signal_backend, pg_read_all_stats`)
	case ManagedBypassRLS:
		stmts = append(stmts, `CREATE ROLE `+role+` LOGIN NOSUPERUSER CREATEROLE CREATEDB BYPASSRLS PASSWORD '`+pw+`'
			IN ROLE pg_signal_backend, pg_read_all_stats`)
	default:
		tb.Fatalf("pgtest: unknown managed kind %q", kind)
	}
	stmts = append(stmts, `CREATE DATABASE `+name+` OWNER `+role)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("pgtest: %s: %v", s, err)
		}
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), managedCluster.AdminURL("postgres"))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
		c.Exec(context.Background(), `DROP OWNED BY `+role)
		c.Exec(context.Background(), `DROP ROLE IF EXISTS `+role)
	})
	d := &DB{Name: name, AdminURL: c.URL(role, pw, name), SuperURL: c.AdminURL(name), Role: role}
	if pgcrypto {
		sc, err := pgx.Connect(ctx, d.SuperURL)
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		defer sc.Close(ctx)
		if _, err := sc.Exec(ctx, `CREATE EXTENSION pgcrypto`); err != nil {
			tb.Fatalf("pgtest: install pgcrypto: %v", err)
		}
	}
	return d
}
