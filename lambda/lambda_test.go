package lambda_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/lambda"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// syncBuffer is a log sink tests read while handlers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a bulkhead server on a fresh database with two tenants (acme in
// the pool, globex in a silo), one project each, a business function
// ("projects") and a second function ("billing"), the authorizer for the
// projects function, and the function's own business-code handle.
type env struct {
	s              *apitest.Server
	acme, globex   *apitest.Tenant
	projects       map[string]string // slug → its project's name: the canaries
	fn, other      *postgres.FunctionCredentials
	app            *bulkhead.DB
	authz          *lambda.Authorizer
	authzLog       *syncBuffer
	adapterLog     *syncBuffer
	adapter        *lambda.Adapter
	globexSchema   string
	acmeID, globID tenant.ID
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	s := apitest.Start(t, apitest.Options{})
	e := &env{s: s, projects: map[string]string{}, authzLog: &syncBuffer{}, adapterLog: &syncBuffer{}}
	e.acme = s.CreateTenant(t, "acme", "pool")
	e.globex = s.CreateTenant(t, "globex", "silo")
	e.acmeID, e.globID = tenant.ID(e.acme.UUID), tenant.ID(e.globex.UUID)
	e.globexSchema = e.globID.SchemaName()
	for _, tn := range []*apitest.Tenant{e.acme, e.globex} {
		e.projects[tn.Slug] = e.seedProject(t, tn, "canary-"+tn.Slug+"-"+tn.UUID[:8])
	}
	// Login roles are cluster-wide: names are unique per test.
	suffix := e.acme.UUID[:8]
	var err error
	if e.fn, err = s.DB.Postgres().CreateFunction(ctx, "projects_"+suffix); err != nil {
		t.Fatal(err)
	}
	if e.other, err = s.DB.Postgres().CreateFunction(ctx, "billing_"+suffix); err != nil {
		t.Fatal(err)
	}
	if e.app, err = bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: s.PG.URL(e.fn.LoginRole, e.fn.Password)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.app.Close)
	e.authz, err = lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: s.DB, Verifier: s.Auth, Audience: e.fn.LoginRole,
		Logger: slog.New(slog.NewTextHandler(e.authzLog, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	e.adapter = &lambda.Adapter{DB: e.app, Logger: slog.New(slog.NewTextHandler(e.adapterLog, nil))}
	return e
}

func (e *env) seedProject(t testing.TB, tn *apitest.Tenant, name string) string {
	t.Helper()
	r := e.s.Do(t, "POST", "/rest/v1/projects", tn.AdminToken, map[string]string{"name": name})
	if r.Status != 201 {
		t.Fatalf("seed project for %s: %s", tn.Slug, r)
	}
	return name
}

// fixture reads a testdata event, with the user's token in place of
// USER_TOKEN, into v.
func fixture(t testing.TB, name, token string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte("USER_TOKEN"), []byte(token))
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// roundTrip sends v through JSON, as API Gateway and the Lambda runtime do.
func roundTrip[T any](t testing.TB, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// authorize runs the HTTP API authorizer in-process for a user's token.
func (e *env) authorize(t testing.TB, token string) events.APIGatewayV2CustomAuthorizerSimpleResponse {
	t.Helper()
	var req events.APIGatewayV2CustomAuthorizerV2Request
	fixture(t, "http-authorizer-request.json", token, &req)
	res, err := e.authz.HTTP(context.Background(), roundTrip(t, req))
	if err != nil {
		t.Fatalf("authorizer returned an error: %v", err)
	}
	return roundTrip(t, res)
}

// contextFor returns the authorizer context for a user, failing if denied.
func (e *env) contextFor(t testing.TB, token string) map[string]any {
	t.Helper()
	res := e.authorize(t, token)
	if !res.IsAuthorized {
		t.Fatalf("authorizer denied a valid token; log:\n%s", e.authzLog)
	}
	return res.Context
}

// httpRequest is the HTTP API request API Gateway sends the function once
// the authorizer returned auth (nil: no authorizer context at all).
func httpRequest(t testing.TB, token string, auth map[string]any) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var req events.APIGatewayV2HTTPRequest
	fixture(t, "http-request.json", token, &req)
	if auth == nil {
		req.RequestContext.Authorizer = nil
	} else {
		req.RequestContext.Authorizer.Lambda = maps.Clone(auth)
	}
	return roundTrip(t, req)
}

// listing is what the projects handler answers.
type listing struct {
	Tenant   string   `json:"tenant"`
	Schema   string   `json:"schema"`
	Projects []string `json:"projects"`
	Err      string   `json:"err,omitempty"`
}

// seen records what a handler was handed.
type seen struct {
	mu      sync.Mutex
	ran     int
	headers []map[string]string
	mvh     []map[string][]string
	auth    []map[string]any
	scopes  []*lambda.Scope
}

func (s *seen) add(sc *lambda.Scope, h map[string]string, mvh map[string][]string, auth map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ran++
	s.headers, s.mvh, s.auth, s.scopes = append(s.headers, h), append(s.mvh, mvh), append(s.auth, auth), append(s.scopes, sc)
}

// list reads the scope's tenant's projects through the scope.
func list(ctx context.Context, s *lambda.Scope) listing {
	out := listing{Tenant: string(s.Tenant()), Schema: s.Schema(), Projects: []string{}}
	tbl, err := s.Table("projects")
	if err != nil {
		out.Err = err.Error()
		return out
	}
	err = s.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name FROM `+tbl+` ORDER BY name`)
		if err != nil {
			return err
		}
		out.Projects, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		out.Err = err.Error()
	}
	return out
}

func jsonResponse(v any) events.APIGatewayV2HTTPResponse {
	b, _ := json.Marshal(v)
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

func (sn *seen) httpHandler() lambda.HTTPHandler {
	return func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		sn.add(s, req.Headers, nil, req.RequestContext.Authorizer.Lambda)
		return jsonResponse(list(ctx, s)), nil
	}
}

func decodeListing(t testing.TB, res events.APIGatewayV2HTTPResponse) listing {
	t.Helper()
	var l listing
	if res.StatusCode != 200 || json.Unmarshal([]byte(res.Body), &l) != nil {
		t.Fatalf("response %d %s", res.StatusCode, res.Body)
	}
	return l
}

func TestHTTPAuthorizerAndHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sn := &seen{}
	h := e.adapter.HTTP(sn.httpHandler())
	for _, tt := range []struct {
		name, token, slug, schema, role string
	}{
		{"PoolMember", e.acme.MemberToken, "acme", "app", "member"},
		{"PoolAdmin", e.acme.AdminToken, "acme", "app", "admin"},
		{"SiloMember", e.globex.MemberToken, "globex", e.globexSchema, "member"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			auth := e.contextFor(t, tt.token)
			want := map[string]string{lambda.TenantKey: tt.slug, lambda.SchemaKey: tt.schema, lambda.RoleKey: tt.role}
			for k, v := range want {
				if auth[k] != v {
					t.Errorf("authorizer context %s = %v, want %s", k, auth[k], v)
				}
			}
			tok, _ := auth[lambda.ContextKey].(string)
			if _, err := ctxtoken.KeyID(tok); err != nil {
				t.Fatalf("authorizer context has no signed context: %v", auth)
			}
			if tid, _ := auth[lambda.TenantIDKey].(string); tid == "" || auth[lambda.SubjectKey] == "" {
				t.Errorf("authorizer context lacks tenant_id or sub: %v", auth)
			}
			before := sn.ran
			res, err := h(context.Background(), httpRequest(t, tt.token, auth))
			if err != nil {
				t.Fatal(err)
			}
			got := decodeListing(t, res)
			if got.Err != "" || len(got.Projects) != 1 || got.Projects[0] != e.projects[tt.slug] || got.Tenant != tt.slug || got.Schema != tt.schema {
				t.Fatalf("handler for %s = %+v, want its one project %q", tt.slug, got, e.projects[tt.slug])
			}
			sn.mu.Lock()
			defer sn.mu.Unlock()
			if sn.ran != before+1 {
				t.Fatalf("handler ran %d times", sn.ran-before)
			}
			last := len(sn.headers) - 1
			for k := range sn.headers[last] {
				if strings.EqualFold(k, "authorization") {
					t.Errorf("the handler saw the %s header", k)
				}
			}
			if _, ok := sn.headers[last]["user-agent"]; !ok {
				t.Errorf("other headers were stripped too: %v", sn.headers[last])
			}
			if _, ok := sn.auth[last][lambda.ContextKey]; ok {
				t.Errorf("the handler saw the signed context in the authorizer context")
			}
			p := sn.scopes[last].Principal()
			if string(p.Tenant) != tt.slug || string(p.Role) != tt.role || p.Subject != auth[lambda.SubjectKey] || p.Token != "" {
				t.Errorf("Principal() = %+v", p)
			}
			if s := sn.scopes[last].String(); strings.Contains(s, tok) || strings.Contains(sn.scopes[last].GoString(), tok) {
				t.Errorf("Scope.String leaks the context: %s", s)
			}
		})
	}
	if strings.Contains(e.authzLog.String(), e.acme.MemberToken) || !strings.Contains(e.authzLog.String(), "authorizer allowed") {
		t.Errorf("authorizer log:\n%s", e.authzLog)
	}
}

func TestRESTAuthorizerAndHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sn := &seen{}
	h := e.adapter.REST(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		sn.add(s, req.Headers, req.MultiValueHeaders, req.RequestContext.Authorizer)
		b, _ := json.Marshal(list(ctx, s))
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: string(b)}, nil
	})
	const methodArn = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/GET/projects"
	authorizers := map[string]func(token string) events.APIGatewayCustomAuthorizerResponse{
		"Request": func(token string) events.APIGatewayCustomAuthorizerResponse {
			var req events.APIGatewayCustomAuthorizerRequestTypeRequest
			fixture(t, "rest-authorizer-request.json", token, &req)
			res, err := e.authz.REST(context.Background(), roundTrip(t, req))
			if err != nil {
				t.Fatal(err)
			}
			return roundTrip(t, res)
		},
		"Token": func(token string) events.APIGatewayCustomAuthorizerResponse {
			var req events.APIGatewayCustomAuthorizerRequest
			fixture(t, "rest-token-authorizer-request.json", token, &req)
			res, err := e.authz.Token(context.Background(), roundTrip(t, req))
			if err != nil {
				t.Fatal(err)
			}
			return roundTrip(t, res)
		},
	}
	for name, authorize := range authorizers {
		t.Run(name, func(t *testing.T) {
			for _, tn := range []*apitest.Tenant{e.acme, e.globex} {
				res := authorize(tn.MemberToken)
				st := res.PolicyDocument.Statement
				if len(st) != 1 || st[0].Effect != "Allow" || st[0].Resource[0] != methodArn || st[0].Action[0] != "execute-api:Invoke" {
					t.Fatalf("policy = %+v", res.PolicyDocument)
				}
				if res.PrincipalID == "" || res.PrincipalID != res.Context[lambda.SubjectKey] {
					t.Errorf("principalId %q, context %v", res.PrincipalID, res.Context)
				}
				var req events.APIGatewayProxyRequest
				fixture(t, "rest-request.json", tn.MemberToken, &req)
				// API Gateway passes the context on, with principalId and
				// integrationLatency beside it.
				auth := maps.Clone(res.Context)
				auth["principalId"], auth["integrationLatency"] = res.PrincipalID, 12
				req.RequestContext.Authorizer = auth
				out, err := h(context.Background(), roundTrip(t, req))
				if err != nil {
					t.Fatal(err)
				}
				var got listing
				json.Unmarshal([]byte(out.Body), &got)
				if out.StatusCode != 200 || len(got.Projects) != 1 || got.Projects[0] != e.projects[tn.Slug] {
					t.Fatalf("REST handler for %s = %d %s", tn.Slug, out.StatusCode, out.Body)
				}
				sn.mu.Lock()
				last := len(sn.headers) - 1
				for k := range sn.headers[last] {
					if strings.EqualFold(k, "authorization") {
						t.Errorf("the handler saw header %s", k)
					}
				}
				for k := range sn.mvh[last] {
					if strings.EqualFold(k, "authorization") {
						t.Errorf("the handler saw multi-value header %s", k)
					}
				}
				if _, ok := sn.auth[last][lambda.ContextKey]; ok || sn.auth[last]["principalId"] == nil {
					t.Errorf("authorizer context the handler saw: %v", sn.auth[last])
				}
				sn.mu.Unlock()
			}
		})
	}
}

// forgeJWT returns variants of a valid user JWT that must never verify.
func forgeJWT(tok string) map[string]string {
	parts := strings.Split(tok, ".")
	flip := []byte(parts[2])
	if flip[0] == 'A' {
		flip[0] = 'B'
	} else {
		flip[0] = 'A'
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return map[string]string{
		"ForgedSignature": parts[0] + "." + parts[1] + "." + string(flip),
		"AlgNone":         none + "." + parts[1] + ".",
		"NoSignature":     parts[0] + "." + parts[1],
	}
}

func TestAuthorizerDenies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	type headers map[string]string
	cases := []struct {
		name string
		h    headers
	}{
		{"NoToken", headers{}},
		{"Garbage", headers{"authorization": "Bearer garbage"}},
		{"Basic", headers{"authorization": "Basic dXNlcjpwYXNz"}},
		{"PlatformAdmin", headers{"authorization": "Bearer " + e.s.AdminToken}},
		{"TwoSpellings", headers{"authorization": "Bearer " + e.acme.MemberToken, "Authorization": "Bearer " + e.globex.MemberToken}},
		{"TwoTokensInOne", headers{"authorization": "Bearer " + e.acme.MemberToken + ",Bearer " + e.globex.MemberToken}},
	}
	for name, tok := range forgeJWT(e.acme.MemberToken) {
		cases = append(cases, struct {
			name string
			h    headers
		}{name, headers{"authorization": "Bearer " + tok}})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var req events.APIGatewayV2CustomAuthorizerV2Request
			fixture(t, "http-authorizer-request.json", "x", &req)
			req.Headers = map[string]string{"accept": "application/json"}
			maps.Copy(req.Headers, tt.h)
			res, err := e.authz.HTTP(ctx, req)
			if err != nil || res.IsAuthorized || res.Context != nil {
				t.Fatalf("HTTP authorizer = %+v, %v, want a bare deny", res, err)
			}
			if b, _ := json.Marshal(res); string(b) != `{"isAuthorized":false}` {
				t.Errorf("deny response %s says more than no", b)
			}
			var rreq events.APIGatewayCustomAuthorizerRequestTypeRequest
			fixture(t, "rest-authorizer-request.json", "x", &rreq)
			rreq.Headers, rreq.MultiValueHeaders = map[string]string(tt.h), nil
			rres, err := e.authz.REST(ctx, rreq)
			if err != nil || rres.Context != nil || rres.PolicyDocument.Statement[0].Effect != "Deny" || rres.PrincipalID != "anonymous" {
				t.Fatalf("REST authorizer = %+v, %v, want a bare deny", rres, err)
			}
			if len(tt.h) == 1 {
				for _, v := range tt.h {
					tres, _ := e.authz.Token(ctx, events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: v, MethodArn: rreq.MethodArn})
					if tres.Context != nil || tres.PolicyDocument.Statement[0].Effect != "Deny" {
						t.Fatalf("TOKEN authorizer = %+v, want a deny", tres)
					}
				}
			}
		})
	}
	t.Run("Expired", func(t *testing.T) {
		// The same token, an hour later: verified by an authorizer whose
		// clock is an hour ahead.
		later := func() time.Time { return time.Now().Add(time.Hour) }
		db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: e.s.PG.AdminURL, Now: later})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer auth.Close()
		az, err := lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: db, Verifier: auth, Audience: e.fn.LoginRole})
		if err != nil {
			t.Fatal(err)
		}
		var req events.APIGatewayV2CustomAuthorizerV2Request
		fixture(t, "http-authorizer-request.json", e.acme.MemberToken, &req)
		if res, _ := az.HTTP(ctx, req); res.IsAuthorized || res.Context != nil {
			t.Fatalf("expired token: %+v", res)
		}
	})
	t.Run("SuspendedTenant", func(t *testing.T) {
		tn := e.s.CreateTenant(t, "initech", "pool")
		if r := e.s.Do(t, "PATCH", "/v1/tenants/initech", e.s.AdminToken, map[string]string{"status": "suspended"}); r.Status != 200 {
			t.Fatalf("suspend: %s", r)
		}
		e.s.DB.ForgetTenant(tenant.ID(tn.UUID))
		if res := e.authorize(t, tn.MemberToken); res.IsAuthorized {
			t.Fatalf("a suspended tenant's user was authorized: %+v", res)
		}
	})
	log := e.authzLog.String()
	if !strings.Contains(log, "authorizer denied") || strings.Contains(log, e.acme.MemberToken) || strings.Contains(log, e.s.AdminToken) {
		t.Errorf("authorizer log must give reasons and no tokens:\n%s", log)
	}
}

func TestNewAuthorizerChecksConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		name string
		cfg  lambda.AuthorizerConfig
	}{
		{"NoDB", lambda.AuthorizerConfig{Verifier: e.s.Auth, Audience: e.fn.LoginRole}},
		{"BusinessDB", lambda.AuthorizerConfig{DB: e.app, Verifier: e.s.Auth, Audience: e.fn.LoginRole}},
		{"NoVerifier", lambda.AuthorizerConfig{DB: e.s.DB, Audience: e.fn.LoginRole}},
		{"NoAudience", lambda.AuthorizerConfig{DB: e.s.DB, Verifier: e.s.Auth}},
		{"BadAudience", lambda.AuthorizerConfig{DB: e.s.DB, Verifier: e.s.Auth, Audience: "x; DROP"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := lambda.NewAuthorizer(tt.cfg); fault.KindOf(err) != fault.Invalid {
				t.Errorf("NewAuthorizer = %v, want Invalid", err)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("Wrap accepted a minter")
		}
	}()
	lambda.Wrap(e.s.DB, nil)
}

// mintRaw mints a context with the database's context key, as only a
// trusted party can, with any claims: to make old contexts for tests.
func (e *env) mintRaw(t testing.TB, tn *apitest.Tenant, aud string, iat time.Time, ttl time.Duration) string {
	t.Helper()
	k, err := e.s.DB.Postgres().SigningKey(context.Background(), postgres.KeyContext)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ctxtoken.Mint(ctxtoken.Key{ID: k.ID, Secret: k.Secret}, ctxtoken.Claims{
		Tenant: tn.Slug, TenantID: tn.UUID, Subject: "old-user", Role: "admin",
		Scope: []string{"select", "insert", "update", "delete"}, IssuedAt: iat.Unix(), ExpiresAt: iat.Add(ttl).Unix(), Audience: aud,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// editClaims changes a context's payload and keeps its MAC: what only
// someone without the key can do.
func editClaims(t testing.TB, tok string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	raw, _ = json.Marshal(c)
	parts[2] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// rawClaims returns tok with its payload's JSON text edited by edit, the
// MAC left as it was.
func rawClaims(t testing.TB, tok string, edit func(string) string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	parts[2] = base64.RawURLEncoding.EncodeToString([]byte(edit(string(raw))))
	return strings.Join(parts, ".")
}

func TestTamperedAuthorizerContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.contextFor(t, e.acme.MemberToken)
	globex := e.contextFor(t, e.globex.MemberToken)
	now := time.Now()
	with := func(base map[string]any, kv ...any) map[string]any {
		m := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	// A context edited to name globex, loose keys to match: the adapter
	// cannot check the MAC; PostgreSQL can.
	edited := editClaims(t, acme[lambda.ContextKey].(string), func(c map[string]any) {
		c["tenant_id"], c["tenant"] = e.globex.UUID, "globex"
	})
	// A context whose payload names acme in the keys PostgreSQL reads and
	// globex in case-colliding ones, which Go's encoding/json would read
	// instead; the loose keys name globex. Decoded as PostgreSQL decodes
	// it, it is refused before the handler runs.
	colliding := rawClaims(t, acme[lambda.ContextKey].(string), func(payload string) string {
		return strings.TrimSuffix(payload, "}") + `,"TENANT_ID":"` + e.globex.UUID + `","TENANT":"globex","SUB":"` + globex[lambda.SubjectKey].(string) + `"}`
	})
	const refused, empty = "refused", "empty"
	for _, tt := range []struct {
		name string
		auth map[string]any
		want string
	}{
		{"NoAuthorizer", nil, refused},
		{"NoContext", with(acme, lambda.ContextKey, nil), refused},
		{"MalformedContext", with(acme, lambda.ContextKey, "v1.x"), refused},
		{"ContextNotAString", with(acme, lambda.ContextKey, 42), refused},
		{"TenantIDSwapped", with(acme, lambda.TenantIDKey, e.globex.UUID), refused},
		{"TenantSlugSwapped", with(acme, lambda.TenantKey, "globex"), refused},
		{"SubjectSwapped", with(acme, lambda.SubjectKey, globex[lambda.SubjectKey]), refused},
		{"RoleRaised", with(acme, lambda.RoleKey, "admin"), refused},
		{"ContextFromAnotherTenant", with(acme, lambda.ContextKey, globex[lambda.ContextKey]), refused},
		{"AnotherSilosSchema", with(acme, lambda.SchemaKey, e.globexSchema), refused},
		{"NoSchema", with(acme, lambda.SchemaKey, nil), refused},
		{"BadSchema", with(acme, lambda.SchemaKey, "pg_catalog"), refused},
		{"ContextForAnotherFunction", with(acme, lambda.ContextKey, e.mintRaw(t, e.acme, e.other.LoginRole, now, 45*time.Second), lambda.SubjectKey, "old-user", lambda.RoleKey, "admin"), refused},
		{"CaseCollidingClaims", with(globex, lambda.ContextKey, colliding), refused},
		{"ExpiredContext", with(acme, lambda.ContextKey, e.mintRaw(t, e.acme, e.fn.LoginRole, now.Add(-2*time.Minute), 45*time.Second), lambda.SubjectKey, "old-user", lambda.RoleKey, "admin"), refused},
		// What the adapter lets through, the database stops.
		{"EditedPayload", with(globex, lambda.ContextKey, edited, lambda.SubjectKey, acme[lambda.SubjectKey]), empty},
		{"EditedPayloadLooseKeysDropped", map[string]any{lambda.ContextKey: edited, lambda.SchemaKey: "app"}, empty},
		{"SiloContextInThePool", with(globex, lambda.SchemaKey, "app"), empty},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sn := &seen{}
			h := e.adapter.HTTP(sn.httpHandler())
			res, err := h(context.Background(), httpRequest(t, e.acme.MemberToken, tt.auth))
			if err != nil {
				t.Fatal(err)
			}
			switch tt.want {
			case refused:
				if res.StatusCode != 401 || sn.ran != 0 || strings.Contains(res.Body, "globex") || strings.Contains(res.Body, "acme") {
					t.Fatalf("response %d %s, handler ran %d times; want 401 before the handler", res.StatusCode, res.Body, sn.ran)
				}
			case empty:
				got := decodeListing(t, res)
				if len(got.Projects) != 0 {
					t.Fatalf("tampered context saw %v", got.Projects)
				}
			}
		})
	}
	if log := e.adapterLog.String(); !strings.Contains(log, "invocation refused") || strings.Contains(log, acme[lambda.ContextKey].(string)) {
		t.Errorf("adapter log must give reasons and no contexts:\n%s", log)
	}
}

// A handler that ignores its scope, as a compromised one would, gets
// nothing of another tenant's.
func TestCompromisedHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	appURL := e.s.PG.URL(e.fn.LoginRole, e.fn.Password)
	now := time.Now()
	oldGlobex := e.mintRaw(t, e.globex, e.fn.LoginRole, now.Add(-3*time.Minute), 45*time.Second)
	otherFnGlobex := e.mintRaw(t, e.globex, e.other.LoginRole, now, 45*time.Second)
	globexProjects := pgx.Identifier{e.globexSchema, "projects"}.Sanitize()
	type probe struct {
		name string
		rows int
		err  error
	}
	var probes []probe
	var own int
	count := func(ctx context.Context, q pgx.Tx, name, sql string) {
		var n int
		err := q.QueryRow(ctx, sql).Scan(&n)
		probes = append(probes, probe{name, n, err})
	}
	h := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		// Its own connection, with the credentials it holds.
		conn, err := pgx.Connect(ctx, appURL)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		defer conn.Close(ctx)
		raw := func(name, sql string, setting string) {
			tx, err := conn.Begin(ctx)
			if err != nil {
				probes = append(probes, probe{name, 0, err})
				return
			}
			defer tx.Rollback(ctx)
			if setting != "" {
				if _, err := tx.Exec(ctx, `SELECT set_config('bulkhead.context', $1, false)`, setting); err != nil {
					probes = append(probes, probe{name, 0, err})
					return
				}
			}
			count(ctx, tx, name, sql)
		}
		raw("raw pool table", `SELECT count(*) FROM app.projects`, "")
		raw("raw silo table", `SELECT count(*) FROM `+globexProjects, "")
		raw("raw silo, globex's old context", `SELECT count(*) FROM `+globexProjects, oldGlobex)
		raw("raw silo, globex's context for another function", `SELECT count(*) FROM `+globexProjects, otherFnGlobex)
		raw("raw keys", `SELECT count(*) FROM bulkhead_control.keys`, "")
		// Its own scope's transaction, with the context swapped inside.
		s.Tx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&own)
		})
		for _, tt := range []struct{ name, ctx string }{{"scope, globex's old context", oldGlobex}, {"scope, globex's context for another function", otherFnGlobex}} {
			s.Tx(ctx, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT set_config('bulkhead.context', $1, true)`, tt.ctx); err != nil {
					return err
				}
				count(ctx, tx, tt.name+" (silo)", `SELECT count(*) FROM `+globexProjects)
				count(ctx, tx, tt.name+" (pool)", `SELECT count(*) FROM app.projects`)
				return nil
			})
		}
		// Its own context, aimed at globex's silo.
		s.Tx(ctx, func(tx pgx.Tx) error {
			count(ctx, tx, "scope, globex's silo", `SELECT count(*) FROM `+globexProjects)
			return nil
		})
		err = s.Tx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+globexProjects+` (name) VALUES ('planted')`)
			return err
		})
		probes = append(probes, probe{"insert into globex's silo", 0, err})
		if err == nil {
			probes[len(probes)-1].rows = 1
		}
		_, err = e.app.Mint(ctx, tenant.Principal{TenantID: e.globID, Role: tenant.Admin}, bulkhead.MintOptions{})
		probes = append(probes, probe{"mint a context", 0, err})
		return jsonResponse("done"), nil
	})
	if _, err := h(context.Background(), httpRequest(t, e.acme.MemberToken, e.contextFor(t, e.acme.MemberToken))); err != nil {
		t.Fatal(err)
	}
	if own != 1 {
		t.Fatalf("the handler's own scope saw %d of acme's projects, want 1: the probes prove nothing", own)
	}
	mustFail := map[string]bool{"raw keys": true, "insert into globex's silo": true, "mint a context": true}
	for _, p := range probes {
		switch {
		case mustFail[p.name] && p.err == nil:
			t.Errorf("%s: succeeded", p.name)
		case !mustFail[p.name] && p.err != nil:
			t.Errorf("%s: %v (want a query that runs and sees nothing)", p.name, p.err)
		case p.rows != 0:
			t.Errorf("%s: %d rows of globex's", p.name, p.rows)
		}
	}
	if len(probes) != 12 {
		t.Errorf("%d probes ran, want 12", len(probes))
	}
	if !errors.Is(probes[len(probes)-1].err, bulkhead.ErrNotMinter) {
		t.Errorf("Mint in the function: %v, want ErrNotMinter", probes[len(probes)-1].err)
	}
}

func TestScopeAfterInvocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	configs := lambda.NewTenantCache[string](lambda.CacheConfig{})
	var kept *lambda.Scope
	release := make(chan struct{})
	late := make(chan error, 1)
	h := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		kept = s
		if _, err := configs.GetOrLoad(ctx, s, "k", func(context.Context) (string, error) { return "v", nil }); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		go func() { // outlives the invocation
			<-release
			late <- s.Tx(context.Background(), func(pgx.Tx) error { return nil })
		}()
		return jsonResponse(list(ctx, s)), nil
	})
	res, err := h(context.Background(), httpRequest(t, e.acme.MemberToken, e.contextFor(t, e.acme.MemberToken)))
	if err != nil || len(decodeListing(t, res).Projects) != 1 {
		t.Fatalf("invocation: %v %s", err, res.Body)
	}
	close(release)
	if err := <-late; !errors.Is(err, lambda.ErrScopeEnded) {
		t.Errorf("Tx from a goroutine after the invocation: %v", err)
	}
	ctx := context.Background()
	if err := kept.Tx(ctx, func(pgx.Tx) error { return nil }); !errors.Is(err, lambda.ErrScopeEnded) {
		t.Errorf("Tx after the invocation: %v", err)
	}
	if _, err := kept.Table("projects"); !errors.Is(err, lambda.ErrScopeEnded) {
		t.Errorf("Table after the invocation: %v", err)
	}
	if _, err := kept.Cache().Get(ctx, "k"); !errors.Is(err, lambda.ErrScopeEnded) {
		t.Errorf("Cache().Get after the invocation: %v", err)
	}
	if _, err := configs.Get(ctx, kept, "k"); !errors.Is(err, lambda.ErrScopeEnded) {
		t.Errorf("TenantCache.Get after the invocation: %v", err)
	}
	if err := configs.Set(ctx, kept, "k", "w"); !errors.Is(err, lambda.ErrScopeEnded) {
		t.Errorf("TenantCache.Set after the invocation: %v", err)
	}
	// The scope of a handler that panics ends too.
	var panicked *lambda.Scope
	hp := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		panicked = s
		panic("boom")
	})
	func() {
		defer func() { recover() }()
		hp(ctx, httpRequest(t, e.acme.MemberToken, e.contextFor(t, e.acme.MemberToken)))
	}()
	if err := panicked.Tx(ctx, func(pgx.Tx) error { return nil }); !errors.Is(err, lambda.ErrScopeEnded) {
		t.Errorf("Tx after a panicking invocation: %v", err)
	}
}

func TestCacheThroughAdapter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	configs := lambda.NewTenantCache[string](lambda.CacheConfig{TTL: time.Minute})
	var mu sync.Mutex
	loads := map[tenant.ID]int{}
	h := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		name, err := configs.GetOrLoad(ctx, s, "first-project", func(ctx context.Context) (string, error) {
			mu.Lock()
			loads[s.TenantID()]++
			mu.Unlock()
			l := list(ctx, s)
			if l.Err != "" || len(l.Projects) == 0 {
				return "", errors.New("no project")
			}
			return l.Projects[0], nil
		})
		if err != nil {
			return jsonResponse(map[string]string{"err": err.Error(), "code": fault.CodeOf(err)}), nil
		}
		// The untyped per-scope view works the same way.
		if err := s.Cache().Set(ctx, "seen", true); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return jsonResponse(map[string]string{"project": name}), nil
	})
	call := func(auth map[string]any) map[string]string {
		res, err := h(context.Background(), httpRequest(t, "x", auth))
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]string
		json.Unmarshal([]byte(res.Body), &out)
		return out
	}
	for range 3 {
		for _, tn := range []*apitest.Tenant{e.acme, e.globex} {
			if got := call(e.contextFor(t, tn.MemberToken)); got["project"] != e.projects[tn.Slug] {
				t.Fatalf("%s got %v, want %q", tn.Slug, got, e.projects[tn.Slug])
			}
		}
	}
	if loads[e.acmeID] != 1 || loads[e.globID] != 1 {
		t.Errorf("loads = %v, want one per tenant", loads)
	}
	// An edited context naming acme is refused by the database before the
	// cache is read: acme's entry stays out of reach.
	globex := e.contextFor(t, e.globex.MemberToken)
	edited := editClaims(t, globex[lambda.ContextKey].(string), func(c map[string]any) {
		c["tenant_id"], c["tenant"] = e.acme.UUID, "acme"
	})
	got := call(map[string]any{lambda.ContextKey: edited, lambda.SchemaKey: "app"})
	if got["project"] != "" || got["code"] != "invalid_context" {
		t.Fatalf("a forged context read the cache: %v", got)
	}
	// The same context twice (API Gateway's authorizer cache): confirmed
	// once, served twice.
	acme := e.contextFor(t, e.acme.MemberToken)
	for range 2 {
		if got := call(acme); got["project"] != e.projects["acme"] {
			t.Fatalf("repeated context: %v", got)
		}
	}
}

// TestAuthorizerPassesPlanLimits: with Limits, the authorizer context
// carries the tenant's plan's statement limits, and Scope.Tx sets them in
// each transaction: a basic tenant's slow statement fails under its
// plan's timeout while a premium tenant's transactions read their own.
// Without Limits nothing is passed and the function's own timeout
// applies. A limit key that is not a plain integer in range refuses the
// invocation before the handler runs.
func TestAuthorizerPassesPlanLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	basic := e.s.CreateTenantOnPlan(t, "initech", "pool", "basic")
	authz, err := lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: e.s.DB, Verifier: e.s.Auth, Audience: e.fn.LoginRole,
		Limits: map[string]lambda.Limits{
			"premium": {StatementTimeout: 15 * time.Second, ParallelWorkers: 1},
			"basic":   {StatementTimeout: 300 * time.Millisecond},
		}})
	if err != nil {
		t.Fatal(err)
	}
	contextFor := func(authz *lambda.Authorizer, token string) map[string]any {
		t.Helper()
		var req events.APIGatewayV2CustomAuthorizerV2Request
		fixture(t, "http-authorizer-request.json", token, &req)
		res, err := authz.HTTP(context.Background(), roundTrip(t, req))
		if err != nil || !res.IsAuthorized {
			t.Fatalf("authorizer: %v, %v", res.IsAuthorized, err)
		}
		return roundTrip(t, res).Context
	}
	// The handler reports the transaction's settings, and whether a 2 s
	// statement ran to its end.
	type settings struct {
		Timeout, Workers string
		Slept            bool
		Err              string
	}
	ran := 0
	h := e.adapter.HTTP(func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		ran++
		var out settings
		err := s.Tx(ctx, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT current_setting('statement_timeout'), current_setting('max_parallel_workers_per_gather')`).Scan(&out.Timeout, &out.Workers); err != nil {
				return err
			}
			if req.RawPath == "/slow" {
				if _, err := tx.Exec(ctx, `SELECT pg_sleep(2)`); err != nil {
					return err
				}
				out.Slept = true
			}
			return nil
		})
		if err != nil {
			out.Err = fault.CodeOf(err)
		}
		return jsonResponse(out), nil
	})
	call := func(auth map[string]any, token, path string) (settings, events.APIGatewayV2HTTPResponse) {
		t.Helper()
		req := httpRequest(t, token, auth)
		req.RawPath = path
		res, err := h(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var out settings
		if res.StatusCode == 200 {
			if err := json.Unmarshal([]byte(res.Body), &out); err != nil {
				t.Fatal(err)
			}
		}
		return out, res
	}
	premium := contextFor(authz, e.acme.MemberToken)
	if premium[lambda.StatementTimeoutKey] != "15000" || premium[lambda.ParallelWorkersKey] != "1" {
		t.Errorf("a premium tenant's authorizer context: %v", premium)
	}
	if got, _ := call(premium, e.acme.MemberToken, "/"); got != (settings{Timeout: "15s", Workers: "1"}) {
		t.Errorf("a premium tenant's transaction: %+v", got)
	}
	basicAuth := contextFor(authz, basic.MemberToken)
	if basicAuth[lambda.StatementTimeoutKey] != "300" || basicAuth[lambda.ParallelWorkersKey] != "0" {
		t.Errorf("a basic tenant's authorizer context: %v", basicAuth)
	}
	if got, _ := call(basicAuth, basic.MemberToken, "/slow"); got != (settings{Timeout: "300ms", Workers: "0", Err: "statement_timeout"}) {
		t.Errorf("a basic tenant's 2 s statement: %+v, want statement_timeout under 300ms", got)
	}
	// Without Limits: no keys, and the function's own bound (bulkhead's
	// default of 30s, PostgreSQL's default of 2 workers).
	plain := e.contextFor(t, e.acme.MemberToken)
	if _, ok := plain[lambda.StatementTimeoutKey]; ok {
		t.Errorf("an authorizer without Limits passed %v", plain)
	}
	if got, _ := call(plain, e.acme.MemberToken, "/"); got != (settings{Timeout: "30s", Workers: "2"}) {
		t.Errorf("without limits: %+v", got)
	}
	for _, tt := range []struct {
		key string
		v   any
	}{
		{lambda.StatementTimeoutKey, "0"}, {lambda.StatementTimeoutKey, "-300"}, {lambda.StatementTimeoutKey, "3600001"},
		{lambda.StatementTimeoutKey, "1.5"}, {lambda.StatementTimeoutKey, "0300"}, {lambda.StatementTimeoutKey, " 300"},
		{lambda.StatementTimeoutKey, "300ms"}, {lambda.StatementTimeoutKey, 300}, {lambda.StatementTimeoutKey, ""},
		{lambda.ParallelWorkersKey, "-1"}, {lambda.ParallelWorkersKey, "1025"}, {lambda.ParallelWorkersKey, "two"},
		{lambda.ParallelWorkersKey, 1},
	} {
		auth := maps.Clone(basicAuth)
		auth[tt.key] = tt.v
		before := ran
		if _, res := call(auth, basic.MemberToken, "/slow"); res.StatusCode != 401 || ran != before {
			t.Errorf("%s = %#v: %d %s, handler ran %d times", tt.key, tt.v, res.StatusCode, res.Body, ran-before)
		}
	}
	for _, l := range []lambda.Limits{{StatementTimeout: -time.Second}, {StatementTimeout: time.Microsecond}, {StatementTimeout: 61 * time.Minute}, {ParallelWorkers: -1}, {ParallelWorkers: 1025}} {
		_, err := lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: e.s.DB, Verifier: e.s.Auth, Audience: e.fn.LoginRole, Limits: map[string]lambda.Limits{"basic": l}})
		if fault.CodeOf(err) != "invalid_config" {
			t.Errorf("NewAuthorizer with limits %+v: %v", l, err)
		}
	}
}

// TestAuthorizerHoldsNoGatewayConnection: an authorizer mints from the
// control plane alone. It opens no connection as the gateway role, whose
// connection limit the data API's servers need: a burst of authorizer
// instances must not exhaust it.
func TestAuthorizerHoldsNoGatewayConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	minter, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: e.s.PG.AdminURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(minter.Close)
	authz, err := lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: minter, Verifier: e.s.Auth, Audience: e.fn.LoginRole})
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{e.acme.MemberToken, e.globex.AdminToken, "not-a-token"} {
		var req events.APIGatewayV2CustomAuthorizerV2Request
		fixture(t, "http-authorizer-request.json", token, &req)
		if _, err := authz.HTTP(ctx, roundTrip(t, req)); err != nil {
			t.Fatal(err)
		}
	}
	gateway := minter.Postgres().App()
	if n := gateway.Stat().TotalConns(); n != 0 {
		t.Errorf("the authorizer's process holds %d connections as the gateway role", n)
	}
	// The witness: a server connects that pool at its start.
	if err := minter.Postgres().PingApp(ctx); err != nil || gateway.Stat().TotalConns() == 0 {
		t.Errorf("PingApp: %v, %d connections", err, gateway.Stat().TotalConns())
	}
}
