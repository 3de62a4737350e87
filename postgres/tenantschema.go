package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// PoolSchema is the schema that holds the pool tenants' shared tables.
const PoolSchema = "app"

// tenantMigrations are the versions of the tenant tables. Every silo is
// built by applying them in order, and the catalog records, per tenant,
// which version its schema is on; MigrateSilos brings silos up to date.
// Each step is idempotent, so a schema that already has it (from an older
// release that applied it another way) takes it again harmlessly.
var tenantMigrations = []struct {
	Version int
	Name    string
	DDL     func(schema string, silo tenant.ID) []string
}{
	{1, "tables, keys, row security, policies and grants", tenantTablesDDL},
	{2, "audit triggers", func(s string, _ tenant.ID) []string { return auditTriggersDDL(s) }},
	{3, "no planner statistics on tenant_id", func(s string, _ tenant.ID) []string { return noTenantStatisticsDDL(s) }},
	{4, "update events name the rows as they were", func(s string, _ tenant.ID) []string { return auditUpdateOldIDsDDL(s) }},
	{5, "bulkhead_maint reaches the rows without BYPASSRLS", func(s string, _ tenant.ID) []string { return maintPolicyDDL(s) }},
}

// TenantSchemaVersion is the latest version of the tenant tables.
var TenantSchemaVersion = tenantMigrations[len(tenantMigrations)-1].Version

// tenantTablesDDL returns the statements that build the tenant tables in
// schema. The same definitions build the pool schema (siloTenant empty) and
// every silo schema (siloTenant set).
//
// Isolation: every tenant table
//   - carries tenant_id, defaulting to the claimed tenant (cheap, unverified:
//     WITH CHECK verifies the row once per statement);
//   - has keys and foreign keys that include tenant_id, so a row can never
//     point at another tenant's row, and a constraint error cannot tell
//     "absent" from "another tenant's";
//   - has row security ENABLED and FORCED, with one policy per command whose
//     USING and WITH CHECK compare tenant_id with the verified context in a
//     sub-select (one init-plan per query, not a verification per row);
//   - in a silo, also has CHECK (tenant_id = '<that tenant>'), so no other
//     tenant's context can write into it and isolation does not rest on
//     routing;
//   - grants the app group only SELECT, INSERT, UPDATE and DELETE.
func tenantTablesDDL(schema string, siloTenant tenant.ID) []string {
	s := quoteIdent(schema)
	check := ""
	if siloTenant != "" {
		check = fmt.Sprintf(" CHECK (tenant_id = '%s'::uuid)", string(siloTenant))
	}
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE %s.projects (
    tenant_id   uuid NOT NULL DEFAULT bulkhead.claimed_tenant_id()%s,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
    description text CHECK (length(description) <= 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
)`, s, check),
		fmt.Sprintf(`CREATE TABLE %s.tasks (
    tenant_id  uuid NOT NULL DEFAULT bulkhead.claimed_tenant_id()%s,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    done       boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES %s.projects (tenant_id, id) ON DELETE CASCADE
)`, s, check, s),
		fmt.Sprintf(`CREATE INDEX tasks_project ON %s.tasks (tenant_id, project_id)`, s),
	}
	stmts = append(stmts, fmt.Sprintf(`GRANT USAGE ON SCHEMA %s TO bulkhead_app, bulkhead_maint`, s))
	for _, t := range TenantTableNames {
		stmts = append(stmts, secureTableDDL(s+"."+quoteIdent(t))...)
	}
	return stmts
}

// noTenantStatisticsDDL stops PostgreSQL from gathering statistics on the
// tenant column. Isolation: with them, EXPLAIN's row estimate for
// WHERE tenant_id = '<B>' is tenant B's row count, readable by any app role
// (gameday's A17). The policies compare tenant_id with a value known only
// at run time, so plans lose nothing.
func noTenantStatisticsDDL(schema string) []string {
	var out []string
	for _, t := range TenantTableNames {
		out = append(out, "ALTER TABLE "+quoteIdent(schema)+"."+quoteIdent(t)+" ALTER COLUMN tenant_id SET STATISTICS 0")
	}
	return out
}

// auditTriggersDDL adds the audit triggers to the tenant tables of schema:
// one statement-level trigger per command, so every change, including one
// made by business code through direct SQL, leaves an event in the same
// transaction.
func auditTriggersDDL(schema string) []string {
	s := quoteIdent(schema)
	var out []string
	for _, t := range TenantTableNames {
		qt := s + "." + quoteIdent(t)
		out = append(out,
			"CREATE OR REPLACE TRIGGER audit_insert AFTER INSERT ON "+qt+" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bulkhead_audit.record_change()",
			"CREATE OR REPLACE TRIGGER audit_update AFTER UPDATE ON "+qt+" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bulkhead_audit.record_change()",
			"CREATE OR REPLACE TRIGGER audit_delete AFTER DELETE ON "+qt+" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bulkhead_audit.record_change()",
		)
	}
	return out
}

// auditUpdateOldIDsDDL points the update trigger of each tenant table of
// schema at record_update(), which reads the rows as they were as well as
// as they are: an UPDATE that changes a row's id then names both.
func auditUpdateOldIDsDDL(schema string) []string {
	s := quoteIdent(schema)
	var out []string
	for _, t := range TenantTableNames {
		out = append(out, "CREATE OR REPLACE TRIGGER audit_update AFTER UPDATE ON "+s+"."+quoteIdent(t)+
			" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bulkhead_audit.record_update()")
	}
	return out
}

// maintPolicyDDL gives bulkhead_maint a policy of its own on the tenant
// tables of schema: every row, for every command its grants allow
// (SELECT and DELETE, and INSERT where a move grants it). It is what lets
// offboarding, moves and the probe check reach the rows when bulkhead_maint
// could not be made BYPASSRLS (an admin that is not a superuser, on
// PostgreSQL 15 and earlier); with BYPASSRLS it changes nothing. No app
// role is a member of bulkhead_maint, and the policy names no other role,
// so it opens nothing to a request. Dropped first, so that it is
// idempotent.
func maintPolicyDDL(schema string) []string {
	s := quoteIdent(schema)
	var out []string
	for _, t := range TenantTableNames {
		qt := s + "." + quoteIdent(t)
		out = append(out,
			"DROP POLICY IF EXISTS maint_all ON "+qt,
			"CREATE POLICY maint_all ON "+qt+" AS PERMISSIVE FOR ALL TO bulkhead_maint USING (true) WITH CHECK (true)")
	}
	return out
}

// TenantTableNames lists the tenant tables in dependency order. The data API
// exposes exactly these.
var TenantTableNames = []string{"projects", "tasks"}

// secureTableDDL turns on forced row security with the tenant policies and
// the app grants on one table.
func secureTableDDL(qt string) []string {
	return []string{
		"ALTER TABLE " + qt + " ENABLE ROW LEVEL SECURITY",
		"ALTER TABLE " + qt + " FORCE ROW LEVEL SECURITY",
		"CREATE POLICY tenant_select ON " + qt + " AS PERMISSIVE FOR SELECT TO bulkhead_app" +
			" USING (tenant_id = (SELECT bulkhead.tenant_id()))",
		"CREATE POLICY tenant_insert ON " + qt + " AS PERMISSIVE FOR INSERT TO bulkhead_app" +
			" WITH CHECK (tenant_id = (SELECT bulkhead.tenant_id_for('insert')))",
		"CREATE POLICY tenant_update ON " + qt + " AS PERMISSIVE FOR UPDATE TO bulkhead_app" +
			" USING (tenant_id = (SELECT bulkhead.tenant_id_for('update')))" +
			" WITH CHECK (tenant_id = (SELECT bulkhead.tenant_id_for('update')))",
		"CREATE POLICY tenant_delete ON " + qt + " AS PERMISSIVE FOR DELETE TO bulkhead_app" +
			" USING (tenant_id = (SELECT bulkhead.tenant_id_for('delete')))",
		"REVOKE ALL ON " + qt + " FROM PUBLIC",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON " + qt + " TO bulkhead_app",
		// Offboarding deletes through the maintenance role, which bypasses
		// row security; it needs nothing more than this.
		"GRANT SELECT, DELETE ON " + qt + " TO bulkhead_maint",
	}
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// DescribeTenantTable returns the columns of a pool tenant table as
// format_type() names their types, in column order. Silo tables are built
// from the same definitions, so the description holds for every placement.
func (db *DB) DescribeTenantTable(ctx context.Context, name string) (cols []ColumnInfo, err error) {
	defer fault.Wrap(&err, "postgres.DescribeTenantTable(%s)", name)
	rows, err := db.admin.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef
		FROM pg_attribute a
		WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, PoolSchema, name)
	if err != nil {
		return nil, Translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ColumnInfo, error) {
		var c ColumnInfo
		err := r.Scan(&c.Name, &c.Type, &c.NotNull, &c.HasDefault)
		return c, err
	})
}

// ColumnInfo describes one column of a tenant table.
type ColumnInfo struct {
	Name       string
	Type       string
	NotNull    bool
	HasDefault bool
}
