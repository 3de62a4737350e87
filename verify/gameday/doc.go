// Package gameday plays a compromised function against a tenant database.
//
// Connected as an app login role (never a superuser) and holding a valid
// context for tenant A, it runs every applicable attack of the catalog
// against tenant B's canary rows, one named scenario at a time ("A07 forge
// the context", "A13 unique constraint oracle", …), and reports for each
// whether it was blocked, leaked, contained, not applicable, only
// informative, or inconclusive, with the SQL it ran and what came back.
//
// # Two targets
//
// [RunOwn] attacks a bulkhead database. It acts as the control plane: it
// onboards canary tenants (two in the pool, two in silos), plants canary
// rows, registers a function whose login role the attacks use, mints
// contexts for that role, and offboards and drops all of it afterwards.
// It attacks three pairs: pool→pool, pool→silo and silo→silo.
//
// [Run] attacks a user's own database: one table, a tenant column, two
// tenant values and the SQL that sets tenant A's context. Scenarios that
// need bulkhead's signed context are not applicable there.
//
// # Safety
//
// Every attack runs inside a transaction that is rolled back, under a
// statement_timeout and a lock_timeout; SECURITY DEFINER functions are
// called only in read-only transactions; nothing that signals, sleeps or
// reaches outside the database is ever called except on sessions gameday
// opened itself. The only committed changes are the canary rows (and, for
// a bulkhead database, the canary tenants and the function), which are
// removed at the end unless asked to keep them.
//
// # Controls
//
// A read that returns none of B's rows proves nothing if the same SQL
// could not see B's rows at all. Every read probe is therefore also run
// with B's own context (the control); when the control sees nothing either,
// the verdict is inconclusive rather than blocked.
package gameday
