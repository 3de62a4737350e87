package httpapi

import (
	"context"
	"net/http"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// PlanLimits returns middleware that holds a program's own handlers (the
// ones it serves behind [bulkhead.Middleware], running [bulkhead.DB.Tx])
// to each tenant's plan, as the data API is held:
//
//   - each request takes a token from its tenant's bucket (Limit.Rate and
//     Burst), and past it is answered 429 rate_limited with Retry-After;
//   - it holds one of its tenant's transaction slots while the handler
//     runs (Limit.Concurrent, and never more than half of db's business
//     pool), and when none is free is answered 429 too_many_transactions;
//   - the plan's StatementTimeout and ParallelWorkers go into the
//     request's context ([bulkhead.WithStatementTimeout],
//     [bulkhead.WithParallelWorkers]), so that each statement of the
//     handler's DB.Tx is bounded by them.
//
// Refusals are application/problem+json and never reach the handler
// (an internal error, such as the database out of reach while the
// tenant's plan is looked up, is logged with slog's default logger). A
// request without a principal (the middleware placed outside
// bulkhead.Middleware) is answered 401 no_tenant, never served unlimited.
// A request of a tenant that is suspended, moving or gone is answered as
// DB.Tx would answer it (401, or 503 while it moves). A platform
// principal's request, which has no tenant, passes unlimited; DB.Tx
// refuses it anyway. Limit.StatementTime is the data API's alone: the
// middleware cannot tell a handler's database time from the rest of its
// work. limits nil means [DefaultLimits]; a tenant whose
// plan is not in it gets the basic plan's. db must be a minter (opened
// with Config.DatabaseURL): only a minter knows tenants' plans.
//
// The counters are this process's, as the server's are: n replicas let a
// tenant have n times its plan.
func PlanLimits(ctx context.Context, db *bulkhead.DB, limits map[string]Limit) (func(http.Handler) http.Handler, error) {
	if db.Postgres() == nil {
		return nil, bulkhead.ErrNotMinter
	}
	if limits == nil {
		limits = DefaultLimits
	}
	for plan, l := range limits {
		if l.Rate <= 0 || l.Burst < 1 || l.Concurrent < 1 || l.StatementTimeout < 0 || l.ParallelWorkers < 0 {
			return nil, fault.Errorf(fault.Invalid, "invalid_plan_limits", "The limits of plan %q need a positive rate, burst and concurrent, and a statement timeout and parallel workers of zero or more.", plan)
		}
	}
	pool, err := db.Postgres().Business(ctx)
	if err != nil {
		return nil, err
	}
	l := &limiters{limits: limits, share: max(1, int(pool.Config().MaxConns)/2)}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := tenant.FromContext(r.Context())
			if !ok {
				// Outside bulkhead.Middleware: fail closed rather than
				// serve unlimited.
				writeProblem(w, r, tenant.ErrNoTenant)
				return
			}
			if p.Platform {
				next.ServeHTTP(w, r)
				return
			}
			t, err := db.ResolveTenant(r.Context(), p)
			if err != nil {
				writeProblem(w, r, err)
				return
			}
			if retry, err := l.admit(t); err != nil { //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
				setRetryAfter(w, retry)
				writeProblem(w, r, err)
				return
			}
			release, retry, err := l.slot(t) //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
			if err != nil {
				setRetryAfter(w, retry)
				writeProblem(w, r, err)
				return
			}
			defer release()
			lim := l.limit(t)
			ctx := bulkhead.WithStatementTimeout(bulkhead.WithParallelWorkers(r.Context(), lim.ParallelWorkers), lim.StatementTimeout)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}, nil
}
