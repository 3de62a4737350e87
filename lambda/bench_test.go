package lambda_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/lambda"
)

// adapterFixture is an HTTP API request carrying an authorizer context,
// and the same trivial handler bare and wrapped. No database: bulkhead.Open
// with an app URL does not connect until a transaction, and the handlers
// run none, so the difference is the adapter alone.
func adapterFixture(b *testing.B) (req events.APIGatewayV2HTTPRequest, bare, wrapped func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)) {
	ctx := context.Background()
	const role = "bulkhead_fn_bench"
	db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: "postgres://" + role + ":unused@127.0.0.1:1/bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	secret := make([]byte, 32)
	rand.Read(secret)
	now := time.Now()
	tok, err := ctxtoken.Mint(ctxtoken.Key{ID: "bench", Secret: secret}, ctxtoken.Claims{
		Tenant: "acme", TenantID: "6f1d3c1e-9a55-4a8e-b7a4-1f2f3e4d5c6b", Subject: "u-42", Role: "member",
		Scope: []string{"select", "insert", "update"}, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Audience: role,
	})
	if err != nil {
		b.Fatal(err)
	}
	req = httpRequest(b, "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1LTQyIn0.c2ln", map[string]any{
		lambda.ContextKey: tok, lambda.SchemaKey: "app", lambda.TenantKey: "acme",
		lambda.TenantIDKey: "6f1d3c1e-9a55-4a8e-b7a4-1f2f3e4d5c6b", lambda.SubjectKey: "u-42", lambda.RoleKey: "member",
	})
	bare = func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		t, _ := req.RequestContext.Authorizer.Lambda[lambda.TenantKey].(string)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "hello " + t}, nil
	}
	wrapped = lambda.Wrap(db, func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "hello " + string(s.Tenant())}, nil
	})
	for _, h := range []func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error){bare, wrapped} {
		if res, err := h(ctx, req); err != nil || res.Body != "hello acme" {
			b.Fatalf("fixture handler = %+v, %v", res, err)
		}
	}
	return req, bare, wrapped
}

// BenchmarkAdapter measures the adapter's cost per invocation: the same
// trivial handler bare (reading the tenant from the authorizer context
// itself) and wrapped (the scope built, the context decoded and checked,
// the Authorization header and the context stripped, the scope ended).
// Ratio runs both in the same loop and reports wrapped/bare.
func BenchmarkAdapter(b *testing.B) {
	req, bare, wrapped := adapterFixture(b)
	ctx := context.Background()
	b.Run("Bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bare(ctx, req)
		}
	})
	b.Run("Wrapped", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wrapped(ctx, req)
		}
	})
	b.Run("Ratio", func(b *testing.B) {
		var tb, tw time.Duration
		for b.Loop() {
			t0 := time.Now()
			bare(ctx, req)
			t1 := time.Now()
			wrapped(ctx, req)
			tw += time.Since(t1)
			tb += t1.Sub(t0)
		}
		n := float64(b.N)
		b.ReportMetric(float64(tb.Nanoseconds())/n, "bare-ns/op")
		b.ReportMetric(float64(tw.Nanoseconds())/n, "wrapped-ns/op")
		b.ReportMetric(float64(tw)/float64(tb), "wrapped/bare")
		b.ReportMetric(testing.AllocsPerRun(100, func() { bare(ctx, req) }), "bare-allocs/op")
		b.ReportMetric(testing.AllocsPerRun(100, func() { wrapped(ctx, req) }), "wrapped-allocs/op")
	})
}

// BenchmarkColdStart measures what a cold execution environment pays
// before its first answer, against the test PostgreSQL on loopback (add
// the network round trips of a real VPC): for the business function,
// bulkhead.Open with its login role and the first invocation's Tx (which
// dials, authenticates with SCRAM and runs the scoped transaction), then a
// warm Tx for comparison; for the authorizer, Open as a minter, NewAuth
// (loads the keys) and the first authorization (verify, resolve, mint),
// then a warm one. Each iteration is a fresh cold start; ns/op is the sum.
// No timing is asserted.
func BenchmarkColdStart(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	b.Run("Function", func(b *testing.B) {
		var open, first, warm time.Duration
		for b.Loop() {
			auth := e.contextFor(b, e.acme.MemberToken)
			req := httpRequest(b, "x", auth)
			t0 := time.Now()
			db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: e.s.PG.URL(e.fn.LoginRole, e.fn.Password)})
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			h := lambda.Wrap(db, func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				var n int
				err := s.Tx(ctx, func(tx pgx.Tx) error { return tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n) })
				if err != nil || n != 1 {
					b.Fatalf("Tx: %d, %v", n, err)
				}
				return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
			})
			if _, err := h(ctx, req); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if _, err := h(ctx, req); err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			db.Close()
			open, first, warm = open+t1.Sub(t0), first+t2.Sub(t1), warm+t3.Sub(t2)
		}
		n := float64(b.N)
		b.ReportMetric(float64(open.Nanoseconds())/n, "open-ns")
		b.ReportMetric(float64(first.Nanoseconds())/n, "first-tx-ns")
		b.ReportMetric(float64(warm.Nanoseconds())/n, "warm-tx-ns")
	})
	b.Run("Authorizer", func(b *testing.B) {
		var open, newAuth, first, warm time.Duration
		for b.Loop() {
			var req events.APIGatewayV2CustomAuthorizerV2Request
			fixture(b, "http-authorizer-request.json", e.acme.MemberToken, &req)
			t0 := time.Now()
			db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: e.s.PG.AdminURL})
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
			if err != nil {
				b.Fatal(err)
			}
			az, err := lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: db, Verifier: auth, Audience: e.fn.LoginRole})
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if res, _ := az.HTTP(ctx, req); !res.IsAuthorized {
				b.Fatal("denied")
			}
			t3 := time.Now()
			if res, _ := az.HTTP(ctx, req); !res.IsAuthorized {
				b.Fatal("denied")
			}
			t4 := time.Now()
			auth.Close()
			db.Close()
			open, newAuth, first, warm = open+t1.Sub(t0), newAuth+t2.Sub(t1), first+t3.Sub(t2), warm+t4.Sub(t3)
		}
		n := float64(b.N)
		b.ReportMetric(float64(open.Nanoseconds())/n, "open-ns")
		b.ReportMetric(float64(newAuth.Nanoseconds())/n, "newauth-ns")
		b.ReportMetric(float64(first.Nanoseconds())/n, "first-authorize-ns")
		b.ReportMetric(float64(warm.Nanoseconds())/n, "warm-authorize-ns")
	})
}
