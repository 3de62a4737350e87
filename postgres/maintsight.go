package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// maintBlindSQL keeps, of the tables $2 of schema $1, those whose rows
// bulkhead_maint cannot all see: row security is on, the role does not
// bypass it, and either no permissive policy gives it every row for every
// command (maint_all: FOR ALL, USING true, WITH CHECK true or none), or a
// restrictive policy applies to it (or to PUBLIC).
const maintBlindSQL = `
WITH m AS (SELECT oid, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = 'bulkhead_maint')
SELECT t FROM pg_catalog.unnest($2::text[]) t, m,
	LATERAL (SELECT c.oid, c.relrowsecurity FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = t) c
WHERE c.relrowsecurity AND NOT m.rolbypassrls
  AND (NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
		WHERE p.polrelid = c.oid AND p.polpermissive AND p.polcmd = '*' AND m.oid = ANY (p.polroles)
		  AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true'
		  AND coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'true') = 'true')
	OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
		WHERE p.polrelid = c.oid AND NOT p.polpermissive AND (0 = ANY (p.polroles) OR m.oid = ANY (p.polroles))))
ORDER BY t`

// checkMaintSees refuses when bulkhead_maint cannot see every row of one
// of the tables of schema. Offboarding and moves read, copy, delete and
// count a tenant's rows as bulkhead_maint; on such a table they would see
// none, copy none, delete none, count zero and report success (a managed
// service's admin cannot make bulkhead_maint BYPASSRLS, and then the
// maint_all policy of migration 00027 is what lets it see).
func checkMaintSees(ctx context.Context, tx pgx.Tx, schema string, tables []string) error {
	rows, err := tx.Query(ctx, maintBlindSQL, schema, tables)
	if err != nil {
		return err
	}
	blind, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(blind) > 0 {
		return fault.Errorf(fault.Conflict, "maint_cannot_see_rows",
			"bulkhead_maint cannot see every row of %s.%s: it does not bypass row security, and the table has no maint_all policy (FOR ALL TO bulkhead_maint USING (true)) or has a restrictive policy that applies to it. Nothing was changed; run bulkhead migrate, or fix the table's policies.",
			schema, strings.Join(blind, ", "+schema+"."))
	}
	return nil
}
