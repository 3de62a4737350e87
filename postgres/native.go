package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// NativeVerifierVersion is the migration whose bulkhead.context() the
// native verifier (pgext/bulkhead_verifier.c) reproduces, check for check.
// The library reports the version it was written for, and
// [DB.InstallNativeVerifier] installs it only when the two agree; a
// migration that redefines bulkhead.context() replaces the native verifier
// with its own, until a library written for it is installed.
const NativeVerifierVersion = 25

// DefaultNativeLibrary is where `make -C pgext install` puts the native
// verifier: PostgreSQL's library directory.
const DefaultNativeLibrary = "$libdir/bulkhead_verifier"

// Verifier says which bulkhead.context() a database runs.
type Verifier struct {
	// Kind is "plpgsql" (bulkhead's migrations' verifier, which works
	// everywhere) or "native" (the C library, self-hosted PostgreSQL only).
	Kind string `json:"kind"`
	// Library is the native verifier's library, as installed.
	Library string `json:"library,omitempty"`
}

// nativeSymbol is the C function behind the native bulkhead.context().
const nativeSymbol = "bulkhead_context"

// VerifierStatus reports which verifier the database runs.
func (db *DB) VerifierStatus(ctx context.Context) (*Verifier, error) {
	var lang, library string
	err := db.admin.QueryRow(ctx, `SELECT l.lanname, coalesce(p.probin, '')
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
		WHERE p.oid = to_regprocedure('bulkhead.context()')`).Scan(&lang, &library)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.E(fault.Conflict, "not_migrated", "bulkhead.context() does not exist: run bulkhead migrate first.")
	}
	if err != nil {
		return nil, fmt.Errorf("read bulkhead.context(): %w", err)
	}
	if lang == "c" {
		return &Verifier{Kind: "native", Library: library}, nil
	}
	return &Verifier{Kind: lang}, nil
}

// InstallNativeVerifier replaces bulkhead.context() with the native
// verifier from library (a path PostgreSQL can load, such as
// [DefaultNativeLibrary]), in one transaction. Only a superuser may create
// a function in C. It refuses a library written for another migration's
// verifier, a database not migrated up to [NativeVerifierVersion], and a
// database whose encoding is not UTF8.
func (db *DB) InstallNativeVerifier(ctx context.Context, library string) (*Verifier, error) {
	if library == "" {
		library = DefaultNativeLibrary
	}
	if strings.ContainsRune(library, 0) {
		return nil, fault.E(fault.Invalid, "invalid_library", "The library path contains a NUL byte.")
	}
	err := db.nativeTx(ctx, func(tx pgx.Tx) error {
		lib := quoteLiteral(library)
		// Ask the library which verifier it reproduces, through a
		// temporary function dropped again below (or with the
		// transaction, if anything fails).
		_, err := tx.Exec(ctx, `CREATE FUNCTION pg_temp.bulkhead_verifier_version() RETURNS integer
			LANGUAGE c IMMUTABLE AS `+lib+`, 'bulkhead_verifier_version'`)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && (pe.Code == "58P01" || pe.Code == "42883" || pe.Code == "XX000") {
				return fault.Errorf(fault.Invalid, "native_library_missing",
					"PostgreSQL cannot load the native verifier from %s (%s). Build and install it on the database server with `make -C pgext install` (it needs PostgreSQL's server headers and a C compiler), or give its path with --library.",
					library, pe.Message)
			}
			return err
		}
		var version int
		if err := tx.QueryRow(ctx, `SELECT pg_temp.bulkhead_verifier_version()`).Scan(&version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP FUNCTION pg_temp.bulkhead_verifier_version()`); err != nil {
			return err
		}
		var encoding string
		if err := tx.QueryRow(ctx, `SELECT pg_catalog.getdatabaseencoding()`).Scan(&encoding); err != nil {
			return err
		}
		if encoding != "UTF8" {
			return fault.Errorf(fault.Conflict, "native_needs_utf8",
				"The database's encoding is %s; the native verifier works only in a UTF8 database (the PL/pgSQL verifier stays).", encoding)
		}
		if version != NativeVerifierVersion {
			return fault.Errorf(fault.Conflict, "native_library_version",
				"The native verifier at %s reproduces the verifier of migration %d; this bulkhead's is migration %d's. Build the library from this release's pgext/ and install it.",
				library, version, NativeVerifierVersion)
		}
		_, err = tx.Exec(ctx, `CREATE OR REPLACE FUNCTION bulkhead.context() RETURNS jsonb
			LANGUAGE c STABLE SECURITY DEFINER PARALLEL SAFE COST 100 AS `+lib+`, '`+nativeSymbol+`'`)
		if err != nil {
			return fmt.Errorf("install the native verifier: %w", err)
		}
		if _, err := tx.Exec(ctx, `ALTER FUNCTION bulkhead.context() OWNER TO bulkhead_owner`); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "verifier:Native", controlResource("", "verifier", "bulkhead.context()"), "", "",
			map[string]string{"library": library, "implements_migration": fmt.Sprint(version)})
	})
	if err != nil {
		return nil, err
	}
	return db.VerifierStatus(ctx)
}

// RemoveNativeVerifier puts back the PL/pgSQL verifier of migration
// [NativeVerifierVersion], in one transaction. It does nothing when the
// database already runs a PL/pgSQL verifier.
func (db *DB) RemoveNativeVerifier(ctx context.Context) (*Verifier, error) {
	stmt, err := plpgsqlVerifier()
	if err != nil {
		return nil, err
	}
	err = db.nativeTx(ctx, func(tx pgx.Tx) error {
		var lang string
		if err := tx.QueryRow(ctx, `SELECT l.lanname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
			WHERE p.oid = 'bulkhead.context()'::regprocedure`).Scan(&lang); err != nil {
			return err
		}
		if lang != "c" {
			return nil
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("restore the PL/pgSQL verifier: %w", err)
		}
		if _, err := tx.Exec(ctx, `RESET ROLE`); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "verifier:PLpgSQL", controlResource("", "verifier", "bulkhead.context()"), "", "",
			map[string]string{"migration": fmt.Sprint(NativeVerifierVersion)})
	})
	if err != nil {
		return nil, err
	}
	return db.VerifierStatus(ctx)
}

// nativeTx runs f in one transaction as a superuser, after checking the
// database is migrated far enough and not by a newer bulkhead.
func (db *DB) nativeTx(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		var super bool
		if err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
			return fmt.Errorf("read the role: %w", err)
		}
		latest, err := appliedVersion(ctx, tx)
		if err != nil {
			return err
		}
		if !super {
			return fault.E(fault.Denied, "native_verifier_needs_superuser",
				"Only a superuser may install or remove a function written in C. Managed services (RDS, Supabase, Neon) keep the PL/pgSQL verifier.")
		}
		if latest < NativeVerifierVersion {
			return fault.Errorf(fault.Conflict, "not_migrated",
				"The database is at migration %d; the native verifier needs %d or later. Run bulkhead migrate first.", latest, NativeVerifierVersion)
		}
		if known := SchemaVersion(); latest > known {
			return fault.Errorf(fault.Conflict, "migrated_by_newer",
				"The database is at migration %d, newer than this bulkhead's %d. Use the bulkhead release that migrated it.", latest, known)
		}
		// One change of verifier at a time, and none during a migration.
		if _, err := tx.Exec(ctx, `LOCK TABLE bulkhead_control.schema_migrations IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		return f(tx)
	})
}

// verifierStatement matches the statement of a migration that (re)defines
// bulkhead.context(), up to the end of its body.
var verifierStatement = regexp.MustCompile(`(?s)CREATE (?:OR REPLACE )?FUNCTION bulkhead\.context\(\) RETURNS jsonb.*?\n\$fn\$;`)

// plpgsqlVerifier returns the statement with which migration
// [NativeVerifierVersion] defines the PL/pgSQL bulkhead.context().
func plpgsqlVerifier() (string, error) {
	name, err := migrationFile(NativeVerifierVersion)
	if err != nil {
		return "", err
	}
	b, err := fs.ReadFile(migrationFS, name)
	if err != nil {
		return "", err
	}
	stmt := verifierStatement.Find(b)
	if stmt == nil {
		return "", fmt.Errorf("migration %s does not define bulkhead.context()", name)
	}
	return strings.Replace(string(stmt), "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1), nil
}

// migrationFile names the embedded SQL migration of a version.
func migrationFile(version int) (string, error) {
	matches, err := fs.Glob(migrationFS, fmt.Sprintf("migrations/%05d_*.sql", version))
	if err != nil {
		return "", err
	}
	if len(matches) != 1 {
		return "", fmt.Errorf("no single SQL migration %05d", version)
	}
	return matches[0], nil
}
