// Package maintsight holds the one query that says where bulkhead_maint
// cannot see every tenant row: the postgres package refuses offboarding and
// moves on it, and lint reports it (L21), so both go by the same rule.
package maintsight

// BlindTablesSQL lists, qualified and sorted, the tables with a tenant_id
// column in the pool schema (app) and the silo schemas (t_<32 hex>), or in
// schema $1 alone when it is not NULL, whose rows bulkhead_maint cannot all
// see: row security is on, the role does not bypass it, and either no
// permissive policy gives it every row for every command (maint_all: FOR
// ALL, USING true, WITH CHECK true or none), or a restrictive policy
// applies to it or to PUBLIC. Without a bulkhead_maint role it lists
// nothing.
const BlindTablesSQL = `
WITH m AS (SELECT oid, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = 'bulkhead_maint')
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, m
WHERE c.relkind IN ('r', 'p')
  AND (n.nspname = 'app' OR n.nspname ~ '^t_[0-9a-f]{32}$')
  AND ($1::text IS NULL OR n.nspname = $1::text)
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
  AND c.relrowsecurity AND NOT m.rolbypassrls
  AND (NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
		WHERE p.polrelid = c.oid AND p.polpermissive AND p.polcmd = '*' AND m.oid = ANY (p.polroles)
		  AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true'
		  AND coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'true') = 'true')
	OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
		WHERE p.polrelid = c.oid AND NOT p.polpermissive AND (0 = ANY (p.polroles) OR m.oid = ANY (p.polroles))))
ORDER BY 1`
