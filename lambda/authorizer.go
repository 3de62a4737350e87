package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// The keys of the authorizer context, as API Gateway passes it on: in
// requestContext.authorizer.lambda for an HTTP API, in
// requestContext.authorizer for a REST API. Every value is a string, which
// both kinds of API carry unchanged.
const (
	ContextKey  = "context"   // the signed tenant context, v1.<kid>.<payload>.<mac>
	SchemaKey   = "schema"    // "app" for a pool tenant, "t_<32 hex>" for a silo
	TenantKey   = "tenant"    // the tenant's slug
	TenantIDKey = "tenant_id" // the tenant's UUID
	SubjectKey  = "sub"       // the caller's subject
	RoleKey     = "role"      // the caller's role in the tenant
	// The tenant's plan's bounds on a statement, when the authorizer has
	// them (AuthorizerConfig.Limits): whole milliseconds, and a count.
	StatementTimeoutKey = "statement_timeout_ms"
	ParallelWorkersKey  = "parallel_workers"
)

// Limits are a plan's bounds on each statement of the function's
// transactions. The authorizer passes the tenant's plan's to the adapter,
// whose [Scope.Tx] sets them in each transaction (as
// bulkhead.WithStatementTimeout and bulkhead.WithParallelWorkers do).
// They bound honest code: a compromised function can change its own
// settings, and its login role's connection limit, temp_file_limit and
// bulkhead serve's watchdog are the bounds it cannot lift.
type Limits struct {
	// StatementTimeout is statement_timeout: from 1ms to an hour, or 0
	// for the function's own (bulkhead.Config.StatementTimeout).
	StatementTimeout time.Duration
	// ParallelWorkers is max_parallel_workers_per_gather: a statement with
	// n workers keeps n+1 CPUs busy. 0 runs each statement in its one
	// backend, as bulkhead serve's plans do by default.
	ParallelWorkers int
}

// Log attribute keys.
const (
	keyTenantID  = "tenant_id"
	keySub       = "sub"
	keyRequestID = "request_id"
	keyErr       = "err"
	keyOp        = "op"
)

// AuthorizerConfig configures NewAuthorizer.
type AuthorizerConfig struct {
	// DB is a minter: opened with Config.DatabaseURL, it holds the
	// signing keys. Only the authorizer's process may hold one.
	DB *bulkhead.DB
	// Verifier verifies the caller's bearer JWT: bulkhead's *Auth (its own
	// issuer, and external IdPs through JWKS), or an *identity.Verifier.
	Verifier bulkhead.TokenVerifier
	// Audience is the login role of the business function behind the
	// routes this authorizer guards (bulkhead_fn_<name>). Every context is
	// bound to it, so it is useless under any other role.
	Audience string
	// Logger receives the reason of every deny, which the caller never
	// sees. Nil discards.
	Logger *slog.Logger
	// PolicyResource returns the resource a REST API Allow statement
	// covers; nil means the request's method ARN.
	PolicyResource func(methodArn string) string
	// Limits are the statement limits of each plan, by the plan's name
	// ("basic", "premium"): the authorizer context carries the tenant's
	// plan's ([StatementTimeoutKey], [ParallelWorkersKey]). A tenant whose
	// plan is not in the map, or a nil map, gets none, and the
	// function's own bulkhead.Config.StatementTimeout applies.
	Limits map[string]Limits
}

// Authorizer is an API Gateway Lambda authorizer that verifies the
// caller's bearer JWT, resolves the tenant and mints a signed tenant
// context for one business function. It is safe for concurrent use.
//
// On success the authorizer context carries [ContextKey], [SchemaKey],
// [TenantKey], [TenantIDKey], [SubjectKey] and [RoleKey]. Any failure (no
// token, a forged, expired or platform-admin token, an unknown or suspended
// tenant, the database down) is a plain deny without a context, and the
// reason is logged.
type Authorizer struct {
	cfg AuthorizerConfig
}

var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// NewAuthorizer checks cfg and returns an authorizer.
func NewAuthorizer(cfg AuthorizerConfig) (*Authorizer, error) {
	switch {
	case cfg.DB == nil || cfg.DB.Postgres() == nil:
		return nil, fault.E(fault.Invalid, "invalid_config", "The authorizer needs a minter: open bulkhead with Config.DatabaseURL.")
	case cfg.Verifier == nil:
		return nil, fault.E(fault.Invalid, "invalid_config", "The authorizer needs a token verifier.")
	case !roleName.MatchString(cfg.Audience):
		return nil, fault.E(fault.Invalid, "invalid_config", "The authorizer's Audience must be the business function's login role.")
	}
	for plan, l := range cfg.Limits {
		if l.StatementTimeout < 0 || l.StatementTimeout > 0 && l.StatementTimeout < time.Millisecond || l.StatementTimeout > bulkhead.MaxStatementTimeout || l.ParallelWorkers < 0 || l.ParallelWorkers > postgres.MaxParallelWorkers {
			return nil, fault.E(fault.Invalid, "invalid_config", fmt.Sprintf("The limits of plan %q are out of range: a statement timeout from 1ms to 1h (or 0), and 0 to %d parallel workers.", plan, postgres.MaxParallelWorkers))
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{cfg: cfg}, nil
}

// HTTP answers an HTTP API's Lambda authorizer (payload format 2.0, simple
// responses enabled). The token comes from the Authorization header.
func (a *Authorizer) HTTP(ctx context.Context, req events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error) {
	h := http.Header{}
	for k, v := range req.Headers {
		h[k] = append(h[k], v)
	}
	c, err := a.authorize(ctx, h, req.RequestContext.RequestID)
	if err != nil {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}, nil
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: c}, nil
}

// REST answers a REST API's REQUEST authorizer with an IAM policy. The
// token comes from the Authorization header.
func (a *Authorizer) REST(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	h := http.Header{}
	for k, vs := range req.MultiValueHeaders {
		h[k] = append(h[k], vs...)
	}
	for k, v := range req.Headers {
		// Headers repeats the last of each MultiValueHeaders entry.
		if !hasFold(req.MultiValueHeaders, k) {
			h[k] = append(h[k], v)
		}
	}
	return a.policy(ctx, h, req.MethodArn, req.RequestContext.RequestID)
}

// Token answers a REST API's TOKEN authorizer with an IAM policy: the
// token source (usually the Authorization header) is "Bearer <jwt>".
func (a *Authorizer) Token(ctx context.Context, req events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	return a.policy(ctx, http.Header{"Authorization": {req.AuthorizationToken}}, req.MethodArn, "")
}

func (a *Authorizer) policy(ctx context.Context, h http.Header, methodArn, requestID string) (events.APIGatewayCustomAuthorizerResponse, error) {
	c, err := a.authorize(ctx, h, requestID)
	if err != nil {
		res := methodArn
		if res == "" {
			res = "*"
		}
		return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "anonymous", PolicyDocument: statement("Deny", res)}, nil
	}
	res := methodArn
	if a.cfg.PolicyResource != nil {
		res = a.cfg.PolicyResource(methodArn)
	}
	principal, _ := c[SubjectKey].(string)
	if principal == "" {
		principal = "tenant:" + c[TenantIDKey].(string)
	}
	return events.APIGatewayCustomAuthorizerResponse{PrincipalID: principal, PolicyDocument: statement("Allow", res), Context: c}, nil
}

func statement(effect, resource string) events.APIGatewayCustomAuthorizerPolicy {
	return events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{
		{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource}},
	}}
}

// errPlatformToken denies platform-admin tokens: they carry no tenant.
var errPlatformToken = errors.New("a platform-admin token carries no tenant")

// requestIDPattern bounds what is copied from the event into the context's
// rid claim (and from there into audit events).
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9=_.:-]{1,128}$`)

// authorize verifies the bearer token in h and returns the authorizer
// context. Errors are logged here and never returned to API Gateway.
func (a *Authorizer) authorize(ctx context.Context, h http.Header, requestID string) (c map[string]any, err error) {
	var p tenant.Principal
	defer func() {
		if err != nil {
			a.denied(ctx, err, requestID, p)
		}
	}()
	tok, err := identity.ExtractBearer(h)
	if err != nil {
		return nil, err
	}
	if p, err = a.cfg.Verifier.Verify(ctx, tok); err != nil {
		return nil, err
	}
	if p.Platform {
		return nil, errPlatformToken
	}
	t, err := a.cfg.DB.ResolveTenant(ctx, p)
	if err != nil {
		return nil, err
	}
	p.Tenant, p.TenantID = t.Slug, t.ID
	rid := requestID
	if !requestIDPattern.MatchString(rid) {
		rid = ""
	}
	sc, err := a.cfg.DB.Mint(ctx, p, bulkhead.MintOptions{Audience: a.cfg.Audience, RequestID: rid})
	if err != nil {
		return nil, err
	}
	schema, err := postgres.Schema(sc.Placement)
	if err != nil {
		return nil, err
	}
	a.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "authorizer allowed",
		slog.String(keyRequestID, requestID), slog.String(keyTenantID, string(t.ID)), slog.String(keySub, p.Subject))
	c = map[string]any{
		ContextKey: sc.Token, SchemaKey: schema,
		TenantKey: string(t.Slug), TenantIDKey: string(t.ID),
		SubjectKey: p.Subject, RoleKey: string(p.Role),
	}
	if l, ok := a.cfg.Limits[t.Plan]; ok {
		if l.StatementTimeout > 0 {
			c[StatementTimeoutKey] = strconv.FormatInt(l.StatementTimeout.Milliseconds(), 10)
		}
		c[ParallelWorkersKey] = strconv.Itoa(l.ParallelWorkers)
	}
	return c, nil
}

// denied logs why a request was denied: Info for a missing token, Warn
// (a security signal) for a token that does not verify or carries no
// usable tenant, Error when the authorizer itself failed.
func (a *Authorizer) denied(ctx context.Context, err error, requestID string, p tenant.Principal) {
	level := slog.LevelWarn
	switch {
	case errors.Is(err, identity.ErrMissingToken):
		level = slog.LevelInfo
	case errors.Is(err, errPlatformToken):
	default:
		switch fault.KindOf(err) {
		case fault.Internal, fault.Unavailable:
			level = slog.LevelError
		case fault.Canceled:
			level = slog.LevelInfo
		}
	}
	a.cfg.Logger.LogAttrs(ctx, level, "authorizer denied",
		slog.String(keyRequestID, requestID), slog.String(keyTenantID, string(p.TenantID)),
		slog.String(keySub, p.Subject), slog.String(keyErr, err.Error()), slog.String(keyOp, "lambda.Authorizer"))
}

func hasFold[V any](m map[string]V, name string) bool {
	for k := range m {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
