// Package apitest runs a complete bulkhead server on a fresh test database
// for integration tests: real PostgreSQL, real HTTP on loopback.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// Server is a running bulkhead server.
type Server struct {
	URL        string
	MetricsURL string
	DB         *bulkhead.DB
	Auth       *bulkhead.Auth
	PG         *pgtest.DB
	AdminToken string
	API        *httpapi.Server
	http       *httptest.Server
}

// Options tune Start.
type Options struct {
	External []identity.Trust
	MaxBody  int64
	Config   func(*httpapi.Config)
	// Database, when set, is the database to serve (already set up,
	// such as pgtest.NewManagedDB's after bulkhead migrate) instead of a
	// fresh copy of the template.
	Database *pgtest.DB
}

// Start starts a server on a fresh database and stops it when tb ends.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	ctx := context.Background()
	pg := o.Database
	if pg == nil {
		pg = pgtest.NewDB(tb)
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: pg.AdminURL})
	if err != nil {
		tb.Fatalf("apitest: open: %v", err)
	}
	tb.Cleanup(db.Close)
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{External: o.External})
	if err != nil {
		tb.Fatalf("apitest: auth: %v", err)
	}
	tb.Cleanup(auth.Close)
	w := audit.NewWriter(db.Postgres(), 1024, 128)
	tb.Cleanup(w.Close)
	// Hashes are cheap here, so the server's budget of password checks
	// is lifted; tests of the budget set their own.
	cfg := httpapi.Config{DB: db, Auth: auth, Audit: w, Metrics: httpapi.NewMetrics(), Hasher: &identity.Hasher{Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
		PasswordChecks: httpapi.Bucket{Rate: 1e6, Burst: 1e6}, Limits: map[string]httpapi.Limit{}}
	// The plans' limits, without their budgets of statement time: a test's
	// requests, on a busy machine, can take long enough to spend them.
	// Tests of the budget set their own.
	for plan, l := range httpapi.DefaultLimits {
		l.StatementTime = 0
		cfg.Limits[plan] = l
	}
	cfg.MaxBodyBytes = o.MaxBody
	if o.Config != nil {
		o.Config(&cfg)
	}
	h, err := httpapi.New(ctx, cfg)
	if err != nil {
		tb.Fatalf("apitest: server: %v", err)
	}
	hs := httptest.NewServer(h.Handler())
	tb.Cleanup(hs.Close)
	metrics := httptest.NewServer(cfg.Metrics.Handler())
	tb.Cleanup(metrics.Close)
	tok, _, err := auth.IssueAdminToken(ctx, "test-admin", 0)
	if err != nil {
		tb.Fatalf("apitest: admin token: %v", err)
	}
	return &Server{URL: hs.URL, MetricsURL: metrics.URL, DB: db, Auth: auth, PG: pg, AdminToken: tok, API: h, http: hs}
}

// Sequence chains every event waiting in the audit inbox, as the server's
// sequencer does in the background.
func (s *Server) Sequence(tb testing.TB) {
	tb.Helper()
	for {
		got, err := s.DB.Postgres().Sequence(context.Background(), 1000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(got) == 0 {
			return
		}
	}
}

// Response is an HTTP response, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v or fails the test.
func (r *Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("apitest: decode %q: %v", r.Body, err)
	}
}

// Code returns the problem+json code of an error response, or "".
func (r *Response) Code() string {
	var p struct {
		Code string `json:"code"`
	}
	json.Unmarshal(r.Body, &p)
	return p.Code
}

func (r *Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// Do sends a request with an optional bearer token and body (a string or
// []byte is sent as is; anything else as JSON) and extra headers as
// name, value pairs.
func (s *Server) Do(tb testing.TB, method, path, token string, body any, headers ...string) *Response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("apitest: %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Tenant is a tenant made through the API, with one admin and one member.
type Tenant struct {
	Slug, UUID, Tier        string
	AdminToken, MemberToken string
}

// CreateTenant makes a tenant on the premium plan (whose admins may
// delete rows and manage users) with an admin and a member, and logs both
// in.
func (s *Server) CreateTenant(tb testing.TB, slug, tier string) *Tenant {
	return s.CreateTenantOnPlan(tb, slug, tier, "premium")
}

// CreateTenantOnPlan is CreateTenant with a plan.
func (s *Server) CreateTenantOnPlan(tb testing.TB, slug, tier, plan string) *Tenant {
	tb.Helper()
	r := s.Do(tb, "POST", "/v1/tenants", s.AdminToken, map[string]string{"id": slug, "name": slug, "tier": tier, "plan": plan})
	if r.Status != http.StatusCreated {
		tb.Fatalf("apitest: create tenant %s: %s", slug, r)
	}
	var t struct {
		UUID string `json:"uuid"`
	}
	r.JSON(tb, &t)
	out := &Tenant{Slug: slug, UUID: t.UUID, Tier: tier}
	out.AdminToken = s.CreateUser(tb, slug, "admin@"+slug+".test", "admin")
	out.MemberToken = s.CreateUser(tb, slug, "member@"+slug+".test", "member")
	return out
}

// CreateUser adds a user and returns a fresh access token for it.
func (s *Server) CreateUser(tb testing.TB, slug, email, role string) string {
	tb.Helper()
	pw := "pw-" + email
	r := s.Do(tb, "POST", "/v1/tenants/"+slug+"/users", s.AdminToken, map[string]string{"email": email, "password": pw, "role": role})
	if r.Status != http.StatusCreated {
		tb.Fatalf("apitest: create user %s: %s", email, r)
	}
	return s.Login(tb, slug, email, pw)
}

// Login returns an access token.
func (s *Server) Login(tb testing.TB, slug, email, pw string) string {
	tb.Helper()
	r := s.Do(tb, "POST", "/v1/auth/token", "", map[string]string{"tenant": slug, "email": email, "password": pw})
	if r.Status != http.StatusOK {
		tb.Fatalf("apitest: login %s: %s", email, r)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(tb, &tok)
	return tok.AccessToken
}
