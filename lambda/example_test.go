package lambda_test

import (
	"context"
	"encoding/json"
	"log"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/lambda"
)

// A business function: it opens bulkhead without keys, as its own login
// role, and reaches the database only through the invocation's scope.
func ExampleWrap() {
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: os.Getenv("APP_DATABASE_URL")})
	if err != nil {
		log.Fatal(err)
	}
	awslambda.Start(lambda.Wrap(db, func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		projects, err := s.Table("projects")
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		var n int
		err = s.Tx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM `+projects).Scan(&n)
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		body, _ := json.Marshal(map[string]any{"tenant": s.Tenant(), "projects": n})
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: string(body)}, nil
	}))
}

// The authorizer: a minter, verifying bulkhead's own tokens and binding
// every context to the business function's login role.
func ExampleNewAuthorizer() {
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: os.Getenv("DATABASE_URL")})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		log.Fatal(err)
	}
	az, err := lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: db, Verifier: auth, Audience: "bulkhead_fn_projects"})
	if err != nil {
		log.Fatal(err)
	}
	awslambda.Start(az.HTTP) // az.REST or az.Token for a REST API
}

// Settings keeps each tenant's settings warm across invocations: a package
// variable, keyed by tenant by construction.
type Settings struct{ Theme string }

var settings = lambda.NewTenantCache[Settings](lambda.CacheConfig{TTL: time.Minute, MaxEntriesPerTenant: 4})

func loadSettings(ctx context.Context, s *lambda.Scope) (Settings, error) {
	return settings.GetOrLoad(ctx, s, "settings", func(ctx context.Context) (Settings, error) {
		var st Settings
		err := s.Tx(ctx, func(tx pgx.Tx) error {
			st.Theme = "dark" // read the tenant's settings here
			return nil
		})
		return st, err
	})
}

func ExampleTenantCache() {
	h := func(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		st, err := loadSettings(ctx, s)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: st.Theme}, nil
	}
	_ = h // lambda.Wrap(db, h)
}
