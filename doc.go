// Package bulkhead keeps the tenants of a multi-tenant SaaS apart on
// PostgreSQL, and proves it.
//
// # Trust model
//
// PostgreSQL is trusted: it holds the data and the row policies, and it
// verifies tenant context itself. The control plane (bulkhead serve, the
// admin CLI) and any authorizer are trusted: they hold the signing keys.
// Business code, your handlers and functions, is not: assume it is
// compromised. It connects with a login role of its own (a function's, or
// in a minter the database's business role, never the data API's), which owns nothing,
// bypasses nothing, can create nothing, and cannot read keys. All it holds
// is the short-lived signed tenant contexts it was handed.
//
// # How a tenant's work is scoped
//
// Every unit of tenant work is one transaction that begins by setting a
// signed tenant context, "v1.<kid>.<payload>.<mac>", as the
// transaction-local setting bulkhead.context. Row policies on every tenant
// table compare tenant_id with bulkhead.tenant_id(), which verifies the
// context inside PostgreSQL: its HMAC, its expiry against the statement's
// time, its audience against the login role, and the tenant's status. A
// forged, edited, expired or replayed context yields no rows and allows no
// writes, whatever SQL the business code sends.
//
// # Two ways to open bulkhead
//
// A trusted process (a gateway, an authorizer, a Go server that is itself
// the control plane) opens bulkhead with [Config.DatabaseURL], the control
// plane's connection. It can then mint contexts: [DB.Tx] takes the
// [tenant.Principal] in ctx, mints a context for it, and runs the work.
//
// A process that runs business code opens bulkhead with
// [Config.AppDatabaseURL], its own login role, and no keys. Its [DB.Tx]
// accepts only a context vended to it (see [WithSigned]) and cannot choose
// a tenant.
package bulkhead
