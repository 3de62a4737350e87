// Package rest turns one PostgREST-dialect data-API request on one tenant
// table into one parameterised SQL statement.
//
// It is pure: no I/O, no database, no HTTP. The HTTP layer hands [Build] a
// [Table] (from bulkhead's catalog, already routed to the pool schema "app"
// or to a silo schema "t_<hex>") and a [Request], and runs the resulting
// [Statement] inside a tenant-scoped transaction. Row security in PostgreSQL
// does the tenant filtering: the SQL made here never filters by tenant.
//
// # The dialect
//
// The subset understood is what the official @supabase/postgrest-js client
// sends for ordinary table access:
//
//   - select=*, column lists, renames (alias:col) and casts (col::text) to a
//     fixed list of types: text, integer (int, int4), bigint (int8), numeric,
//     boolean (bool), uuid, date, timestamptz (timestamp with time zone),
//     json and jsonb.
//   - Filters col=op.value with eq, neq, gt, gte, lt, lte, like, ilike (with
//   - as the % wildcard), in.(a,b,"c,d"), is.null|true|false|unknown and
//     isdistinct; the not. prefix; the (any) and (all) quantifiers on eq,
//     gt, gte, lt, lte, like and ilike with a {a,b} list; or=(…) and
//     and=(…) trees, nested, and their not.or and not.and forms. Filters
//     are ANDed, including several on one column.
//   - order=col.asc|desc[.nullsfirst|.nullslast],…, limit and offset.
//   - Prefer: return=representation|minimal|headers-only,
//     count=exact|planned|estimated, resolution=merge-duplicates|
//     ignore-duplicates with on_conflict, missing=default|null,
//     handling=strict|lenient, tx=commit|rollback and max-affected.
//   - Accept: application/json, application/vnd.pgrst.array+json and
//     application/vnd.pgrst.object+json, each optionally with nulls=stripped.
//   - GET, HEAD, POST (insert and upsert of an object or an array of
//     objects, with the columns parameter), PATCH and DELETE.
//
// Not supported, each refused with [ErrUnsupported]: embedded resources,
// spreads and aggregates in select; JSON paths (col->key); the match, imatch,
// full-text, array and range operators; limit, offset and order on writes;
// filters on POST; PUT; CSV, GeoJSON and execution plans. Prefer:
// missing=default works only when every object has every inserted key. As
// in PostgREST, bodies go through json_populate_recordset over the table's
// row type, so a column of a NOT NULL domain type cannot be left out.
//
// # Safety rules
//
// Isolation and injection safety do not depend on the caller being polite:
//
//   - Values are always bound parameters. Every text value is bound as a Go
//     string to a parameter written $n::text and converted by PostgreSQL
//     ($n::text::uuid), so no driver guesses a type. Limits are int64
//     parameters. No byte of a value is ever part of the SQL text.
//   - Identifiers are only the quoted names of the [Table] description.
//     Renames (alias:col) never reach the SQL text either: when a select
//     renames a column, the JSON keys are bound parameters of
//     json_build_object.
//   - Only described columns can be named; system columns (ctid, xmin, xmax,
//     cmin, cmax, tableoid, oid) never can. select=* expands to the
//     described columns, not to the table's.
//   - Casts come from a fixed list, never reg* types. Filter values are cast
//     to the column's type only when that type is on an allowlist; other
//     columns (enums, for example) are compared as text.
//   - Planned and estimated counts are answered exactly: a planner estimate
//     sees rows of every tenant and would be a cross-tenant frequency
//     oracle. Execution plans are refused for the same reason.
//   - PATCH and DELETE without a filter are refused.
//   - Bodies are decoded token by token: keys must equal a column name
//     exactly, a key may not repeat in one object, and a tenant column that
//     names any tenant but the caller's is refused with [ErrTenantMismatch].
//     What PostgreSQL receives is re-encoded from what was checked, never the
//     raw body. The tenant column is never added: its default fills it.
//   - Accept-Profile and Content-Profile are ignored: the schema was routed
//     upstream and a header must not choose another tenant's.
//
// Errors are [*fault.Error] values with a stable code; the exported ErrX
// sentinels match them with errors.Is.
package rest
