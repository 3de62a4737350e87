package bulkheadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// Main runs a test binary's tests against a real PostgreSQL. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { bulkheadtest.Main(m) }
//
// It attaches to the cluster named by the environment variable
// BULKHEAD_TEST_DATABASE_URL (a superuser URL), or else starts a throwaway
// cluster of its own (initdb into a temporary directory, loopback only, a
// random port), and migrates a template database once; [Start] clones it
// for each test. It does so before any test runs: without PostgreSQL the
// run fails at once, naming the package to install. It never skips. When
// the tests are done it drops what it made, stops its cluster, and exits
// with the tests' status.
func Main(m *testing.M) {
	pgtest.Main(m, func() error {
		// A database made and dropped now forces the attach (or the
		// cluster's start) and the template's migration to happen before
		// the first test, so that a missing server fails the run once
		// rather than each test.
		_, err := pgtest.NewDBForExamples()
		if err != nil {
			// pgtest.Main prefixes its own name already.
			return errors.New(strings.TrimPrefix(err.Error(), "pgtest: "))
		}
		return nil
	})
}

// Pool and Silo are the tiers [Env.Tenant] accepts: rows in the shared
// tables of schema "app", or a schema of the tenant's own.
const (
	Pool = tenant.Pool
	Silo = tenant.Silo
)

// Plan is a tenant's plan: the policy template that bounds what its users
// may do. A Plan is a [TenantOption].
type Plan string

// The plans.
const (
	// Premium is the default: admins may delete rows and manage users.
	Premium Plan = "premium"
	// Basic allows select, insert and update on the tenant's own rows.
	Basic Plan = "basic"
)

func (p Plan) applyTenant(c *tenantConfig) { c.plan = p }

// A TenantOption changes a tenant made by [Env.Tenant]. The options are
// the [Plan] values.
type TenantOption interface {
	applyTenant(*tenantConfig)
}

type tenantConfig struct {
	plan Plan
}

// Env is a running bulkhead for one test: a fresh database cloned from the
// migrated template, the control plane's handle on it, and the HTTP API
// (control plane under /v1, data API under /rest/v1) served by
// [net/http/httptest] on loopback. Its methods may be called from parallel
// subtests.
type Env struct {
	srv *apitest.Server

	tenantMu sync.Mutex // serialises tenant creation, which refreshes srv.AdminToken

	mu     sync.Mutex
	fn     *postgres.FunctionCredentials
	fnDB   *bulkhead.DB
	minter *bulkhead.DB // mints Tenant.Context's long-lived contexts
	closed bool
}

// Start starts bulkhead on a fresh, migrated database and stops it, and
// drops the database, when tb ends. It needs [Main] in TestMain.
//
// The server's per-tenant rate limits and budgets of statement time, its
// shares of denials and of
// failed logins for requests without valid credentials (all of a suite's
// come from one address), and its budget of password checks, are raised so that a suite of many requests, such as
// [Env.AssertIsolated] with its forged tokens, is never throttled; the
// plans' policies and statement timeouts are unchanged.
func Start(tb testing.TB) *Env {
	tb.Helper()
	srv := apitest.Start(tb, apitest.Options{Config: func(c *httpapi.Config) {
		c.Limits = testLimits()
		c.AnonymousRefusals = httpapi.Bucket{Rate: 1e6, Burst: 1e6}
		c.AnonymousRefusalsTotal = httpapi.Bucket{Rate: 1e6, Burst: 1e6}
		c.FailedLogins = httpapi.Bucket{Rate: 1e6, Burst: 1e6}
		c.PasswordChecks = httpapi.Bucket{Rate: 1e6, Burst: 1e6}
	}})
	e := &Env{srv: srv}
	tb.Cleanup(e.close)
	return e
}

func testLimits() map[string]httpapi.Limit {
	out := map[string]httpapi.Limit{}
	for plan, l := range httpapi.DefaultLimits {
		out[plan] = httpapi.Limit{Rate: 1e6, Burst: 1e6, Concurrent: 64, StatementTimeout: l.StatementTimeout}
	}
	return out
}

// close releases the function's connections and drops its login role,
// which, unlike the database, belongs to the whole cluster.
func (e *Env) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.minter != nil {
		e.minter.Close()
	}
	if e.fnDB != nil {
		e.fnDB.Close()
	}
	if e.fn == nil {
		return
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.srv.PG.AdminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, `DROP ROLE IF EXISTS `+pgx.Identifier{e.fn.LoginRole}.Sanitize())
}

// URL is the base URL of the HTTP API, such as "http://127.0.0.1:40123".
func (e *Env) URL() string { return e.srv.URL }

// AdminURL is a superuser URL of the test database. Use it to inspect the
// database or to break it on purpose (to prove that a negative test can
// fail); never hand it to the code under test, because a superuser
// bypasses row security.
func (e *Env) AdminURL() string { return e.srv.PG.AdminURL }

// Minter is the control plane's handle on the database: it holds the keys
// and mints contexts ([bulkhead.DB.Mint]); its Postgres method is the
// catalog store.
func (e *Env) Minter() *bulkhead.DB { return e.srv.DB }

// AdminToken returns a fresh platform-admin token for the HTTP API.
// Platform-admin tokens live five minutes.
func (e *Env) AdminToken(tb testing.TB) string {
	tb.Helper()
	tok, _, err := e.srv.Auth.IssueAdminToken(context.Background(), "bulkheadtest-admin", 0)
	if err != nil {
		tb.Fatalf("bulkheadtest: admin token: %v", err)
	}
	return tok
}

// Tenant is a tenant made by [Env.Tenant], with two users logged in.
type Tenant struct {
	Slug tenant.Slug // the id in /v1/tenants/{id}
	ID   tenant.ID   // the UUID its rows carry in tenant_id
	Tier tenant.Tier
	Plan Plan
	// AdminToken and MemberToken are access tokens (they live 15 minutes)
	// of the tenant's admin, admin@<slug>.test, and of its member,
	// member@<slug>.test.
	AdminToken  string
	MemberToken string

	env *Env
}

// Tenant creates a tenant through the control plane with an admin and a
// member, and logs both in. It is on the [Premium] plan unless an option
// says otherwise. slug must be a valid tenant id (2 to 40 characters of
// a-z, 0-9 and "-", starting with a letter) unused in e.
func (e *Env) Tenant(tb testing.TB, slug string, tier tenant.Tier, opts ...TenantOption) *Tenant {
	tb.Helper()
	c := tenantConfig{plan: Premium}
	for _, o := range opts {
		o.applyTenant(&c)
	}
	if !tier.Valid() {
		tb.Fatalf("bulkheadtest: Tenant(%q): tier %q is neither Pool nor Silo", slug, tier)
	}
	e.tenantMu.Lock()
	defer e.tenantMu.Unlock()
	// The server's admin token lives five minutes: use a fresh one.
	e.srv.AdminToken = e.AdminToken(tb)
	t := e.srv.CreateTenantOnPlan(tb, slug, string(tier), string(c.plan))
	return &Tenant{Slug: tenant.Slug(t.Slug), ID: tenant.ID(t.UUID), Tier: tier, Plan: c.plan,
		AdminToken: t.AdminToken, MemberToken: t.MemberToken, env: e}
}

// Insert adds a row to a tenant table (such as "projects") through the
// data API, as t's admin, and returns the new row's id. Leave tenant_id
// out: it defaults to t. It fails the test unless the API answers
// 201 Created.
func (t *Tenant) Insert(tb testing.TB, table string, row map[string]any) string {
	tb.Helper()
	if row == nil {
		row = map[string]any{}
	}
	r := t.env.srv.Do(tb, "POST", "/rest/v1/"+url.PathEscape(table), t.AdminToken, row, "Prefer", "return=representation")
	if r.Status != http.StatusCreated {
		tb.Fatalf("bulkheadtest: insert into %s as %s's admin: %s", table, t.Slug, r)
	}
	rows, err := decodeRows(r.Body)
	if err != nil || len(rows) != 1 {
		tb.Fatalf("bulkheadtest: insert into %s as %s's admin: unexpected answer %s", table, t.Slug, r)
	}
	id, ok := rows[0]["id"].(string)
	if !ok {
		tb.Fatalf("bulkheadtest: insert into %s as %s's admin: the row has no id: %s", table, t.Slug, r)
	}
	return id
}

// Rows lists t's rows of a tenant table through the data API, as t's
// admin, ordered by id: at most 1000, the data API's limit.
func (t *Tenant) Rows(tb testing.TB, table string) []map[string]any {
	tb.Helper()
	r := t.env.srv.Do(tb, "GET", "/rest/v1/"+url.PathEscape(table)+"?select=*&order=id", t.AdminToken, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("bulkheadtest: list %s as %s's admin: %s", table, t.Slug, r)
	}
	rows, err := decodeRows(r.Body)
	if err != nil {
		tb.Fatalf("bulkheadtest: list %s as %s's admin: %v", table, t.Slug, err)
	}
	return rows
}

// Context returns a copy of tb's context carrying a signed context of t's
// admin, vended to the login role of [Env.FunctionDB], for business code
// that calls [bulkhead.DB.Tx] and [bulkhead.Table]. It is valid for
// [bulkhead.MaxContextTTL]; call Context again for a fresh one. Under any
// other login role PostgreSQL refuses it.
func (t *Tenant) Context(tb testing.TB) context.Context {
	tb.Helper()
	fn, _, minter := t.env.function(tb)
	ctx := tb.Context()
	p, err := t.env.srv.Auth.Verify(ctx, t.AdminToken)
	if err != nil {
		tb.Fatalf("bulkheadtest: %s's admin token: %v", t.Slug, err)
	}
	s, err := minter.Mint(ctx, p, bulkhead.MintOptions{Audience: fn.LoginRole})
	if err != nil {
		tb.Fatalf("bulkheadtest: mint a context for %s: %v", t.Slug, err)
	}
	ctx, err = bulkhead.WithSigned(ctx, s.Token, s.Placement)
	if err != nil {
		tb.Fatalf("bulkheadtest: context for %s: %v", t.Slug, err)
	}
	return ctx
}

// FunctionDB returns e's business function: a [bulkhead.DB] opened with
// [bulkhead.Config.AppDatabaseURL] as a login role of its own, registered
// like `bulkhead functions create` does. It holds no keys: it runs only
// contexts vended to it, such as [Tenant.Context]'s. Every call returns
// the same DB; it is closed, and its login role dropped, when the test
// that called [Start] ends.
func (e *Env) FunctionDB(tb testing.TB) *bulkhead.DB {
	tb.Helper()
	_, db, _ := e.function(tb)
	return db
}

// function registers e's business function on first use.
func (e *Env) function(tb testing.TB) (*postgres.FunctionCredentials, *bulkhead.DB, *bulkhead.DB) {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		tb.Fatalf("bulkheadtest: the Env has been stopped: its test has ended")
	}
	if e.fn != nil {
		return e.fn, e.fnDB, e.minter
	}
	ctx := context.Background()
	// Login roles belong to the cluster, which tests may share: the name
	// is random.
	b := make([]byte, 5)
	rand.Read(b)
	fn, err := e.srv.DB.Postgres().CreateFunction(ctx, "bulkheadtest_"+hex.EncodeToString(b))
	if err != nil {
		tb.Fatalf("bulkheadtest: register a function: %v", err)
	}
	e.fn = fn
	if e.fnDB, err = bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: e.srv.PG.URL(fn.LoginRole, fn.Password)}); err != nil {
		tb.Fatalf("bulkheadtest: open the function's DB: %v", err)
	}
	// The server's own minter makes contexts that live 45 seconds, a
	// request's deadline; tests get the longest the database accepts.
	if e.minter, err = bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: e.srv.PG.AdminURL, ContextTTL: bulkhead.MaxContextTTL}); err != nil {
		tb.Fatalf("bulkheadtest: open a minter: %v", err)
	}
	return e.fn, e.fnDB, e.minter
}

// decodeRows decodes a data API answer: an array of rows, or one object.
// Numbers stay json.Number, so that rows survive a round trip exactly.
func decodeRows(body []byte) ([]map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case map[string]any:
		return []map[string]any{v}, nil
	case []any:
		out := make([]map[string]any, 0, len(v))
		for _, x := range v {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, errors.New("bulkheadtest: an element of the answer is not an object")
			}
			out = append(out, m)
		}
		return out, nil
	}
	return nil, errors.New("bulkheadtest: the answer is neither an array nor an object")
}
