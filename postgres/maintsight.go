package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/maintsight"
)

// checkMaintSees refuses when bulkhead_maint cannot see every row of a
// tenant table of schema. Offboarding and moves read, copy, delete and
// count a tenant's rows as bulkhead_maint; on such a table they would see
// none, copy none, delete none, count zero and report success (a managed
// service's admin cannot make bulkhead_maint BYPASSRLS, and then the
// maint_all policy of migration 00027 is what lets it see).
func checkMaintSees(ctx context.Context, tx pgx.Tx, schema string) error {
	rows, err := tx.Query(ctx, maintsight.BlindTablesSQL, schema)
	if err != nil {
		return err
	}
	blind, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(blind) > 0 {
		return fault.Errorf(fault.Conflict, "maint_cannot_see_rows",
			"bulkhead_maint cannot see every row of %s: it does not bypass row security, and the table has no maint_all policy (FOR ALL TO bulkhead_maint USING (true)) or has a restrictive policy that applies to it. Nothing was changed; run bulkhead migrate, or fix the table's policies.",
			strings.Join(blind, ", "))
	}
	return nil
}
