// Package lint inspects a PostgreSQL database through its catalogs and
// reports what lets one tenant reach another's rows: row security that is
// off or not forced, policies that do not pin the tenant or trust a
// context the caller can forge, roles above row security, views,
// functions, keys and privileges that go around it, and server releases
// with known leaks. `bulkhead lint` is its command; docs/lint.md lists
// every check.
//
// [Run] works on any database, not only bulkhead's. It reads the catalogs
// in one read-only transaction and never touches data. Three parameters
// describe the database ([Options]):
//
//   - the tenant column (tenant_id): a table with it is a tenant table;
//   - the app roles, the login roles that serve tenant traffic. Privileges
//     are judged for every role an app role can SET ROLE to, since SQL run
//     as the app role can take any of them;
//   - the exposed schemas, which the checks derived from Supabase's
//     splinter (ids S00nn) look at. The tenant lints (L01–L23) look at
//     every schema.
//
// # Findings
//
// A [Finding] names one object (a table, a policy as `name ON table`, a
// function by signature, a role…), with a stable id, a severity (error,
// warn, info), a category (security or performance), why it matters and
// the SQL that fixes it, with the object's quoted name. Where a tenant
// lint and a splinter-derived check report the same object for the same
// reason, only the more precise one is kept ([Rule].Supersedes).
//
// Policies are read as PostgreSQL deparses them and scanned with their
// sub-selects and string literals understood, so "( SELECT auth.jwt() …)"
// counts as evaluated once per query (splinter 0003 reports it as per
// row), and a policy with no expression counts as granting nothing
// (splinter 0024 reports it as always true).
//
// [WriteText], [WriteJSON] and [WriteSARIF] render a [Report]; SARIF 2.1.0
// results carry logical locations, since the objects are not files.
package lint
