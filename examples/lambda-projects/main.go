// Command lambda-projects is a bulkhead business function on AWS Lambda,
// behind an API Gateway HTTP API: GET /projects lists the caller's tenant's
// projects and POST /projects creates one. The same binary is also the
// function's Lambda authorizer.
//
// BULKHEAD_LAMBDA_MODE chooses the role:
//
//   - "projects" (the default): the business function. It holds no signing
//     key: APP_DATABASE_URL is its own login role (bulkhead functions
//     create). It runs only the context the authorizer minted.
//   - "authorizer": the HTTP API Lambda authorizer (payload 2.0, simple
//     responses). DATABASE_URL is the control plane's connection (a
//     minter), FUNCTION_LOGIN_ROLE the projects function's login role,
//     which every context is bound to.
//
// Build it for the provided.al2023 runtime with
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap . && zip function.zip bootstrap
//
// (make build does the same). See README.md.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/lambda"
)

func main() {
	// Initialisation runs once per execution environment; every warm
	// invocation after it shares the pool, and only the pool.
	ctx := context.Background()
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	switch mode := os.Getenv("BULKHEAD_LAMBDA_MODE"); mode {
	case "", "projects":
		h, closeDB, err := newProjectsFunction(ctx, os.Getenv("APP_DATABASE_URL"), logger)
		if err != nil {
			fail(logger, err)
		}
		defer closeDB()
		awslambda.Start(h)
	case "authorizer":
		az, closeDB, err := newAuthorizer(ctx, os.Getenv("DATABASE_URL"), os.Getenv("FUNCTION_LOGIN_ROLE"), logger)
		if err != nil {
			fail(logger, err)
		}
		defer closeDB()
		awslambda.Start(az.HTTP)
	default:
		fail(logger, fmt.Errorf("BULKHEAD_LAMBDA_MODE %q: want projects or authorizer", mode))
	}
}

func fail(logger *slog.Logger, err error) {
	logger.Error("start failed", "err", err)
	os.Exit(1)
}

// newProjectsFunction opens bulkhead without keys, as the function's own
// login role, and returns the wrapped handler.
func newProjectsFunction(ctx context.Context, appURL string, logger *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), func(), error) {
	db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: appURL, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	a := &lambda.Adapter{DB: db, Logger: logger}
	p := &projectsHandler{log: logger}
	return a.HTTP(p.serve), db.Close, nil
}

// newAuthorizer opens bulkhead as a minter and returns the authorizer for
// the function whose login role is audience.
func newAuthorizer(ctx context.Context, databaseURL, audience string, logger *slog.Logger) (*lambda.Authorizer, func(), error) {
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	az, err := lambda.NewAuthorizer(lambda.AuthorizerConfig{DB: db, Verifier: auth, Audience: audience, Logger: logger,
		// Each plan's bound on a statement, as bulkhead serve's plans have
		// by default: the function's transactions run under its tenant's.
		Limits: map[string]lambda.Limits{"basic": {StatementTimeout: 5 * time.Second}, "premium": {StatementTimeout: 15 * time.Second}}})
	if err != nil {
		auth.Close()
		db.Close()
		return nil, nil, err
	}
	return az, func() { auth.Close(); db.Close() }, nil
}

type projectsHandler struct {
	log *slog.Logger
}

// Project is one row of the tenant's projects.
type Project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// serve routes one invocation. Everything it reads and writes goes
// through s: the tenant is the caller's, and no code here can choose it.
func (p *projectsHandler) serve(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var (
		v      any
		status int
		err    error
	)
	switch req.RequestContext.HTTP.Method {
	case http.MethodGet:
		v, err = p.list(ctx, s, req)
		status = http.StatusOK
	case http.MethodPost:
		v, err = p.create(ctx, s, req)
		status = http.StatusCreated
	default:
		err = fault.E(fault.MethodNotAllowed, "method_not_allowed", "Use GET or POST.")
	}
	if err != nil {
		return p.problem(ctx, s, err), nil
	}
	return jsonResponse(status, v), nil
}

func (p *projectsHandler) list(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) ([]Project, error) {
	limit := 50
	if q := req.QueryStringParameters["limit"]; q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 200 {
			return nil, fault.E(fault.Invalid, "invalid_limit", "limit is a number from 1 to 200.")
		}
		limit = n
	}
	projects, err := s.Table("projects")
	if err != nil {
		return nil, err
	}
	var out []Project
	err = s.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text, name, description, created_at FROM `+projects+` ORDER BY created_at, id LIMIT $1`, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Project])
		return err
	})
	if out == nil {
		out = []Project{}
	}
	return out, err
}

type createRequest struct {
	Name        string  `json:"name"`
	Description *string `json:"description"`
}

func (p *projectsHandler) create(ctx context.Context, s *lambda.Scope, req events.APIGatewayV2HTTPRequest) (*Project, error) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, fault.E(fault.Invalid, "invalid_body", "The body is not valid base64.")
		}
		body = b
	}
	var in createRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fault.E(fault.Invalid, "invalid_body", `The body must be {"name": "…", "description": "…"}.`)
	}
	if n := utf8.RuneCountInString(in.Name); n < 1 || n > 500 {
		return nil, fault.E(fault.Invalid, "invalid_name", "name is 1 to 500 characters.")
	}
	projects, err := s.Table("projects")
	if err != nil {
		return nil, err
	}
	var out Project
	err = s.Tx(ctx, func(tx pgx.Tx) error {
		// tenant_id is not named: it defaults to the context's tenant,
		// and row security checks it.
		return tx.QueryRow(ctx, `INSERT INTO `+projects+` (name, description) VALUES ($1, $2)
			RETURNING id::text, name, description, created_at`, in.Name, in.Description).
			Scan(&out.ID, &out.Name, &out.Description, &out.CreatedAt)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// problem answers an error as RFC 9457 problem+json with its stable code
// and a caller-safe message; the cause is logged, never sent.
func (p *projectsHandler) problem(ctx context.Context, s *lambda.Scope, err error) events.APIGatewayV2HTTPResponse {
	status := statusOf(fault.KindOf(err))
	if status >= 500 {
		p.log.ErrorContext(ctx, "request failed", "tenant_id", s.TenantID(), "err", err)
	}
	res := jsonResponse(status, map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status,
		"code": fault.CodeOf(err), "detail": fault.MessageOf(err),
	})
	res.Headers["Content-Type"] = "application/problem+json"
	return res
}

func statusOf(k fault.Kind) int {
	switch k {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.Unauthenticated:
		return http.StatusUnauthorized
	case fault.Denied:
		return http.StatusForbidden
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.TooLarge:
		return http.StatusRequestEntityTooLarge
	case fault.TooMany:
		return http.StatusTooManyRequests
	case fault.MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case fault.Unavailable, fault.Canceled:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func jsonResponse(status int, v any) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"title":"Internal Server Error","status":500}`)
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}
