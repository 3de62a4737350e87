package lambda

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// ErrScopeEnded is returned by a [Scope] used after its invocation ended:
// by a goroutine that outlived the handler, or by code that kept the scope
// in a variable. It is a bug in the handler, never a tenant's doing.
var ErrScopeEnded = fault.E(fault.Internal, "scope_ended", "The invocation this tenant scope belonged to has ended.")

// errContextRejected is the answer when the database does not confirm the
// scope's context before a cache access.
var errContextRejected = fault.E(fault.Unauthenticated, "invalid_context", "The tenant context is not valid.")

// Scope is one invocation's tenant: who is calling, for which tenant, and
// the only way to reach that tenant's data. The adapter ([Wrap], [WrapREST])
// makes it from the context the authorizer minted and ends it when the
// handler returns. Handlers cannot make one or change its tenant; a zero
// Scope has no tenant and every method fails.
type Scope struct {
	a      *Adapter
	token  string // the signed tenant context; never logged, never returned
	schema string
	claims ctxtoken.Claims // decoded from token, unverified: PostgreSQL verifies
	// timeout and workers are the tenant's plan's statement limits from
	// the authorizer: 0 and -1 when it passed none.
	timeout time.Duration
	workers int
	ended   atomic.Bool
	// verified is set once the database confirmed the context names
	// claims.TenantID, which caches require.
	verified atomic.Bool
}

// TenantID returns the tenant's immutable UUID.
func (s *Scope) TenantID() tenant.ID { return tenant.ID(s.claims.TenantID) }

// Tenant returns the tenant's slug, for people and logs.
func (s *Scope) Tenant() tenant.Slug { return tenant.Slug(s.claims.Tenant) }

// Principal returns the caller: subject, role and tenant. It carries no
// token.
func (s *Scope) Principal() tenant.Principal {
	return tenant.Principal{
		Subject: s.claims.Subject, Role: tenant.Role(s.claims.Role),
		Tenant: s.Tenant(), TenantID: s.TenantID(), Expires: time.Unix(s.claims.ExpiresAt, 0),
	}
}

// Schema returns the schema holding the tenant's tables: "app" for a pool
// tenant, its own "t_<32 hex>" for a silo tenant.
func (s *Scope) Schema() string { return s.schema }

// Table returns the quoted, schema-qualified name of a tenant table, for
// SQL inside [Scope.Tx]. An unknown table is NotFound.
func (s *Scope) Table(name string) (string, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	return bulkhead.Table(tenant.WithSigned(context.Background(), tenant.Signed{Token: s.token, Placement: s.schema}), name)
}

// Tx runs fn in one transaction scoped to the invocation's tenant, on the
// pool shared by every invocation of the process: it is [bulkhead.DB.Tx]
// with the vended context, bounded by the tenant's plan's statement limits
// when the authorizer passed them ([AuthorizerConfig.Limits]). It
// returns [ErrScopeEnded] once the invocation has ended.
//
// Isolation: the context is set transaction-locally as the first statement
// and the connection is reset before it serves another principal (tenant,
// user or role), so nothing fn does to the session reaches another tenant.
func (s *Scope) Tx(ctx context.Context, fn func(pgx.Tx) error) error {
	if err := s.live(); err != nil {
		return err
	}
	tctx, err := bulkhead.WithSigned(ctx, s.token, s.schema)
	if err != nil {
		return err
	}
	if s.timeout > 0 {
		tctx = bulkhead.WithStatementTimeout(tctx, s.timeout)
	}
	if s.workers >= 0 {
		tctx = bulkhead.WithParallelWorkers(tctx, s.workers)
	}
	return s.a.DB.Tx(tctx, fn)
}

// Cache returns the scope's view of the adapter's cache ([Adapter.Cache]):
// a [TenantCache] of any values, pinned to this tenant. A typed
// TenantCache in a package variable is usually clearer.
func (s *Scope) Cache() View[any] {
	var c *TenantCache[any]
	if s.a != nil {
		c = s.a.Cache
	}
	return View[any]{c: c, s: s}
}

// String keeps the signed context out of fmt output.
func (s *Scope) String() string {
	return "lambda.Scope{tenant_id=" + s.claims.TenantID + " sub=" + s.claims.Subject + "}"
}

// GoString keeps the signed context out of %#v.
func (s *Scope) GoString() string { return s.String() }

// LogValue keeps the signed context out of logs.
func (s *Scope) LogValue() slog.Value {
	return slog.GroupValue(slog.String(keyTenantID, s.claims.TenantID), slog.String(keySub, s.claims.Subject))
}

// live reports whether the scope may still be used.
func (s *Scope) live() error {
	if s == nil || s.a == nil || s.token == "" {
		return tenant.ErrNoTenant
	}
	if s.ended.Load() {
		return ErrScopeEnded
	}
	return nil
}

func (s *Scope) end() { s.ended.Store(true) }

// cacheTenant returns the tenant to key cache entries with, once the
// database has confirmed it.
//
// Isolation: the adapter has no key and cannot check the context's MAC, and
// an authorizer context is only as trustworthy as whoever may invoke the
// function. Rows are safe either way (PostgreSQL verifies every
// transaction), but a cache is memory: before the first cache access of an
// invocation, one short transaction asks the database which tenant the
// context is valid for. A context the database already confirmed (API
// Gateway's authorizer cache hands the same one to several invocations) is
// remembered until it expires.
func (s *Scope) cacheTenant(ctx context.Context) (tenant.ID, error) {
	if err := s.live(); err != nil {
		return "", err
	}
	if s.verified.Load() {
		return s.TenantID(), nil
	}
	now := s.a.Now()
	sum := sha256.Sum256([]byte(s.token))
	if s.a.confirmed.has(sum, now) {
		s.verified.Store(true)
		return s.TenantID(), nil
	}
	var got *string
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT bulkhead.tenant_id()::text`).Scan(&got)
	})
	if err != nil {
		return "", err
	}
	if got == nil || *got != s.claims.TenantID {
		s.a.Logger.WarnContext(ctx, "tenant context not confirmed by the database",
			slog.String(keyTenantID, s.claims.TenantID), slog.String(keyOp, "lambda.Scope.cache"))
		return "", errContextRejected
	}
	s.a.confirmed.add(sum, time.Unix(s.claims.ExpiresAt, 0), now)
	s.verified.Store(true)
	return s.TenantID(), nil
}

// confirmedContexts remembers, by hash, the contexts the database
// confirmed, until they expire.
type confirmedContexts struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]time.Time
}

const maxConfirmed = 4096

func (c *confirmedContexts) has(sum [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[sum]
	return ok && now.Before(exp)
}

func (c *confirmedContexts) add(sum [sha256.Size]byte, exp, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]time.Time{}
	}
	if len(c.m) >= maxConfirmed {
		for k, e := range c.m {
			if !now.Before(e) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxConfirmed {
			clear(c.m)
		}
	}
	c.m[sum] = exp
}
