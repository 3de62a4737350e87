package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// HTTPHandler is a business handler for an HTTP API (payload format 2.0).
type HTTPHandler func(ctx context.Context, s *Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// RESTHandler is a business handler for a REST API (Lambda proxy
// integration).
type RESTHandler func(ctx context.Context, s *Scope, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// Wrap returns a handler for lambda.Start that runs h with the invocation's
// [Scope]. db must be a business-code handle, opened with
// Config.AppDatabaseURL as the function's own login role; Wrap panics
// otherwise, because a process that runs business code must hold no
// signing key. It is (&Adapter{DB: db}).HTTP(h).
func Wrap(db *bulkhead.DB, h func(ctx context.Context, s *Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return (&Adapter{DB: db}).HTTP(h)
}

// WrapREST is [Wrap] for a REST API's Lambda proxy integration.
func WrapREST(db *bulkhead.DB, h func(ctx context.Context, s *Scope, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return (&Adapter{DB: db}).REST(h)
}

// Adapter turns API Gateway events carrying an [Authorizer]'s context into
// scoped invocations. Set its fields, then call HTTP or REST once, at
// start-up; do not change them afterwards. One Adapter may serve several
// handlers.
type Adapter struct {
	// DB is the business-code handle (Config.AppDatabaseURL). Required.
	DB *bulkhead.DB
	// Cache backs [Scope.Cache]; nil means a TenantCache with the default
	// bounds.
	Cache *TenantCache[any]
	// Logger receives refusals (Warn: a missing, expired or tampered
	// context) with the API Gateway request id. Nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once      sync.Once
	confirmed confirmedContexts
}

func (a *Adapter) init() {
	a.once.Do(func() {
		if a.DB == nil {
			panic("lambda: Adapter.DB is nil")
		}
		if a.DB.Postgres() != nil {
			panic("lambda: the adapter needs a business-code DB (bulkhead.Config.AppDatabaseURL); this one is a minter and holds signing keys")
		}
		if a.Cache == nil {
			a.Cache = NewTenantCache[any](CacheConfig{})
		}
		if a.Logger == nil {
			a.Logger = slog.New(slog.DiscardHandler)
		}
		if a.Now == nil {
			a.Now = time.Now
		}
	})
}

// HTTP returns a handler for an HTTP API route behind the authorizer
// ([Authorizer.HTTP], simple responses). It reads the context from
// requestContext.authorizer.lambda, strips every Authorization header and
// the signed context from the request h sees, and ends the scope when h
// returns. A request without a usable context gets 401 and h does not run.
func (a *Adapter) HTTP(h HTTPHandler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a.init()
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var auth map[string]any
		if req.RequestContext.Authorizer != nil {
			auth = req.RequestContext.Authorizer.Lambda
		}
		s, err := a.scope(auth)
		if err != nil {
			a.refused(ctx, err, req.RequestContext.RequestID)
			return events.APIGatewayV2HTTPResponse{StatusCode: 401, Headers: refusedHeaders(), Body: refusedBody}, nil
		}
		defer s.end()
		// Isolation (D05): a compromised handler must not harvest user
		// JWTs to exchange for contexts, nor keep the signed context.
		req.Headers = withoutAuthorization(req.Headers)
		d := *req.RequestContext.Authorizer
		d.Lambda = withoutContext(d.Lambda)
		req.RequestContext.Authorizer = &d
		return h(ctx, s, req)
	}
}

// REST returns a handler for a REST API resource behind the authorizer
// ([Authorizer.REST] or [Authorizer.Token]), through the Lambda proxy
// integration: the context is in requestContext.authorizer. Otherwise it
// behaves as HTTP.
func (a *Adapter) REST(h RESTHandler) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	a.init()
	return func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		s, err := a.scope(req.RequestContext.Authorizer)
		if err != nil {
			a.refused(ctx, err, req.RequestContext.RequestID)
			return events.APIGatewayProxyResponse{StatusCode: 401, Headers: refusedHeaders(), Body: refusedBody}, nil
		}
		defer s.end()
		// Isolation (D05): as in HTTP.
		req.Headers = withoutAuthorization(req.Headers)
		req.MultiValueHeaders = withoutAuthorization(req.MultiValueHeaders)
		req.RequestContext.Authorizer = withoutContext(req.RequestContext.Authorizer)
		return h(ctx, s, req)
	}
}

// refusedBody is the one answer to every refused invocation: it says
// nothing about why.
const refusedBody = `{"type":"about:blank","title":"Unauthorized","status":401,"code":"invalid_context","detail":"The tenant context is missing or not valid."}`

func refusedHeaders() map[string]string {
	return map[string]string{"Content-Type": "application/problem+json"}
}

func (a *Adapter) refused(ctx context.Context, err error, requestID string) {
	a.Logger.LogAttrs(ctx, slog.LevelWarn, "invocation refused",
		slog.String(keyRequestID, requestID), slog.String(keyErr, err.Error()), slog.String(keyOp, "lambda.Adapter"))
}

// scope builds the invocation's scope from the authorizer context.
//
// Isolation: the scope's tenant and principal come from the signed context
// itself, never from the loose keys beside it; loose keys that disagree
// with it, a context for another login role or already expired, and a silo
// schema that is not the context's tenant's are refused here, before the
// handler runs. PostgreSQL verifies the context again on every transaction.
func (a *Adapter) scope(auth map[string]any) (*Scope, error) {
	tok, ok := auth[ContextKey].(string)
	if !ok || tok == "" {
		return nil, errors.New("no signed tenant context in the authorizer context; is the route behind the bulkhead authorizer?")
	}
	// The claims, WITHOUT verifying the MAC: the adapter holds no key, and
	// PostgreSQL verifies the context on every transaction. They are read
	// as PostgreSQL reads them (exact keys, none twice), so the scope
	// cannot name one tenant while the database reads another; before
	// they key a cache, the database confirms them.
	c, err := ctxtoken.Decode(tok)
	if err != nil {
		return nil, err
	}
	id, err := tenant.ParseID(c.TenantID)
	if err != nil {
		return nil, fmt.Errorf("context tenant_id: %w", err)
	}
	schemaIn, _ := auth[SchemaKey].(string)
	schema, err := postgres.Schema(schemaIn)
	if err != nil || schemaIn == "" {
		return nil, fmt.Errorf("invalid schema %q", schemaIn)
	}
	if schema != postgres.PoolSchema && schema != id.SchemaName() {
		return nil, errors.New("the schema is another tenant's silo")
	}
	for _, kv := range [...][2]string{{TenantKey, c.Tenant}, {TenantIDKey, c.TenantID}, {SubjectKey, c.Subject}, {RoleKey, c.Role}} {
		v, present := auth[kv[0]]
		if !present {
			continue
		}
		if s, ok := v.(string); !ok || s != kv[1] {
			return nil, fmt.Errorf("authorizer context key %q disagrees with the signed context", kv[0])
		}
	}
	if role := a.DB.AppRole(); c.Audience != role {
		return nil, fmt.Errorf("context for login role %q, this function is %q", c.Audience, role)
	}
	if !a.Now().Before(time.Unix(c.ExpiresAt, 0)) {
		return nil, errors.New("context expired before the invocation; is the authorizer result TTL longer than the context lifetime?")
	}
	ms, err := limit(auth, StatementTimeoutKey, 1, bulkhead.MaxStatementTimeout.Milliseconds())
	if err != nil {
		return nil, err
	}
	workers, err := limit(auth, ParallelWorkersKey, 0, postgres.MaxParallelWorkers)
	if err != nil {
		return nil, err
	}
	return &Scope{a: a, token: tok, schema: schema, claims: c, timeout: time.Duration(max(ms, 0)) * time.Millisecond, workers: int(workers)}, nil
}

// limit reads a statement limit from the authorizer context: a decimal
// integer from lo to hi. An absent key is -1 (none); any other value is
// refused, as a key that disagrees with the signed context is.
func limit(auth map[string]any, key string, lo, hi int64) (int64, error) {
	v, present := auth[key]
	if !present {
		return -1, nil
	}
	text, _ := v.(string)
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < lo || n > hi || strconv.FormatInt(n, 10) != text {
		return 0, fmt.Errorf("authorizer context key %q is not an integer from %d to %d", key, lo, hi)
	}
	return n, nil
}

// withoutAuthorization returns a copy of h without any spelling of the
// Authorization header.
func withoutAuthorization[V any](h map[string]V) map[string]V {
	if h == nil {
		return nil
	}
	out := make(map[string]V, len(h))
	for k, v := range h {
		if !strings.EqualFold(k, "Authorization") {
			out[k] = v
		}
	}
	return out
}

// withoutContext returns a copy of an authorizer context without the
// signed context.
func withoutContext(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != ContextKey {
			out[k] = v
		}
	}
	return out
}
