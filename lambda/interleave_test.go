package lambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/bulkheadtest"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/lambda"
)

// spyTB records failures instead of failing, to prove Interleave fails.
type spyTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (s *spyTB) Helper() {}

func (s *spyTB) Errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors = append(s.errors, fmt.Sprintf(format, args...))
}

func (s *spyTB) Fatalf(format string, args ...any) { s.Errorf(format, args...) }

// interleaveTenants returns one Interleave tenant per apitest tenant: each
// invocation asks the authorizer for a fresh context with the tenant's
// user token, builds the HTTP API request from testdata, and runs h.
func (e *env) interleaveTenants(t *testing.T, h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), tns ...*apitest.Tenant) []bulkheadtest.InterleaveTenant {
	var out []bulkheadtest.InterleaveTenant
	for _, tn := range tns {
		var authReq events.APIGatewayV2CustomAuthorizerV2Request
		fixture(t, "http-authorizer-request.json", tn.MemberToken, &authReq)
		base := httpRequest(t, tn.MemberToken, map[string]any{})
		out = append(out, bulkheadtest.InterleaveTenant{
			Name:     tn.Slug,
			Canaries: []string{e.projects[tn.Slug]},
			Invoke: func(ctx context.Context) (any, error) {
				res, err := e.authz.HTTP(ctx, authReq)
				if err != nil || !res.IsAuthorized {
					return nil, fmt.Errorf("authorizer: %+v, %v", res, err)
				}
				// API Gateway hands the context on as JSON.
				b, err := json.Marshal(res.Context)
				if err != nil {
					return nil, err
				}
				req := base
				req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
				if err := json.Unmarshal(b, &req.RequestContext.Authorizer.Lambda); err != nil {
					return nil, err
				}
				return h(ctx, req)
			},
		})
	}
	return out
}

// TestInterleaveLambda runs the seed's example, ported to a Go Lambda
// function on the adapter, through bulkheadtest.Interleave with real
// authorizer contexts and a real database: the BAD version is caught, the
// GOOD one and the TenantCache one pass.
func TestInterleaveLambda(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	initech := e.s.CreateTenant(t, "initech", "pool")
	e.projects["initech"] = e.seedProject(t, initech, "canary-initech-"+initech.UUID[:8])
	tenants := []*apitest.Tenant{e.acme, e.globex, initech}

	// The function's process-wide logger, captured by the Recorder.
	rec := bulkheadtest.NewRecorder()
	logger := slog.New(rec.Handler(nil))

	t.Run("BAD", func(t *testing.T) {
		// BAD: a process-wide variable filled on first use. (A package
		// variable in a real function; captured here so tests can run in
		// parallel. The mutex keeps -race quiet; the leak is the same.)
		var mu sync.Mutex
		var cachedTenantConfig *listing
		h := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			if cachedTenantConfig == nil {
				l := list(ctx, s)
				cachedTenantConfig = &l
			}
			// Risk: the next invocation might use the wrong config.
			logger.InfoContext(ctx, "listed", "projects", cachedTenantConfig.Projects)
			return jsonResponse(cachedTenantConfig), nil
		})
		spy := &spyTB{TB: t}
		rep := bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: e.interleaveTenants(t, h, tenants...), Rounds: 3, Shared: rec})
		if len(rep.Findings) == 0 {
			t.Fatalf("Interleave did not catch the BAD handler; failures: %q", spy.errors)
		}
		if f := rep.Findings[0]; f.Round != 0 || f.Invocation != 2 {
			t.Errorf("first finding %v, want the warm-up's second invocation", f)
		}
		wheres := map[string]bool{}
		for _, f := range rep.Findings {
			wheres[f.Where] = true
		}
		if !wheres["result"] || !wheres["shared log"] {
			t.Errorf("findings in %v, want the result and the shared log", wheres)
		}
		t.Logf("BAD: %d findings in %d invocations, e.g. %s", len(rep.Findings), rep.Invocations, rep.Findings[0])
	})

	t.Run("GOOD", func(t *testing.T) {
		// GOOD: fetched inside the handler, every time.
		h := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			l := list(ctx, s)
			if l.Err != "" {
				return events.APIGatewayV2HTTPResponse{}, errors.New(l.Err)
			}
			logger.InfoContext(ctx, "listed", "projects", l.Projects)
			return jsonResponse(l), nil
		})
		bulkheadtest.Interleave(t, bulkheadtest.InterleaveConfig{Tenants: e.interleaveTenants(t, h, tenants...),
			Rounds: 4, Concurrency: 6, Shared: rec, RequireOwnCanary: true})
	})

	t.Run("TenantCache", func(t *testing.T) {
		// Warm, and safe: a process-wide cache keyed by the scope's tenant.
		configs := lambda.NewTenantCache[listing](lambda.CacheConfig{})
		var mu sync.Mutex
		loads := 0
		h := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			l, err := configs.GetOrLoad(ctx, s, "config", func(ctx context.Context) (listing, error) {
				mu.Lock()
				loads++
				mu.Unlock()
				l := list(ctx, s)
				if l.Err != "" {
					return l, errors.New(l.Err)
				}
				return l, nil
			})
			if err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
			logger.InfoContext(ctx, "listed", "projects", l.Projects)
			return jsonResponse(l), nil
		})
		rep := bulkheadtest.Interleave(t, bulkheadtest.InterleaveConfig{Tenants: e.interleaveTenants(t, h, tenants...),
			Rounds: 4, Concurrency: 6, Shared: rec, RequireOwnCanary: true})
		// Concurrent first misses may load twice; later invocations hit.
		if loads < 3 || loads >= rep.Invocations {
			t.Errorf("%d loads for %d invocations: the cache did not serve", loads, rep.Invocations)
		}
	})
	if !strings.Contains(rec.String(), e.projects["globex"]) {
		t.Errorf("the shared log captured nothing")
	}
}
