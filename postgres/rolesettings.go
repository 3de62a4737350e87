package postgres

import (
	"context"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TempFileLimit is the temp_file_limit bulkhead gives each app login
// role: the temporary files one of its statements may write (sorts and
// hashes that do not fit in work_mem). Without it, business code can
// fill the disk that every tenant's data and WAL are on with one
// statement, and PostgreSQL stops for all of them. An operator may give
// a role another value (as a superuser, ALTER ROLE … SET
// temp_file_limit); Setup keeps it.
const TempFileLimit = "1GB"

// ownSettings are the settings bulkhead gives every app login role, with
// their values. Only a superuser may set them, so the role can change
// them neither in a session nor for itself.
var ownSettings = map[string]string{
	// Contexts travel as bound parameters: keep them out of the log.
	"log_parameter_max_length":          "0",
	"log_parameter_max_length_on_error": "0",
	"temp_file_limit":                   TempFileLimit,
}

type execer interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}

// setOwnSettings gives role bulkhead's settings, for every database. It
// needs a superuser.
func setOwnSettings(ctx context.Context, ex execer, role string) error {
	for _, s := range slices.Sorted(maps.Keys(ownSettings)) {
		if _, err := ex.Exec(ctx, `ALTER ROLE `+quoteIdent(role)+` SET `+s+` = `+quoteLiteral(ownSettings[s])); err != nil {
			return err
		}
	}
	return nil
}

// ensureOwnSettings gives every app login role each setting of
// ownSettings it has no value of, for every database: roles made before
// a setting was added get it, and a value an operator chose stays. It
// needs a superuser.
func ensureOwnSettings(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `WITH app AS (`+appRoles+`)
		SELECT app.rolname, s.name FROM app CROSS JOIN unnest($1::text[]) s(name)
		WHERE NOT EXISTS (SELECT 1 FROM pg_db_role_setting d, unnest(d.setconfig) c
		                  WHERE d.setrole = app.oid AND d.setdatabase = 0 AND split_part(c, '=', 1) = s.name)
		ORDER BY 1, 2`, slices.Sorted(maps.Keys(ownSettings)))
	if err != nil {
		return err
	}
	type missing struct{ role, name string }
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (m missing, err error) {
		return m, r.Scan(&m.role, &m.name)
	})
	if err != nil {
		return err
	}
	for _, m := range ms {
		// Databases of one cluster share the roles: a set-up of another
		// database may set the same one at the same time.
		if _, err := conn.Exec(ctx, `ALTER ROLE `+quoteIdent(m.role)+` SET `+m.name+` = `+quoteLiteral(ownSettings[m.name])); err != nil && !concurrentlyUpdated(err) {
			return err
		}
	}
	return nil
}
