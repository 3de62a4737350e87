package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// The roles bulkhead creates. Roles are cluster-wide: one PostgreSQL
// cluster hosts one bulkhead installation.
const (
	// RoleOwner owns every schema, table and function. NOLOGIN: the control
	// plane takes it with SET LOCAL ROLE for DDL and provisioning.
	RoleOwner = "bulkhead_owner"
	// RoleMaintenance deletes an offboarded tenant's rows. NOLOGIN and
	// BYPASSRLS (under FORCE, the owner's DELETE silently deletes nothing);
	// no app role is a member of it, so no request path can reach it.
	RoleMaintenance = "bulkhead_maint"
	// RoleApp is the NOLOGIN group that holds the grants on tenant tables.
	// Every app login role is a member of it.
	RoleApp = "bulkhead_app"
	// GatewayRolePrefix starts the server's own app login role, used by the
	// data API. Each database gets its own (bulkhead_gw_ and random hex),
	// so databases sharing a cluster never share the gateway's password.
	GatewayRolePrefix = "bulkhead_gw_"
	// FunctionRolePrefix starts the login role of every registered function.
	FunctionRolePrefix = "bulkhead_fn_"
	// BusinessRolePrefix starts the login role that business code runs as
	// in a minter's process ([DB.Business], the Go library's DB.Tx). It is
	// not the gateway's: any role can change its own password and session
	// defaults, and business code must not be able to do that to the
	// role every tenant's data API requests use.
	BusinessRolePrefix = "bulkhead_tx_"
)

// SetupReport says what Setup did and what it could not do.
type SetupReport struct {
	Applied  []int64  // migration versions applied now
	Warnings []string // hardening steps that need a superuser and were skipped
	// NativeReplaced says that the database ran the native verifier and
	// a migration applied now replaced it with its own PL/pgSQL one (as a
	// migration that changes bulkhead.context() does): the checks are the
	// new migration's, and `bulkhead verifier native` with a library built
	// for it switches back.
	NativeReplaced bool
	// OverBound lists the tenants with more policy documents than
	// policy.MaxDocuments (attached before the bound existed): they keep
	// them all, and every decision for their users evaluates them all.
	OverBound []TenantDocuments
}

// TenantDocuments is a tenant and how many policy documents it has.
type TenantDocuments struct {
	Slug      tenant.Slug
	Documents int
}

// Setup brings the database at adminURL to the current version: roles,
// schemas, pgcrypto, database hardening, versioned migrations and the
// first keys. It is idempotent; `bulkhead migrate` and server start-up call
// it. adminURL must name a superuser, or a role with CREATEROLE that is a
// member of bulkhead_owner and may create schemas and extensions (some
// hardening steps are then skipped and reported).
func Setup(ctx context.Context, adminURL string, log *slog.Logger) (rep *SetupReport, err error) {
	return SetupWith(ctx, adminURL, SetupOptions{Logger: log})
}

// SetupOptions tune SetupWith.
type SetupOptions struct {
	Logger *slog.Logger
	// migrations replaces the embedded SQL migrations (tests: those of a
	// later release).
	migrations fs.FS
}

// SetupWith is Setup with options.
func SetupWith(ctx context.Context, adminURL string, o SetupOptions) (rep *SetupReport, err error) {
	defer fault.Wrap(&err, "postgres.Setup")
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, cfg, err := connectAdmin(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Servers starting together (replicas of one deployment) set the
	// database up one after another; the lock goes with the connection.
	if err := lockSetup(ctx, conn, log); err != nil {
		return nil, err
	}
	// A database a newer bulkhead migrated is left as it is: this build's
	// roles, hardening and settings could undo what the newer one set up,
	// and its code expects the schema it knows.
	if err := refuseNewer(ctx, conn, o.migrations); err != nil {
		return nil, err
	}
	rep = &SetupReport{}
	var super bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return nil, err
	}
	warns, err := createRoles(ctx, conn, super)
	if err != nil {
		return nil, err
	}
	rep.Warnings = append(rep.Warnings, warns...)
	if err := createSchemas(ctx, conn); err != nil {
		return nil, err
	}
	warns, err = Harden(ctx, conn)
	if err != nil {
		return nil, err
	}
	rep.Warnings = append(rep.Warnings, warns...)
	before, err := verifierLanguage(ctx, conn)
	if err != nil {
		return nil, err
	}
	applied, err := migrate(ctx, cfg, o.migrations)
	if err != nil {
		return nil, err
	}
	rep.Applied = applied
	after, err := verifierLanguage(ctx, conn)
	if err != nil {
		return nil, err
	}
	rep.NativeReplaced = before == "c" && after != "c"
	if err := ensureLoginRole(ctx, conn, super, GatewayRolePrefix); err != nil {
		return nil, err
	}
	if err := ensureLoginRole(ctx, conn, super, BusinessRolePrefix); err != nil {
		return nil, err
	}
	if super {
		// Every app login role gets bulkhead's settings, also one made
		// by a set-up without a superuser or by an older version.
		if err := ensureOwnSettings(ctx, conn); err != nil {
			return nil, err
		}
	}
	if err := ensureKeys(ctx, conn); err != nil {
		return nil, err
	}
	if rep.OverBound, err = overBound(ctx, conn); err != nil {
		return nil, err
	}
	for _, w := range rep.Warnings {
		log.WarnContext(ctx, "hardening step skipped", "why", w)
	}
	if rep.NativeReplaced {
		log.WarnContext(ctx, NativeReplacedWarning, "migrations", rep.Applied)
	}
	for _, t := range rep.OverBound {
		log.WarnContext(ctx, "tenant over the bound of policy documents; each of its requests evaluates them all",
			"tenant", t.Slug, "documents", t.Documents, "bound", policy.MaxDocuments)
	}
	return rep, nil
}

// overBound lists the tenants (not offboarded) with more policy documents
// than policy.MaxDocuments, most first.
func overBound(ctx context.Context, conn *pgx.Conn) ([]TenantDocuments, error) {
	rows, err := conn.Query(ctx, `SELECT t.slug, count(*)::int FROM bulkhead_control.policies p
		JOIN bulkhead_control.tenants t ON t.id = p.tenant_id
		WHERE t.status <> 'offboarded' GROUP BY t.slug HAVING count(*) > $1 ORDER BY 2 DESC, 1`, policy.MaxDocuments)
	if err != nil {
		return nil, fmt.Errorf("count policy documents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TenantDocuments, error) {
		var t TenantDocuments
		err := r.Scan(&t.Slug, &t.Documents)
		return t, err
	})
}

// connectAdmin opens one connection as the role of adminURL, and returns
// its parsed config too.
func connectAdmin(ctx context.Context, adminURL string) (*pgx.Conn, *pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return nil, nil, fault.E(fault.Invalid, "invalid_database_url", "The database URL could not be parsed.")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connect as admin: %w", err)
	}
	return conn, cfg, nil
}

// createRoles makes the cluster roles if they are missing. Concurrent
// set-ups of two databases in one cluster may race; a role that appears
// meanwhile is fine. A role that exists is left alone: PostgreSQL checks
// the privilege to create a BYPASSRLS role before it checks whether the
// role exists, so CREATE ROLE is not even tried for one.
//
// bulkhead_maint is BYPASSRLS when the admin may make it so (a superuser;
// from PostgreSQL 16 on, any BYPASSRLS role with CREATEROLE). Otherwise it
// is made without, and reaches the tenant rows it must delete, copy or look
// up only through the maint_all policy every tenant table has; the
// returned warning says so.
func createRoles(ctx context.Context, conn *pgx.Conn, super bool) (warnings []string, err error) {
	stmts := []struct{ role, stmt string }{
		{RoleOwner, `CREATE ROLE bulkhead_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB`},
		{RoleMaintenance, `CREATE ROLE bulkhead_maint NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEROLE NOCREATEDB`},
		{RoleApp, `CREATE ROLE bulkhead_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT`},
	}
	for _, s := range stmts {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, s.role).Scan(&exists); err != nil {
			return nil, err
		}
		if exists {
			continue
		}
		_, err := conn.Exec(ctx, `DO $$ BEGIN `+s.stmt+`; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`)
		var pe *pgconn.PgError
		if s.role == RoleMaintenance && errors.As(err, &pe) && pe.Code == "42501" {
			// Not allowed to make a BYPASSRLS role: the maint_all
			// policies give bulkhead_maint what it needs instead.
			_, err = conn.Exec(ctx, `DO $$ BEGIN CREATE ROLE bulkhead_maint NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`)
		}
		if err != nil {
			if errors.As(err, &pe) && pe.Code == "42501" {
				return nil, fault.Errorf(fault.Invalid, "admin_cannot_create_roles",
					"The admin role may not create bulkhead's roles (%s): it needs CREATEROLE. Run bulkhead migrate as a role with CREATEROLE (on managed PostgreSQL, the master or postgres user), or have one create %s first.", pe.Message, s.role)
			}
			return nil, fmt.Errorf("create role %s: %w", s.role, err)
		}
	}
	var maintBypass bool
	if err := conn.QueryRow(ctx, `SELECT rolbypassrls FROM pg_roles WHERE rolname = 'bulkhead_maint'`).Scan(&maintBypass); err != nil {
		return nil, err
	}
	if !maintBypass {
		warnings = append(warnings, "bulkhead_maint is not BYPASSRLS (only a superuser may make it so on PostgreSQL 15 and earlier): it reaches tenant rows through the maint_all policy on each tenant table instead, which works the same for offboarding, moves and probe checks")
	}
	if !super {
		// A non-superuser admin must be able to take these roles.
		for _, r := range []string{RoleOwner, RoleMaintenance} {
			if _, err := conn.Exec(ctx, `GRANT `+r+` TO CURRENT_USER`); err != nil {
				var pe *pgconn.PgError
				if errors.As(err, &pe) && pe.Code == "42501" {
					return nil, fault.Errorf(fault.Invalid, "admin_cannot_take_roles",
						"The admin role may not grant itself %s (%s): it needs CREATEROLE (and, on PostgreSQL 16 or later, ADMIN OPTION on %s, which the role that created it has). Run bulkhead migrate as that role, or have it run GRANT %s TO <your admin role>.", r, pe.Message, r, r)
				}
				return nil, fmt.Errorf("grant %s to the admin role: %w", r, err)
			}
		}
	}
	return warnings, nil
}

func createSchemas(ctx context.Context, conn *pgx.Conn) error {
	var db string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		return err
	}
	stmts := []string{
		`CREATE SCHEMA IF NOT EXISTS bulkhead_control AUTHORIZATION bulkhead_owner`,
		`CREATE SCHEMA IF NOT EXISTS bulkhead_crypto AUTHORIZATION bulkhead_owner`,
		`CREATE SCHEMA IF NOT EXISTS bulkhead AUTHORIZATION bulkhead_owner`,
		`CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION bulkhead_owner`,
		`CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION bulkhead_owner`,
		`CREATE SCHEMA IF NOT EXISTS bulkhead_audit AUTHORIZATION bulkhead_owner`,
		`REVOKE ALL ON SCHEMA bulkhead_control, bulkhead_crypto, bulkhead, auth, app, bulkhead_audit FROM PUBLIC`,
		`GRANT USAGE ON SCHEMA bulkhead, auth TO bulkhead_app`,
		`CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA bulkhead_crypto`,
		// Silo schemas are created at runtime by the owner.
		`GRANT CREATE ON DATABASE ` + quoteIdent(db) + ` TO bulkhead_owner`,
		`GRANT CONNECT ON DATABASE ` + quoteIdent(db) + ` TO bulkhead_app`,
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	var extSchema string
	if err := conn.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'`).Scan(&extSchema); err != nil {
		return err
	}
	if extSchema != "bulkhead_crypto" {
		return fault.Errorf(fault.Invalid, "pgcrypto_elsewhere",
			"pgcrypto is installed in schema %q; bulkhead needs it in bulkhead_crypto, out of the app roles' reach, and a database holds one copy of an extension. "+
				"Move it as the extension's owner or a superuser (ALTER EXTENSION pgcrypto SET SCHEMA bulkhead_crypto; code that names %s.<function> must follow), "+
				"or give bulkhead a database of its own (CREATE DATABASE, owned by the admin role), where bulkhead migrate installs pgcrypto itself: "+
				"it is a trusted extension, which the database's owner may create", extSchema, extSchema)
	}
	return nil
}

// Harden applies the database-level revokes: no TEMP or CREATE for PUBLIC,
// no signalling, notification, large-object or advisory-lock functions for
// PUBLIC, no setseed (the random generator belongs to the backend, which
// serves one tenant after another, and DISCARD ALL does not reseed it), and no statistics or lock views for PUBLIC, nor the
// functions behind them (pg_monitor keeps both). Some steps need a superuser; without one they are returned as
// warnings. It must run on every database, since database privileges are
// not copied by CREATE DATABASE … TEMPLATE.
func Harden(ctx context.Context, conn *pgx.Conn) (warnings []string, err error) {
	var db string
	var super bool
	if err := conn.QueryRow(ctx, `SELECT current_database(), rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&db, &super); err != nil {
		return nil, err
	}
	qdb := quoteIdent(db)
	always := []string{
		`REVOKE TEMPORARY, CREATE ON DATABASE ` + qdb + ` FROM PUBLIC`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
	}
	for _, s := range always {
		if _, err := conn.Exec(ctx, s); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v", s, err))
		}
	}
	if !super {
		return append(warnings,
			"not a superuser: EXECUTE on pg_terminate_backend, pg_cancel_backend, pg_notify, setseed, lo_* and advisory-lock functions and SELECT on pg_stat_*/pg_locks and EXECUTE on pg_stat_get_*/pg_lock_status stay granted to PUBLIC",
			"not a superuser: log_parameter_max_length = 0 and temp_file_limit = "+TempFileLimit+" are not set for the app login roles"), nil
	}
	_, err = conn.Exec(ctx, `DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
            WHERE p.pronamespace = 'pg_catalog'::regnamespace
              AND (p.proname IN ('pg_terminate_backend', 'pg_cancel_backend', 'pg_notify', 'setseed',
                                 'loread', 'lowrite', 'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir')
                   OR p.proname LIKE 'lo\_%' OR p.proname LIKE 'pg\_advisory%' OR p.proname LIKE 'pg\_try\_advisory%')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', r.sig);
  END LOOP;
  FOR r IN SELECT c.relname FROM pg_class c
            WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind IN ('v', 'r')
              AND (c.relname LIKE 'pg\_stat\_%' OR c.relname LIKE 'pg\_statio\_%' OR c.relname = 'pg_locks'
                   OR c.relname = 'pg_stat_activity')
  LOOP
    EXECUTE format('REVOKE SELECT ON pg_catalog.%I FROM PUBLIC', r.relname);
    EXECUTE format('GRANT SELECT ON pg_catalog.%I TO pg_monitor', r.relname);
  END LOOP;
  -- The functions behind those views answer the same questions directly:
  -- pg_lock_status() is pg_locks (which silo tables are in use now),
  -- pg_stat_get_activity() is pg_stat_activity, pg_stat_get_*(oid) are
  -- the per-table counters. Only those PUBLIC may run move to pg_monitor,
  -- so the monitoring role gets nothing it lacked (pg_stat_reset* stay
  -- superuser-only).
  FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
            WHERE p.pronamespace = 'pg_catalog'::regnamespace
              AND (p.proname LIKE 'pg\_stat\_get\_%'
                   OR p.proname IN ('pg_lock_status', 'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids',
                                    'pg_isolation_test_session_is_blocked'))
              AND (p.proacl IS NULL OR aclcontains(p.proacl, makeaclitem(0, p.proowner, 'EXECUTE', false)))
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', r.sig);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', r.sig);
  END LOOP;
END $$`)
	if err != nil {
		return nil, fmt.Errorf("revoke catalog functions and views: %w", err)
	}
	return warnings, nil
}

func migrate(ctx context.Context, cfg *pgx.ConnConfig, migrations fs.FS) ([]int64, error) {
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := newProvider(db, migrations)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var applied []int64
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// newProvider is goose's view of the database's versioned migrations:
// the embedded SQL files (or sqlFiles, when not nil) and the Go
// migrations, recorded in bulkhead_control.schema_migrations.
func newProvider(db *sql.DB, sqlFiles fs.FS) (*goose.Provider, error) {
	store, err := database.NewStore(database.DialectPostgres, migrationsTable)
	if err != nil {
		return nil, err
	}
	sub := sqlFiles
	if sub == nil {
		sub = MigrationFS()
	}
	p, err := goose.NewProvider("", db, sub,
		goose.WithStore(store),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations()...),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// setupLockKey is the session advisory lock Setup holds on its
// connection (advisory locks are per database).
const setupLockKey int64 = 0x62756c6b68656164 // "bulkhead"

// lockSetup waits for any other Setup of the database to finish, saying
// so when it has to. An admin role that may not take advisory locks (the
// hardening revokes them from PUBLIC, and a superuser bypasses that) goes
// on without, with a warning.
func lockSetup(ctx context.Context, conn *pgx.Conn, log *slog.Logger) error {
	var got bool
	err := conn.QueryRow(ctx, `SELECT pg_catalog.pg_try_advisory_lock($1)`, setupLockKey).Scan(&got)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		log.WarnContext(ctx, "set-up not serialised: the admin role may not take advisory locks; run one bulkhead migrate at a time")
		return nil
	}
	if err != nil {
		return fmt.Errorf("take the set-up lock: %w", err)
	}
	if got {
		return nil
	}
	log.InfoContext(ctx, "waiting for another bulkhead's set-up of this database")
	if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_advisory_lock($1)`, setupLockKey); err != nil {
		return fmt.Errorf("wait for the set-up lock: %w", err)
	}
	return nil
}

// refuseNewer refuses a database whose newest applied migration is newer
// than this build's (see [SchemaVersion]); sqlFiles replaces the
// embedded SQL migrations when not nil, as in newProvider.
func refuseNewer(ctx context.Context, conn *pgx.Conn, sqlFiles fs.FS) error {
	latest, err := appliedVersion(ctx, conn)
	if err != nil {
		return err
	}
	if known := schemaVersion(sqlFiles); latest > known {
		return fault.Errorf(fault.Conflict, "migrated_by_newer",
			"The database is at migration %d, newer than this bulkhead's %d (bulkhead version prints a build's). Use the bulkhead release that migrated it, or a later one.", latest, known)
	}
	return nil
}

// appliedVersion returns the newest versioned migration a database has:
// 0 when bulkhead never set it up. goose appends a row per change, so a
// version's latest row says whether it is applied.
func appliedVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int64, error) {
	var setUp bool
	if err := q.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, migrationsTable).Scan(&setUp); err != nil {
		return 0, fmt.Errorf("look up the migrations table: %w", err)
	}
	if !setUp {
		return 0, nil
	}
	var v int64
	err := q.QueryRow(ctx, `SELECT `+appliedVersionSQL).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read the migration version: %w", err)
	}
	return v, nil
}

// readAppliedVersion is appliedVersion for a role that may not be allowed
// to read goose's table: readable is false when it may not, or when
// bulkhead never set the database up.
func readAppliedVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (v int64, readable bool, err error) {
	if err := q.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL
		AND pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), 'SELECT')`, migrationsTable).Scan(&readable); err != nil {
		return 0, false, fmt.Errorf("look up the migrations table: %w", err)
	}
	if !readable {
		return 0, false, nil
	}
	if err := q.QueryRow(ctx, `SELECT `+appliedVersionSQL).Scan(&v); err != nil {
		return 0, false, fmt.Errorf("read the migration version: %w", err)
	}
	return v, true, nil
}

// appliedVersionSQL is an expression: the newest versioned migration the
// database has, 0 when none. goose appends a row per change, so a
// version's latest row says whether it is applied.
const appliedVersionSQL = `coalesce((SELECT max(version_id) FROM (
	SELECT DISTINCT ON (version_id) version_id, is_applied FROM ` + migrationsTable + `
	 ORDER BY version_id, id DESC) v WHERE is_applied), 0)`

// goMigrations are the versioned migrations written in Go.
func goMigrations() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(3, &goose.GoFunc{RunTx: poolTablesMigration}, nil),
		goose.NewGoMigration(5, &goose.GoFunc{RunTx: auditTriggersMigration}, nil),
		goose.NewGoMigration(7, &goose.GoFunc{RunTx: noTenantStatisticsMigration}, nil),
	}
}

// SchemaVersion is the newest versioned migration this build applies:
// the version `bulkhead migrate` brings a database to, and which
// `bulkhead version` reports.
func SchemaVersion() int64 { return schemaVersion(nil) }

// schemaVersion is the newest of the Go migrations and the SQL ones in
// sqlFiles (the embedded ones when nil).
func schemaVersion(sqlFiles fs.FS) int64 {
	if sqlFiles == nil {
		sqlFiles = MigrationFS()
	}
	var v int64
	for _, m := range goMigrations() {
		v = max(v, m.Version)
	}
	// The pattern is valid and the names are goose's (newProvider fails
	// on any other, and TestStatus holds the two together).
	files, _ := fs.Glob(sqlFiles, "*.sql")
	for _, f := range files {
		if n, err := goose.NumericComponent(f); err == nil {
			v = max(v, n)
		}
	}
	return v
}

// migrationsTable records which versioned migrations a database has.
const migrationsTable = "bulkhead_control.schema_migrations"

// poolTablesMigration builds the pool tenant tables from the same
// definitions as every silo.
func poolTablesMigration(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
		return err
	}
	for _, s := range tenantTablesDDL(PoolSchema, "") {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	// goose records the version in this transaction, as the admin.
	_, err := tx.ExecContext(ctx, `RESET ROLE`)
	return err
}

// auditTriggersMigration adds the audit triggers to the pool tables
// (tenant version 2; silos get it from MigrateSilos).
func auditTriggersMigration(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
		return err
	}
	schemas := []string{PoolSchema}
	var err error
	for _, schema := range schemas {
		for _, s := range auditTriggersDDL(schema) {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
	}
	_, err = tx.ExecContext(ctx, `RESET ROLE`)
	return err
}

// noTenantStatisticsMigration turns statistics off on the tenant column of
// the pool (tenant version 3; silos get it from MigrateSilos), and, as a
// superuser, deletes the statistics already gathered in the pool and every
// silo (ANALYZE keeps them once the target is zero).
func noTenantStatisticsMigration(ctx context.Context, tx *sql.Tx) error {
	schemas := []string{PoolSchema}
	var super bool
	if err := tx.QueryRowContext(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return err
	}
	if super {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pg_statistic s USING pg_attribute a, pg_class c, pg_namespace n
			WHERE s.starelid = a.attrelid AND s.staattnum = a.attnum AND a.attname = 'tenant_id'
			  AND c.oid = a.attrelid AND n.oid = c.relnamespace
			  AND (n.nspname = 'app' OR n.nspname ~ '^t_[0-9a-f]{32}$')`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
		return err
	}
	for _, schema := range schemas {
		for _, s := range noTenantStatisticsDDL(schema) {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
	}
	_, err := tx.ExecContext(ctx, `RESET ROLE`)
	return err
}

// ensureLoginRole gives this database its own login role of a kind (the
// gateway's, or business code's in a minter) the first time: a member of
// bulkhead_app with a random scram password, stored where only the owner
// can read, and bulkhead's settings (ownSettings).
func ensureLoginRole(ctx context.Context, conn *pgx.Conn, super bool, prefix string) error {
	var existing string
	err := conn.QueryRow(ctx, `SELECT role FROM bulkhead_control.role_credentials WHERE starts_with(role, $1)`, prefix).Scan(&existing)
	if err == nil {
		return nil // its settings: ensureOwnSettings
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	role := prefix + randomSecret(6)
	pw := randomSecret(24)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE ROLE `+quoteIdent(role)+` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB INHERIT
		CONNECTION LIMIT 200 IN ROLE bulkhead_app PASSWORD `+quoteLiteral(pw)); err != nil {
		return fmt.Errorf("create the login role %s: %w", role, err)
	}
	if super {
		if err := setOwnSettings(ctx, tx, role); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO bulkhead_control.role_credentials (role, password) VALUES ($1, $2)`, role, pw); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func ensureKeys(ctx context.Context, conn *pgx.Conn) error {
	for _, purpose := range []KeyPurpose{KeyContext, KeyJWT, KeyAdminJWT, KeyRecord, KeyAudit} {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM bulkhead_control.keys WHERE purpose = $1 AND signing_since IS NOT NULL AND (not_after IS NULL OR not_after > now())`, string(purpose)).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := insertKey(ctx, conn, purpose); err != nil {
				return err
			}
		}
	}
	return nil
}

func randomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// quoteLiteral quotes an SQL string literal. Used only where PostgreSQL
// takes no parameters (ALTER ROLE … PASSWORD) and only for values bulkhead
// made.
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// SetupVersion changes whenever Setup's non-migration steps change, so
// cached test templates are rebuilt.
const SetupVersion = 9

// MigrationFS returns the embedded migration files.
func MigrationFS() fs.FS {
	sub, _ := fs.Sub(migrationFS, "migrations")
	return sub
}

// concurrentlyUpdated reports PostgreSQL's "tuple concurrently updated",
// which two sessions changing the same catalog row at once can get.
func concurrentlyUpdated(err error) bool {
	return err != nil && strings.Contains(err.Error(), "tuple concurrently updated")
}

// NativeReplacedWarning is what Setup logs, and `bulkhead migrate` prints,
// when a migration replaced the native verifier (SetupReport.NativeReplaced).
const NativeReplacedWarning = "a migration replaced the native verifier with its own PL/pgSQL one: the database now runs that migration's checks in PL/pgSQL; to run them in C again, install the native library built from this release (make -C pgext install) and run bulkhead verifier native"

// verifierLanguage is the language bulkhead.context() is written in ("c"
// for the native verifier), or "" before the migrations made it.
func verifierLanguage(ctx context.Context, conn *pgx.Conn) (string, error) {
	var lang string
	err := conn.QueryRow(ctx, `SELECT coalesce((SELECT l.lanname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
		WHERE p.oid = pg_catalog.to_regprocedure('bulkhead.context()')), '')`).Scan(&lang)
	if err != nil {
		return "", fmt.Errorf("read bulkhead.context()'s language: %w", err)
	}
	return lang, nil
}
