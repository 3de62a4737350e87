// Package lambda runs bulkhead business code on AWS Lambda behind API
// Gateway: an authorizer that verifies the caller and mints a tenant
// context, an adapter that hands that context to the business function as a
// per-invocation [Scope], and caches that are keyed by tenant by
// construction.
//
// # Trust model
//
// Two functions, two kinds of process. The authorizer ([Authorizer]) is
// trusted: it opens bulkhead as a minter (Config.DatabaseURL), verifies the
// caller's bearer JWT with a [bulkhead.TokenVerifier] (bulkhead's own
// issuer, or an external IdP through JWKS), resolves the tenant, and mints a
// short-lived signed tenant context bound (aud) to the business function's
// own login role. It returns the context, the schema of the tenant's tables
// and the tenant and principal, in the authorizer context API Gateway passes
// on to the integration. Every failure is a plain deny; the reason is logged,
// never sent.
//
// The business function is not trusted: assume it is compromised. It opens
// bulkhead without keys (Config.AppDatabaseURL) and wraps its handler with
// [Wrap] (HTTP APIs, payload 2.0) or [WrapREST] (REST APIs). The adapter reads
// the signed context from requestContext.authorizer, builds a [Scope] for the
// invocation, strips the Authorization header so the handler never holds a
// user JWT it could exchange for contexts (attack D05), and ends the scope
// when the handler returns. There is no API to choose a tenant: a Scope's
// tenant is the one in the context the authorizer minted, and PostgreSQL
// verifies that context itself on every transaction ([Scope.Tx]). A context
// that was tampered with on the way (edited, expired, minted for another
// function) makes the database see nothing, and the adapter refuses the
// obvious cases before the handler runs. What remains is replay: a live
// context once handed to this function works for it until it expires (45 s
// by default).
//
// # Warm execution environments
//
// Lambda reuses a process for many invocations, of many tenants. The pgx
// pool is shared across invocations safely because a tenant context is
// transaction-local: it never survives COMMIT or ROLLBACK, and the
// connection is reset before anyone else (another tenant, user or role)
// uses it. Anything else the handler
// keeps in package variables is the handler's responsibility; the seed's
// warning (a global "cachedTenantConfig" filled on first use, then served to
// the next tenant) is the classic bug. [TenantCache] is the safe way to keep
// per-tenant data warm: every entry is keyed by the tenant of a Scope, so a
// value set for one tenant cannot be returned for another, and it is bounded
// (LRU, per tenant and overall) and expiring (TTL). Before a cache is used
// under a scope, the scope's tenant is confirmed by the database, so a
// forged authorizer context cannot read another tenant's entries either.
//
// A Scope is valid only during its invocation: after the handler returns,
// [Scope.Tx], [Scope.Table] and every cache access through it return
// [ErrScopeEnded], so a goroutine that outlives its invocation fails loudly
// instead of acting for a tenant in the next one.
//
// [bulkheadtest.Interleave] checks a handler for cross-tenant contamination
// in one warm process.
//
// # Deployment notes
//
// Use one authorizer per business function (the context's audience is one
// login role), and keep API Gateway's authorizer result TTL at zero, or at
// most the context lifetime minus the function's timeout: a cached result
// carries a context that expires. See docs/guide-lambda.md.
//
// [bulkheadtest.Interleave]: https://pkg.go.dev/github.com/bulkhead-dev/bulkhead/bulkheadtest#Interleave
package lambda
