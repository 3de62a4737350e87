package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// count returns how many rows of the tenant exist anywhere, as the
// superuser: pool tables and the tenant's silo schema if it still exists.
func count(t *testing.T, s *apitest.Server, uuid string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	total := 0
	for _, tb := range []string{"app.projects", "app.tasks"} {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+tb+` WHERE tenant_id = $1`, uuid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	schema := tenant.ID(uuid).SchemaName()
	var exists bool
	conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists)
	if exists {
		for _, tb := range []string{"projects", "tasks"} {
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.`+tb).Scan(&n); err != nil {
				t.Fatal(err)
			}
			total += n
		}
	}
	return total
}

func TestOffboarding(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	for _, tier := range []string{"pool", "silo"} {
		t.Run(tier, func(t *testing.T) {
			gone := seed(t, s, "gone-"+tier, tier)
			stays := seed(t, s, "stays-"+tier, tier)
			if n := count(t, s, gone.UUID); n != 2 {
				t.Fatalf("before: %d rows, want 2", n)
			}
			// A tenant admin cannot offboard its own tenant.
			if r := s.Do(t, "DELETE", "/v1/tenants/"+gone.Slug, gone.AdminToken, nil); r.Status != http.StatusForbidden {
				t.Fatalf("tenant admin deleting its tenant: %s", r)
			}
			r := s.Do(t, "DELETE", "/v1/tenants/"+gone.Slug, s.AdminToken, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("offboard: %s", r)
			}
			if n := count(t, s, gone.UUID); n != 0 {
				t.Fatalf("after offboarding: %d rows remain", n)
			}
			if n := count(t, s, stays.UUID); n != 2 {
				t.Fatalf("the other tenant has %d rows, want 2", n)
			}
			// Its tokens stop working, its users cannot log in, its slug is never reused.
			if r := s.Do(t, "GET", "/rest/v1/projects", gone.AdminToken, nil); r.Status != http.StatusUnauthorized {
				t.Fatalf("token of an offboarded tenant: %s", r)
			}
			if r := s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": gone.Slug, "email": "admin@" + gone.Slug + ".test", "password": "pw-admin@" + gone.Slug + ".test"}); r.Status != http.StatusUnauthorized {
				t.Fatalf("login to an offboarded tenant: %s", r)
			}
			if r := s.Do(t, "POST", "/v1/tenants", s.AdminToken, map[string]string{"id": gone.Slug, "tier": tier}); r.Status != http.StatusConflict {
				t.Fatalf("re-create an offboarded slug: %s", r)
			}
			if r := s.Do(t, "GET", "/v1/tenants/"+gone.Slug, s.AdminToken, nil); r.Status != http.StatusNotFound {
				t.Fatalf("get an offboarded tenant: %s", r)
			}
			if r := s.Do(t, "DELETE", "/v1/tenants/"+gone.Slug, s.AdminToken, nil); r.Status != http.StatusNotFound {
				t.Fatalf("offboard twice: %s", r)
			}
			if r := s.Do(t, "GET", "/rest/v1/projects", stays.AdminToken, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), stays.ProjectName) {
				t.Fatalf("the other tenant: %s", r)
			}
		})
	}
}

func TestTenantCreate(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := s.CreateTenant(t, "acme", "pool")
	for _, tt := range []struct {
		name   string
		token  string
		body   any
		status int
		code   string
	}{
		{"retry is safe", s.AdminToken, map[string]string{"id": "acme", "name": "acme", "tier": "pool", "plan": "premium"}, http.StatusOK, ""},
		{"same id, other plan", s.AdminToken, map[string]string{"id": "acme", "name": "acme", "tier": "pool"}, http.StatusConflict, "tenant_exists"},
		{"bad plan", s.AdminToken, map[string]string{"id": "newco", "tier": "pool", "plan": "gold"}, http.StatusBadRequest, "invalid_plan"},
		{"same id, other tier", s.AdminToken, map[string]string{"id": "acme", "name": "acme", "tier": "silo"}, http.StatusConflict, "tenant_exists"},
		{"reserved slug", s.AdminToken, map[string]string{"id": "public", "tier": "silo"}, http.StatusBadRequest, "invalid_tenant_id"},
		{"uppercase slug", s.AdminToken, map[string]string{"id": "Acme2", "tier": "pool"}, http.StatusBadRequest, "invalid_tenant_id"},
		{"long slug", s.AdminToken, map[string]string{"id": strings.Repeat("a", 41), "tier": "pool"}, http.StatusBadRequest, "invalid_tenant_id"},
		{"unicode slug", s.AdminToken, map[string]string{"id": "аcme", "tier": "pool"}, http.StatusBadRequest, "invalid_tenant_id"},
		{"bad tier", s.AdminToken, map[string]string{"id": "newco", "tier": "gold"}, http.StatusBadRequest, "invalid_tier"},
		{"unknown field", s.AdminToken, `{"id":"newco","tier":"pool","owner":"me"}`, http.StatusBadRequest, "invalid_body"},
		{"case-variant key", s.AdminToken, `{"id":"newco","ID":"other","tier":"pool"}`, http.StatusBadRequest, "invalid_body"},
		{"not json", s.AdminToken, `{"id":`, http.StatusBadRequest, "invalid_body"},
		{"tenant admin", a.AdminToken, map[string]string{"id": "newco", "tier": "pool"}, http.StatusForbidden, "platform_admin_required"},
		{"no token", "", map[string]string{"id": "newco", "tier": "pool"}, http.StatusUnauthorized, "missing_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Do(t, "POST", "/v1/tenants", tt.token, tt.body)
			if r.Status != tt.status || (tt.code != "" && r.Code() != tt.code) {
				t.Fatalf("POST /v1/tenants %v = %s, want %d %s", tt.body, r, tt.status, tt.code)
			}
			if ct := r.Header.Get("Content-Type"); r.Status >= 400 && ct != "application/problem+json" {
				t.Fatalf("error content type %q", ct)
			}
		})
	}
	r := s.Do(t, "GET", "/v1/tenants", s.AdminToken, nil)
	if strings.Contains(string(r.Body), "newco") || strings.Count(string(r.Body), `"id"`) != 1 {
		t.Fatalf("a refused request wrote something: %s", r)
	}
	// A silo whose schema already exists without a catalog row is refused.
	conn, err := pgx.Connect(context.Background(), s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tenants int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM bulkhead_control.tenants`).Scan(&tenants)
	if tenants != 1 {
		t.Fatalf("%d catalog rows, want 1", tenants)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{MaxBody: 4096})
	a := seedOnPlan(t, s, "acme", "pool", "basic") // basic: nobody may delete
	before := snapshot(t, s, a)
	big := `[` + strings.Repeat(`{"name":"x"},`, 1000) + `{"name":"x"}]`
	for _, tt := range []struct {
		name, method, path string
		token              string
		body               any
		status             int
	}{
		{"oversized body", "POST", "/rest/v1/projects", a.AdminToken, big, http.StatusRequestEntityTooLarge},
		{"malformed json", "POST", "/rest/v1/projects", a.AdminToken, `{"name":`, http.StatusBadRequest},
		{"unknown column", "POST", "/rest/v1/projects", a.AdminToken, `{"name":"x","evil":1}`, http.StatusBadRequest},
		{"system column", "GET", "/rest/v1/projects?select=ctid,xmin", a.AdminToken, nil, http.StatusBadRequest},
		{"reg cast", "GET", "/rest/v1/projects?select=id::regclass", a.AdminToken, nil, http.StatusBadRequest},
		{"unknown table", "GET", "/rest/v1/pg_authid", a.AdminToken, nil, http.StatusNotFound},
		{"control table", "GET", "/rest/v1/keys", a.AdminToken, nil, http.StatusNotFound},
		{"patch without filter", "PATCH", "/rest/v1/projects", a.AdminToken, `{"name":"all"}`, http.StatusBadRequest},
		{"delete without filter (the basic plan refuses any delete first)", "DELETE", "/rest/v1/projects", a.AdminToken, nil, http.StatusForbidden},
		{"bad operator", "GET", "/rest/v1/projects?name=xx.1", a.AdminToken, nil, http.StatusBadRequest},
		{"bad uuid", "GET", "/rest/v1/projects?id=eq.1%27%20or%201=1--", a.AdminToken, nil, http.StatusBadRequest},
		{"bad limit", "GET", "/rest/v1/projects?limit=-1", a.AdminToken, nil, http.StatusBadRequest},
		{"duplicate key in row", "POST", "/rest/v1/projects", a.AdminToken, `{"name":"a","name":"b"}`, http.StatusBadRequest},
		{"case-variant tenant_id", "POST", "/rest/v1/projects", a.AdminToken, `{"name":"a","TENANT_ID":"00000000-0000-4000-8000-000000000000"}`, http.StatusBadRequest},
		{"too long name", "POST", "/rest/v1/projects", a.AdminToken, `{"name":"` + strings.Repeat("n", 600) + `"}`, http.StatusBadRequest},
		{"null name", "POST", "/rest/v1/projects", a.AdminToken, `{"name":null}`, http.StatusBadRequest},
		{"wrong content type", "POST", "/rest/v1/projects", a.AdminToken, nil, http.StatusBadRequest},
		{"member delete", "DELETE", "/rest/v1/projects?id=eq." + a.ProjectID, a.MemberToken, nil, http.StatusForbidden},
		{"admin delete on basic", "DELETE", "/rest/v1/projects?id=eq." + a.ProjectID, a.AdminToken, nil, http.StatusForbidden},
		{"other tenant as leading key", "GET", "/rest/v1/projects?tenant_id=eq.6f1d3c1e-9a55-4a8e-b7a4-1f2f3e4d5c6b", a.AdminToken, nil, http.StatusForbidden},
		{"batch with one bad row", "POST", "/rest/v1/projects", a.AdminToken, `[{"name":"ok"},{"name":""}]`, http.StatusBadRequest},
		{"single over many", "PATCH", "/rest/v1/projects?name=neq.zzz", a.AdminToken, `{"description":"x"}`, http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.name == "wrong content type" {
				hdr = []string{"Content-Type", "text/plain"}
				tt.body = "name=x"
			}
			if tt.name == "single over many" {
				// one object asked for, two rows would change: rolled back
				s.Do(t, "POST", "/rest/v1/projects", a.AdminToken, `{"name":"second"}`)
				before = snapshot(t, s, a)
				hdr = []string{"Accept", "application/vnd.pgrst.object+json", "Prefer", "return=representation"}
				tt.status = http.StatusBadRequest
			}
			r := s.Do(t, tt.method, tt.path, tt.token, tt.body, hdr...)
			if r.Status != tt.status {
				t.Fatalf("%s %s = %s, want %d", tt.method, tt.path, r, tt.status)
			}
			if r.Header.Get("Content-Type") != "application/problem+json" || r.Code() == "" {
				t.Fatalf("not a problem+json with a code: %q %s", r.Header.Get("Content-Type"), r)
			}
			if after := snapshot(t, s, a); after != before {
				t.Fatalf("a refused request changed data:\n%s\n%s", before, after)
			}
		})
	}
}

func TestLoginAnswersAlike(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	s.CreateTenant(t, "acme", "pool")
	var first *apitest.Response
	for _, body := range []map[string]string{
		{"tenant": "acme", "email": "admin@acme.test", "password": "wrong"},
		{"tenant": "acme", "email": "nobody@acme.test", "password": "wrong"},
		{"tenant": "no-such", "email": "admin@acme.test", "password": "pw-admin@acme.test"},
		{"tenant": "INVALID SLUG", "email": "admin@acme.test", "password": "pw-admin@acme.test"},
	} {
		r := s.Do(t, "POST", "/v1/auth/token", "", body)
		if r.Status != http.StatusUnauthorized || r.Code() != "invalid_credentials" {
			t.Fatalf("login %v = %s", body, r)
		}
		if first == nil {
			first = r
		} else if detail(r) != detail(first) {
			t.Fatalf("login failures differ: %s vs %s", r, first)
		}
	}
}

func detail(r *apitest.Response) string {
	b := string(r.Body)
	i := strings.Index(b, `"request_id"`)
	if i < 0 {
		return b
	}
	return b[:i]
}

func TestVendedContextBoundToFunction(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	b := seed(t, s, "globex", "silo")
	ctx := context.Background()
	// Login roles are cluster-wide: names are unique per test run.
	suffix := strings.ReplaceAll(a.UUID[:8], "-", "")
	f1, err := s.DB.Postgres().CreateFunction(ctx, "orders_"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := s.DB.Postgres().CreateFunction(ctx, "billing_"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	vend := func(fnToken, userToken string) (*apitest.Response, string, string) {
		r := s.Do(t, "POST", "/v1/auth/context", fnToken, map[string]string{"token": userToken})
		var v struct{ Context, Schema string }
		if r.Status == http.StatusOK {
			r.JSON(t, &v)
		}
		return r, v.Context, v.Schema
	}
	for _, tt := range []struct{ name, fn, user string }{
		{"user token as function credential", a.AdminToken, a.AdminToken},
		{"no function credential", "", a.AdminToken},
		{"forged function credential", "bkf_orders_" + suffix + "_" + strings.Repeat("0", 48), a.AdminToken},
		{"garbage user token", f1.Token, "garbage"},
		{"platform token", f1.Token, s.AdminToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r, _, _ := vend(tt.fn, tt.user); r.Status < 400 {
				t.Fatalf("vend: %s", r)
			}
		})
	}
	r, ctxA, schemaA := vend(f1.Token, a.MemberToken)
	if r.Status != http.StatusOK || schemaA != "app" {
		t.Fatalf("vend for acme: %s", r)
	}
	_, ctxB, schemaB := vend(f1.Token, b.MemberToken)
	if !strings.HasPrefix(schemaB, "t_") {
		t.Fatalf("globex's schema %q", schemaB)
	}
	run := func(fc string, pw string, token, schema string) []string {
		db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: s.PG.URL(fc, pw)})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		c, err := bulkhead.WithSigned(ctx, token, schema)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		err = db.Tx(c, func(tx pgx.Tx) error {
			tbl, err := bulkhead.Table(c, "projects")
			if err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT name FROM `+tbl)
			if err != nil {
				return err
			}
			names, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := run(f1.LoginRole, f1.Password, ctxA, schemaA); len(got) != 1 || got[0] != a.ProjectName {
		t.Fatalf("orders function with acme's context sees %v", got)
	}
	if got := run(f1.LoginRole, f1.Password, ctxB, schemaB); len(got) != 1 || got[0] != b.ProjectName {
		t.Fatalf("orders function with globex's context sees %v", got)
	}
	// The same context under another function's login role is useless.
	if got := run(f2.LoginRole, f2.Password, ctxA, schemaA); len(got) != 0 {
		t.Fatalf("billing function replaying orders' context sees %v", got)
	}
	// acme's context aimed at globex's silo sees nothing.
	if got := run(f1.LoginRole, f1.Password, ctxA, schemaB); len(got) != 0 {
		t.Fatalf("acme's context in globex's silo sees %v", got)
	}
	// A business-code handle has no keys and cannot mint.
	db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: s.PG.URL(f1.LoginRole, f1.Password)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Mint(ctx, tenant.Principal{Tenant: "globex", Role: tenant.Admin}, bulkhead.MintOptions{}); err == nil {
		t.Fatal("a business-code handle minted a context")
	}
	if err := db.Tx(tenant.NewContext(ctx, tenant.Principal{Tenant: "globex", Role: tenant.Admin}), func(pgx.Tx) error { return nil }); err == nil {
		t.Fatal("a business-code handle ran a transaction from a principal it chose")
	}
	// Revoked, the function gets no more contexts, and the one it was
	// vended is addressed to a role that no longer logs in.
	if _, err := s.DB.Postgres().DeleteFunction(ctx, f1.Name); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := vend(f1.Token, a.AdminToken); r.Status != http.StatusUnauthorized || r.Code() != "invalid_function_credential" {
		t.Fatalf("vend with a deleted function's credential: %s", r)
	}
	if c, err := pgx.Connect(ctx, s.PG.URL(f1.LoginRole, f1.Password)); err == nil {
		c.Close(ctx)
		t.Fatal("a deleted function's role still logs in")
	}
	// The other function is untouched.
	if r, _, _ := vend(f2.Token, a.AdminToken); r.Status != http.StatusOK {
		t.Fatalf("vend for the other function after the delete: %s", r)
	}
}

func TestSuspendAndResume(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "silo")
	if r := s.Do(t, "PATCH", "/v1/tenants/acme", a.AdminToken, map[string]string{"status": "suspended"}); r.Status != http.StatusForbidden {
		t.Fatalf("tenant admin suspending its tenant: %s", r)
	}
	if r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, map[string]string{"status": "frozen"}); r.Status != http.StatusBadRequest {
		t.Fatalf("unknown status: %s", r)
	}
	// No update changes a tenant's tier or placement, which would route
	// it to tables that do not hold its rows: a move copies them first
	// (POST /v1/tenants/{id}/move, TestMoveTenantThroughTheAPI).
	for _, body := range []map[string]string{
		{"status": "active", "tier": "pool"},
		{"status": "active", "placement": "pool"},
	} {
		if r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, body); r.Status != http.StatusBadRequest {
			t.Fatalf("update with %v: %s", body, r)
		}
	}
	if r := s.Do(t, "GET", "/v1/tenants/acme", s.AdminToken, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"tier":"silo"`) {
		t.Fatalf("after the refused moves: %s", r)
	}
	if r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, map[string]string{"status": "suspended"}); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"status":"suspended"`) {
		t.Fatalf("suspend: %s", r)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("a suspended tenant's token: %s", r)
	}
	if r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, map[string]string{"status": "active"}); r.Status != http.StatusOK {
		t.Fatalf("resume: %s", r)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), a.ProjectName) {
		t.Fatalf("after resume: %s", r)
	}
}

// TestChangePlan: only a platform admin changes a tenant's plan; a bad
// change changes nothing; the new plan decides the tenant's next request
// on the server (its template, so a basic tenant cannot delete, and its
// limits, which were made for the old plan); the change is audited with
// the plan before it; another tenant on the old plan is untouched.
func TestChangePlan(t *testing.T) {
	t.Parallel()
	s := startTightBasic(t)
	a := seed(t, s, "acme", "pool")
	b := seed(t, s, "globex", "pool")
	plan := func(slug string) string {
		t.Helper()
		var out struct{ Plan string }
		s.Do(t, "GET", "/v1/tenants/"+slug, s.AdminToken, nil).JSON(t, &out)
		return out.Plan
	}
	if r := s.Do(t, "PATCH", "/v1/tenants/acme", a.AdminToken, map[string]string{"plan": "basic"}); r.Status != http.StatusForbidden {
		t.Fatalf("a tenant admin changing its own plan: %s", r)
	}
	if r := s.Do(t, "PATCH", "/v1/tenants/globex", a.AdminToken, map[string]string{"plan": "basic"}); r.Status != http.StatusNotFound {
		t.Fatalf("a tenant admin changing another tenant's plan: %s", r)
	}
	for _, tt := range []struct {
		body any
		code string
	}{
		{map[string]string{"plan": "gold"}, "invalid_plan"},
		{map[string]string{"plan": "Premium"}, "invalid_plan"},
		{map[string]string{}, "invalid_body"},
		{map[string]string{"status": "frozen", "plan": "basic"}, "invalid_status"},
		{map[string]string{"plan": "basic", "tier": "silo"}, "invalid_body"},
		{map[string]any{"plan": 1}, "invalid_body"},
	} {
		if r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, tt.body); r.Status != http.StatusBadRequest || r.Code() != tt.code {
			t.Fatalf("update %v: %s, want 400 %s", tt.body, r, tt.code)
		}
	}
	if p := plan("acme"); p != "premium" {
		t.Fatalf("after the refused updates, acme is on %q", p)
	}
	// deletes creates a project as t's admin and deletes it: the status of
	// the deletion.
	deletes := func(c *canary) int {
		t.Helper()
		r := s.Do(t, "POST", "/rest/v1/projects", c.AdminToken, map[string]string{"name": "doomed"}, "Prefer", "return=representation")
		if r.Status != http.StatusCreated {
			t.Fatalf("%s: insert: %s", c.Slug, r)
		}
		var rows []map[string]any
		r.JSON(t, &rows)
		return s.Do(t, "DELETE", "/rest/v1/projects?id=eq."+rows[0]["id"].(string), c.AdminToken, nil).Status
	}
	if st := deletes(a); st != http.StatusNoContent {
		t.Fatalf("a premium tenant's delete: %d", st)
	}
	r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, map[string]string{"plan": "basic"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"plan":"basic"`) {
		t.Fatalf("to basic: %s", r)
	}
	if p := plan("acme"); p != "basic" {
		t.Fatalf("after the change, acme is on %q", p)
	}
	// The basic template allows no delete, and basic's burst of 3 ends
	// within a few requests; premium's limiter, made before, would allow
	// hundreds.
	if st := deletes(a); st != http.StatusForbidden {
		t.Fatalf("a basic tenant's delete: %d", st)
	}
	limited := false
	for range 5 {
		if r := s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil); r.Status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("acme on the basic plan was never rate-limited: its limits are still premium's")
	}
	// globex stayed on premium.
	if st := deletes(b); st != http.StatusNoContent {
		t.Fatalf("the other tenant's delete: %d", st)
	}
	for range 10 {
		if r := s.Do(t, "GET", "/rest/v1/projects", b.AdminToken, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), b.ProjectName) || strings.Contains(string(r.Body), a.ProjectName) {
			t.Fatalf("the other tenant after acme's change: %s", r)
		}
	}
	if p := plan("globex"); p != "premium" {
		t.Fatalf("globex is on %q", p)
	}
	// Back to premium: deletes again; setting the plan it has is no error.
	for range 2 {
		if r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, map[string]string{"plan": "premium"}); r.Status != http.StatusOK {
			t.Fatalf("to premium: %s", r)
		}
	}
	if st := deletes(a); st != http.StatusNoContent {
		t.Fatalf("a premium tenant's delete, again: %d", st)
	}
	// Status and plan in one request.
	if r := s.Do(t, "PATCH", "/v1/tenants/acme", s.AdminToken, map[string]string{"status": "suspended", "plan": "basic"}); r.Status != http.StatusOK ||
		!strings.Contains(string(r.Body), `"plan":"basic"`) || !strings.Contains(string(r.Body), `"status":"suspended"`) {
		t.Fatalf("suspend and downgrade: %s", r)
	}
	var changes []string
	ctx := context.Background()
	adm, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	rows, err := adm.Query(ctx, `SELECT coalesce(ev->'detail'->>'plan_before', '-') || '>' || coalesce(ev->'detail'->>'plan', '-') || ',' || coalesce(ev->'detail'->>'status', '-')
		FROM (SELECT event FROM bulkhead_audit.inbox UNION ALL SELECT body::jsonb FROM bulkhead_audit.events) e(ev)
		WHERE ev->>'action' = 'tenants:Update' AND ev->>'tenant' = 'acme' AND ev->>'decision' = 'allow' ORDER BY (ev->>'at')::timestamptz`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		changes = append(changes, c)
	}
	if got, want := strings.Join(changes, " "), "premium>basic,- basic>premium,- premium>premium,- premium>basic,suspended"; got != want {
		t.Fatalf("audited changes of acme: %s, want %s", got, want)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	for _, tt := range []struct{ method, path, allow string }{
		{"PUT", "/rest/v1/projects", "GET, POST, PATCH, DELETE, HEAD"},
		{"DELETE", "/v1/tenants", "POST, GET, HEAD"},
		{"GET", "/v1/auth/token", "POST"},
	} {
		r := s.Do(t, tt.method, tt.path, s.AdminToken, nil)
		if r.Status != http.StatusMethodNotAllowed || r.Code() != "method_not_allowed" || r.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s = %s (Allow %q), want 405 with Allow %q", tt.method, tt.path, r, r.Header.Get("Allow"), tt.allow)
		}
	}
	if r := s.Do(t, "GET", "/v2/nothing", "", nil); r.Status != http.StatusNotFound || r.Code() != "route_not_found" {
		t.Errorf("unknown path: %s", r)
	}
}

// lockProjects holds an ACCESS EXCLUSIVE lock on the pool's projects
// table, through a connection of its own, until the returned unlock or the
// test's end: whatever needs the table waits.
func lockProjects(t *testing.T, s *apitest.Server) (conn *pgx.Conn, unlock func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE app.projects IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() { once.Do(func() { tx.Rollback(ctx) }) }
	t.Cleanup(unlock)
	return conn, unlock
}

// awaitLockWait returns once a backend of conn's database waits on a lock
// (at most 20 s, a bound for a busy machine, not a timing assertion): a
// request started before it is then holding what it took, a transaction
// slot and its connection, while it waits.
func awaitLockWait(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for i := 0; ; i++ {
		if lockWaiters(t, conn) > 0 {
			return
		}
		if i == 2000 {
			t.Fatal("no request waited on the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockWaiters counts the backends of conn's database that wait on a lock.
// conn holds the lock, in a transaction, and PostgreSQL keeps the first
// reading of pg_stat_activity for the rest of a transaction: without
// pg_stat_clear_snapshot, a backend that connected after it (the data
// API's pool connects on first use) would never show.
func lockWaiters(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		t.Fatal(err)
	}
	var waiting int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	return waiting
}

// TestRequestDeadline holds a lock that the request must wait for: when
// its deadline passes, the answer is a 503, not an empty 200.
func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) { c.RequestTimeout = 500 * time.Millisecond }})
	a := seed(t, s, "acme", "pool")
	lockProjects(t, s)
	r := s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil)
	if r.Status != http.StatusServiceUnavailable || r.Code() != "timeout" {
		t.Fatalf("request past its deadline: %s", r)
	}
}

// TestNoisyNeighbour floods one tenant past its plan's limit: it gets 429
// with Retry-After, and another tenant keeps getting answers.
func TestNoisyNeighbour(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.Limits = map[string]httpapi.Limit{
			"basic":   {Rate: 1, Burst: 3, Concurrent: 2, StatementTimeout: time.Second},
			"premium": httpapi.DefaultLimits["premium"],
		}
	}})
	noisy := seedOnPlan(t, s, "noisy", "pool", "basic")
	quiet := seed(t, s, "quiet", "pool")
	limited := 0
	for i := 0; i < 20; i++ {
		r := s.Do(t, "GET", "/rest/v1/projects", noisy.AdminToken, nil)
		switch r.Status {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			if r.Code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without its code or Retry-After: %s %v", r, r.Header)
			}
			limited++
		default:
			t.Fatalf("noisy tenant: %s", r)
		}
		if q := s.Do(t, "GET", "/rest/v1/projects", quiet.AdminToken, nil); q.Status != http.StatusOK {
			t.Fatalf("the quiet tenant was refused while the other flooded: %s", q)
		}
	}
	if limited < 10 {
		t.Fatalf("only %d of 20 requests over a 1/s, burst 3 limit were refused", limited)
	}
	// Contexts vended for the tenant's users through a function are its
	// traffic too: past the plan they are refused the same way, and the
	// quiet tenant's are not.
	fn, err := s.DB.Postgres().CreateFunction(t.Context(), "noisy_"+strings.ReplaceAll(noisy.UUID[:8], "-", ""))
	if err != nil {
		t.Fatal(err)
	}
	// Each context comes with its own tenant's plan's bounds on a
	// statement, for the function to apply.
	limits := func(r *apitest.Response) (ms int64, workers int) {
		var v struct {
			Limits struct {
				StatementTimeoutMS int64 `json:"statement_timeout_ms"`
				ParallelWorkers    int   `json:"parallel_workers"`
			}
		}
		r.JSON(t, &v)
		return v.Limits.StatementTimeoutMS, v.Limits.ParallelWorkers
	}
	vendLimited := 0
	for i := 0; i < 20; i++ {
		r := s.Do(t, "POST", "/v1/auth/context", fn.Token, map[string]string{"token": noisy.AdminToken})
		switch r.Status {
		case http.StatusOK:
			if ms, w := limits(r); ms != 1000 || w != 0 {
				t.Fatalf("the basic tenant's context says %d ms and %d workers, want its plan's 1000 and 0", ms, w)
			}
		case http.StatusTooManyRequests:
			if r.Code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("vend: 429 without its code or Retry-After: %s %v", r, r.Header)
			}
			vendLimited++
		default:
			t.Fatalf("vend for the noisy tenant: %s", r)
		}
		q := s.Do(t, "POST", "/v1/auth/context", fn.Token, map[string]string{"token": quiet.AdminToken})
		if q.Status != http.StatusOK {
			t.Fatalf("a context for the quiet tenant was refused while the other flooded: %s", q)
		}
		if ms, w := limits(q); ms != httpapi.DefaultLimits["premium"].StatementTimeout.Milliseconds() || w != 0 {
			t.Fatalf("the premium tenant's context says %d ms and %d workers", ms, w)
		}
	}
	if vendLimited < 10 {
		t.Fatalf("only %d of 20 contexts vended past a 1/s, burst 3 limit were refused", vendLimited)
	}
}

// adminScan runs one query on the test database as its superuser and
// scans its one row into dest.
func adminScan(t *testing.T, s *apitest.Server, sql string, args []any, dest ...any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

// auditEventsFor counts the audit events, in the inbox or in the chain,
// of the requests with these ids.
func auditEventsFor(t *testing.T, s *apitest.Server, ids []string) int {
	t.Helper()
	var n int
	if err := adminScan(t, s, `SELECT (SELECT count(*) FROM bulkhead_audit.inbox WHERE event->>'request_id' = ANY($1))
		+ (SELECT count(*) FROM bulkhead_audit.events WHERE body::jsonb->>'request_id' = ANY($1))`, []any{ids}, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// countCode counts the audit events in the inbox with this code.
func countCode(t *testing.T, s *apitest.Server, code string) int {
	t.Helper()
	var n int
	if err := adminScan(t, s, `SELECT count(*) FROM bulkhead_audit.inbox WHERE event->>'code' = $1`, []any{code}, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// startTightBasic starts a server whose basic plan allows a burst of 3
// requests and almost nothing after it, premium as shipped, and sends
// refusals at once.
func startTightBasic(t *testing.T) *apitest.Server {
	t.Helper()
	return apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.Limits = map[string]httpapi.Limit{
			"basic":   {Rate: 0.001, Burst: 3, Concurrent: 2, StatementTimeout: time.Second},
			"premium": httpapi.DefaultLimits["premium"],
		}
		c.RefusalPause = -1
	}})
}

// TestRefusedRequestsCountAgainstThePlan: requests the server refuses
// before any SQL (an unknown table, another tenant's record, another
// tenant's id in a filter) cost it work and an audit event each, so they
// take from the tenant's bucket like any other: past the burst, 429 with
// Retry-After and no audit event, while another tenant is answered.
func TestRefusedRequestsCountAgainstThePlan(t *testing.T) {
	t.Parallel()
	s := startTightBasic(t)
	noisy := s.CreateTenantOnPlan(t, "noisy", "pool", "basic")
	quiet := seed(t, s, "quiet", "pool")
	paths := []string{"/rest/v1/no_such_table", "/v1/tenants/quiet", "/rest/v1/projects?tenant_id=eq." + quiet.UUID}
	var answered, limited []string
	for i := range 9 {
		r := s.Do(t, "GET", paths[i%len(paths)], noisy.AdminToken, nil)
		switch {
		case r.Status == http.StatusTooManyRequests:
			if r.Code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without its code or Retry-After: %s %v", r, r.Header)
			}
			limited = append(limited, r.Header.Get("X-Request-Id"))
		case r.Status >= 400 && r.Status < 500:
			answered = append(answered, r.Header.Get("X-Request-Id"))
		default:
			t.Fatalf("noisy tenant, %s: %s", paths[i%len(paths)], r)
		}
	}
	if len(answered) != 3 || len(limited) != 6 {
		t.Fatalf("9 refused requests on a burst of 3: %d answered, %d rate-limited; want 3 and 6", len(answered), len(limited))
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", quiet.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("the quiet tenant after the flood: %s", r)
	}
	// Only the answered refusals were audited.
	count := func(ids []string) int { return auditEventsFor(t, s, ids) }
	if n := count(answered); n != 3 {
		t.Fatalf("%d audit events for the 3 answered refusals; want 3", n)
	}
	if n := count(limited); n != 0 {
		t.Fatalf("%d audit events for the 6 rate-limited requests; want none", n)
	}
}

// TestAnonymousRefusalsBounded: every denial is audited before it is
// answered, so a source without valid credentials gets only its share of
// denials; past it, 429 too_many_refusals with Retry-After, not audited
// one by one but counted, and FlushRefusals writes the count. Requests
// with valid credentials from the same source are untouched, and a
// principal's denials are audited one by one.
func TestAnonymousRefusalsBounded(t *testing.T) {
	t.Parallel()
	s := startWithAnonShare(t, 3)
	a := seed(t, s, "acme", "pool")
	b := s.CreateTenant(t, "globex", "pool")
	forged := a.AdminToken[:len(a.AdminToken)-4] + "AAAA"
	if forged == a.AdminToken {
		forged = a.AdminToken[:len(a.AdminToken)-4] + "BBBB"
	}
	// The member's token is used once before the share runs out: past it,
	// only tokens the server has seen pass are checked at all
	// (TestUnseenTokensPastTheShare).
	if r := s.Do(t, "GET", "/rest/v1/projects", a.MemberToken, nil); r.Status != http.StatusOK {
		t.Fatalf("the member within the share: %s", r)
	}
	var denied, limited []string
	codes := map[string]int{}
	send := func(path, token string) {
		r := s.Do(t, "GET", path, token, nil)
		switch r.Status {
		case http.StatusUnauthorized, http.StatusNotFound:
			denied = append(denied, r.Header.Get("X-Request-Id"))
		case http.StatusTooManyRequests:
			if r.Code() != "too_many_refusals" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without its code or Retry-After: %s %v", r, r.Header)
			}
			limited = append(limited, r.Header.Get("X-Request-Id"))
		default:
			t.Fatalf("%s without valid credentials: %s", path, r)
		}
		codes[r.Code()]++
	}
	for range 10 {
		send("/rest/v1/projects", forged)
	}
	for range 2 {
		send("/no/such/route", "")
	}
	if len(denied) != 3 || len(limited) != 9 {
		t.Fatalf("12 requests without credentials on a share of 3: %d denied, %d limited (%v); want 3 and 9", len(denied), len(limited), codes)
	}
	// Past the share, a function credential is not even looked up.
	if r := s.Do(t, "POST", "/v1/auth/context", "bkf_not_a_credential", map[string]string{"token": a.AdminToken}); r.Status != http.StatusTooManyRequests || r.Code() != "too_many_refusals" {
		t.Fatalf("vending past the share: %s", r)
	}
	// The share does not touch requests with valid credentials from the
	// same source, and a principal's denials are audited one by one.
	if r := s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("a valid token from the same source: %s", r)
	}
	member := s.Do(t, "GET", "/rest/v1/projects?tenant_id=eq."+b.UUID, a.MemberToken, nil)
	if member.Status != http.StatusForbidden {
		t.Fatalf("naming another tenant: %s", member)
	}
	count := func(ids []string) int { return auditEventsFor(t, s, ids) }
	ctx := context.Background()
	if n := count(denied); n != 3 {
		t.Fatalf("%d of the 3 denials audited; want every one", n)
	}
	if n := count(limited); n != 0 {
		t.Fatalf("%d of the 9 429s audited one by one; want none", n)
	}
	if n := count([]string{member.Header.Get("X-Request-Id")}); n != 1 {
		t.Fatalf("the member's denial: %d events; want 1", n)
	}
	if err := s.API.FlushRefusals(ctx); err != nil {
		t.Fatal(err)
	}
	var src, vis string
	var detail []byte
	if err := adminScan(t, s, `SELECT event->>'source_ip', event->>'visibility', event->'detail' FROM bulkhead_audit.inbox WHERE event->>'code' = 'too_many_refusals'`, nil, &src, &vis, &detail); err != nil {
		t.Fatalf("the count's event: %v", err)
	}
	var d struct {
		Count int64            `json:"count"`
		Codes map[string]int64 `json:"codes"`
	}
	if err := json.Unmarshal(detail, &d); err != nil {
		t.Fatal(err)
	}
	if src != "127.0.0.1" || vis != "platform" || d.Count != 10 || d.Codes["route_not_found"] != 2 || d.Codes["invalid_function_credential"] != 1 || len(d.Codes) != 3 {
		t.Fatalf("the count's event: source %q, visibility %q, detail %s; want 127.0.0.1, platform, 10 (7 for the forged token, 2 route_not_found, 1 invalid_function_credential)", src, vis, detail)
	}
	// Written once.
	if err := s.API.FlushRefusals(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countCode(t, s, "too_many_refusals"); n != 1 {
		t.Fatalf("after a second flush: %d count events; want 1", n)
	}
}

// TestLoginPastTheShareHashesNothing: a source that has used up its share
// of failed logins, or of denials, gets 429 too_many_refusals before any
// password check, so even the right password is not checked (a check costs
// tens of milliseconds of CPU that other tenants need); the 429 is the
// same whether the password was right or not. The two shares are apart:
// failed logins past theirs leave a forged token its 401.
func TestLoginPastTheShareHashesNothing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		config func(*httpapi.Config)
	}{
		{"share of denials", func(c *httpapi.Config) { c.AnonymousRefusals = httpapi.Bucket{Rate: 0.001, Burst: 3} }},
		{"share of failed logins", func(c *httpapi.Config) { c.FailedLogins = httpapi.Bucket{Rate: 0.001, Burst: 3} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
				tt.config(c)
				c.RefusalPause = -1
			}})
			s.CreateTenant(t, "acme", "pool") // logs its two users in: successes take nothing from either share
			login := func(pw string) *apitest.Response {
				return s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": "acme", "email": "admin@acme.test", "password": pw})
			}
			for i := range 3 {
				if r := login("wrong"); r.Status != http.StatusUnauthorized || r.Code() != "invalid_credentials" {
					t.Fatalf("failed login %d within the share: %s", i+1, r)
				}
			}
			wrong, right := login("wrong"), login("pw-admin@acme.test")
			for _, r := range []*apitest.Response{wrong, right} {
				if r.Status != http.StatusTooManyRequests || r.Code() != "too_many_refusals" || r.Header.Get("Retry-After") == "" {
					t.Fatalf("a login past the share: %s; want 429 too_many_refusals with Retry-After, before any password check", r)
				}
			}
			if !sameAnswer(wrong, right) {
				t.Fatalf("the 429 differs with the right password:\n%s\n%s", wrong.Body, right.Body)
			}
			forged := s.Do(t, "GET", "/rest/v1/projects", "eyJhbGciOiJFZERTQSJ9.e30.AAAA", nil)
			if tt.name == "share of failed logins" && forged.Status != http.StatusUnauthorized {
				t.Fatalf("a forged token after the failed logins' share ran out: %s; want its 401", forged)
			}
			// Counted for the flush, under the denial they would have been.
			if err := s.API.FlushRefusals(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := countCode(t, s, "too_many_refusals"); n < 1 {
				t.Fatalf("%d count events; want the 429s counted", n)
			}
		})
	}
}

// TestPasswordChecksBudget: past the server's budget of password checks,
// logins from any address, with any password, and new users' passwords get
// 503 password_checks_busy with Retry-After, before any check; the failed
// logins' share of the address is not touched.
func TestPasswordChecksBudget(t *testing.T) {
	t.Parallel()
	s := startWithChecks(t, 12) // shares of 3
	// Each creates and logs in two users: four checks, two of the
	// tenant's share of logins.
	s.CreateTenant(t, "acme", "pool")
	s.CreateTenant(t, "globex", "pool")
	// A tenant without users yet, whose share of the budget is untouched.
	if r := s.Do(t, "POST", "/v1/tenants", s.AdminToken, map[string]string{"id": "initech", "name": "Initech", "tier": "pool"}); r.Status != http.StatusCreated {
		t.Fatalf("create initech: %s", r)
	}
	login := func(slug, pw string) *apitest.Response {
		return s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": slug, "email": "admin@" + slug + ".test", "password": pw})
	}
	for _, slug := range []string{"acme", "umbrella", "umbrella"} {
		if r := login(slug, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("a failed login to %s within the budget: %s", slug, r)
		}
	}
	if r := login("globex", "pw-admin@globex.test"); r.Status != http.StatusOK {
		t.Fatalf("a login within the budget: %s", r)
	}
	// Twelve checks: the budget is spent, and every tenant's share has room.
	wrong, right := login("acme", "wrong"), login("globex", "pw-admin@globex.test")
	newUser := s.Do(t, "POST", "/v1/tenants/initech/users", s.AdminToken, map[string]string{"email": "new@initech.test", "password": "a-long-password"})
	for _, r := range []*apitest.Response{wrong, right, newUser} {
		if r.Status != http.StatusServiceUnavailable || r.Code() != "password_checks_busy" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("past the budget: %s; want 503 password_checks_busy with Retry-After", r)
		}
	}
	if !sameAnswer(wrong, right) {
		t.Fatalf("the 503 differs with the right password:\n%s\n%s", wrong.Body, right.Body)
	}
	// Nothing was created, and bad input is still refused as such.
	if r := s.Do(t, "GET", "/v1/tenants/initech/users", s.AdminToken, nil); r.Status != http.StatusOK || strings.Contains(string(r.Body), "new@initech.test") {
		t.Fatalf("users after the refused creation: %s", r)
	}
	if r := s.Do(t, "POST", "/v1/tenants/initech/users", s.AdminToken, map[string]string{"email": "new@initech.test", "password": ""}); r.Status != http.StatusBadRequest {
		t.Fatalf("an empty password past the budget: %s; want its 400", r)
	}
}

// sameAnswer reports whether two responses have the same body but for
// their request ids: what a client could tell them apart by.
func sameAnswer(a, b *apitest.Response) bool {
	return string(a.Body) == strings.Replace(string(b.Body), b.Header.Get("X-Request-Id"), a.Header.Get("X-Request-Id"), 1)
}

// startWithChecks starts a server whose budget of password checks is a
// burst of n that never refills (each tenant share a quarter of it), and
// whose refusals are answered at once.
func startWithChecks(t *testing.T, n int) *apitest.Server {
	t.Helper()
	return apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.PasswordChecks = httpapi.Bucket{Rate: 0.001, Burst: n}
		c.RefusalPause = -1
	}})
}

// startWithAnonShare starts a server whose share of denials for each
// source without valid credentials is a burst of n that never refills,
// and whose refusals are answered at once.
func startWithAnonShare(t *testing.T, n int) *apitest.Server {
	t.Helper()
	return apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.AnonymousRefusals = httpapi.Bucket{Rate: 0.001, Burst: n}
		c.RefusalPause = -1
	}})
}

// TestLoginShareOfATenant: logins naming one tenant take at most a
// quarter of the server's budget of password checks; past that share they
// get 503 tenant_logins_busy before any lookup, the same answer for the
// right password and the wrong one, and take nothing from the budget, so
// the other tenants' users still log in. A name no tenant has gets a share
// of its own, as a tenant's does: the answers do not say which exist.
func TestLoginShareOfATenant(t *testing.T) {
	t.Parallel()
	s := startWithChecks(t, 16)       // shares of 4
	s.CreateTenant(t, "acme", "pool") // four checks, two of acme's logins
	login := func(slug, pw string) *apitest.Response {
		return s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": slug, "email": "admin@acme.test", "password": pw})
	}
	for range 2 {
		if r := login("acme", "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("a failed login to acme within its share: %s; want 401", r)
		}
	}
	busy := func(what string, r *apitest.Response) {
		t.Helper()
		if r.Status != http.StatusServiceUnavailable || r.Code() != "tenant_logins_busy" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s past its share: %s; want 503 tenant_logins_busy with Retry-After", what, r)
		}
	}
	for i := range 10 {
		busy(fmt.Sprintf("acme's failed login %d", i), login("acme", "wrong"))
	}
	wrong, right := login("acme", "wrong"), login("acme", "pw-admin@acme.test")
	busy("acme's wrong password", wrong)
	busy("acme's right password", right)
	if !sameAnswer(wrong, right) {
		t.Fatalf("the 503 differs with the right password:\n%s\n%s", wrong.Body, right.Body)
	}
	if r := login("umbrella", "wrong"); r.Status != http.StatusUnauthorized {
		t.Fatalf("a login naming no tenant: %s; want 401 from a share of its own", r)
	}
	// Seven checks taken so far: had acme's twelve refused logins taken
	// from the budget, globex's users could not be created or log in.
	s.CreateTenant(t, "globex", "pool")
	// Names that are not tenant names share one share.
	for i, name := range []string{"ACME", "x", "acme-", "globex!"} {
		if r := login(name, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("login %d naming %q within the invalid names' share: %s; want 401", i, name, r)
		}
	}
	busy("a fifth invalid name", login("-", "wrong"))
}

// TestBusyLoginsSpendTheAddressShare: logins refused because the
// password checks are busy are not failed logins, but each takes from
// its address's share of denials, so one address that keeps sending
// them soon gets 429 too_many_refusals before its body is read. Another
// address naming the same tenant still gets the 503, and one naming
// another tenant still has its password checked: the 429 is that
// address's alone.
func TestBusyLoginsSpendTheAddressShare(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.PasswordChecks = httpapi.Bucket{Rate: 0.001, Burst: 16} // shares of 4
		c.AnonymousRefusals = httpapi.Bucket{Rate: 0.001, Burst: 5}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
		c.RefusalPause = -1
	}})
	s.CreateTenant(t, "acme", "pool") // four checks, two of acme's logins
	login := func(addr, slug string) *apitest.Response {
		return s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": slug, "email": "admin@" + slug + ".test", "password": "wrong"},
			"X-Forwarded-For", addr)
	}
	const flooder, other = "198.51.100.1", "198.51.100.2"
	// Two failed logins (two denials of the flooder's five), then acme's
	// share is spent: three busy answers take the rest.
	for i := range 2 {
		if r := login(flooder, "acme"); r.Status != http.StatusUnauthorized {
			t.Fatalf("failed login %d within acme's share: %s; want 401", i, r)
		}
	}
	for i := range 3 {
		if r := login(flooder, "acme"); r.Status != http.StatusServiceUnavailable || r.Code() != "tenant_logins_busy" {
			t.Fatalf("busy login %d: %s; want 503 tenant_logins_busy", i, r)
		}
	}
	for i, slug := range []string{"acme", "globex", "acme"} {
		if r := login(flooder, slug); r.Status != http.StatusTooManyRequests || r.Code() != "too_many_refusals" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("login %d naming %s from the address past its share: %s; want 429 too_many_refusals", i, slug, r)
		}
	}
	if r := login(other, "acme"); r.Status != http.StatusServiceUnavailable || r.Code() != "tenant_logins_busy" {
		t.Fatalf("another address naming acme: %s; want 503 tenant_logins_busy", r)
	}
	if r := login(other, "globex"); r.Status != http.StatusUnauthorized {
		t.Fatalf("another address naming another tenant: %s; want its password checked, 401", r)
	}
}

// TestPasswordChecksShareOfATenant: the users one tenant creates take at
// most a quarter of the server's budget of password checks, so a tenant
// creating users as fast as it can leaves the budget to the other tenants'
// users and logins.
func TestPasswordChecksShareOfATenant(t *testing.T) {
	t.Parallel()
	s := startWithChecks(t, 12)               // a share of 3
	acme := s.CreateTenant(t, "acme", "pool") // two users of its three
	create := func(tn *apitest.Tenant, email string) *apitest.Response {
		return s.Do(t, "POST", "/v1/tenants/"+tn.Slug+"/users", tn.AdminToken, map[string]string{"email": email, "password": "a-long-password"})
	}
	if r := create(acme, "third@acme.test"); r.Status != http.StatusCreated {
		t.Fatalf("acme's third user, within its share: %s", r)
	}
	for i := range 3 {
		if r := create(acme, fmt.Sprintf("more-%d@acme.test", i)); r.Status != http.StatusTooManyRequests || r.Code() != "too_many_new_passwords" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("acme's user past its share: %s; want 429 too_many_new_passwords with Retry-After", r)
		}
	}
	// Another tenant still creates its users and logs them in.
	globex := s.CreateTenant(t, "globex", "pool")
	if r := s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": "globex", "email": "admin@globex.test", "password": "pw-admin@globex.test"}); r.Status != http.StatusOK {
		t.Fatalf("globex's login after acme used its share: %s", r)
	}
	if r := create(globex, "third@globex.test"); r.Status != http.StatusCreated {
		t.Fatalf("globex's third user: %s", r)
	}
}

// TestUnseenTokensPastTheShare: an address past its share of denials gets
// 429 too_many_refusals, without a signature check, for tokens the server
// has not seen pass, even valid ones; tokens it has seen pass, a tenant
// user's and a platform admin's, are served as before.
func TestUnseenTokensPastTheShare(t *testing.T) {
	t.Parallel()
	s := startWithAnonShare(t, 3)
	acme := s.CreateTenant(t, "acme", "pool")
	seen := func(what string, r *apitest.Response) {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %s; want 200", what, r)
		}
	}
	seen("acme's admin", s.Do(t, "GET", "/rest/v1/projects", acme.AdminToken, nil))
	seen("the platform admin", s.Do(t, "GET", "/v1/tenants", s.AdminToken, nil))
	forged := func(i int) string { return forgeR(acme.AdminToken, i) }
	for i := range 3 {
		if r := s.Do(t, "GET", "/rest/v1/projects", forged(i), nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("forged token %d within the share: %s; want 401", i, r)
		}
	}
	for what, tok := range map[string]string{"a new forged token": forged(99), "acme's member, with a token this server never saw": unseenToken(t, s, "acme", "member@acme.test")} {
		if r := s.Do(t, "GET", "/rest/v1/projects", tok, nil); r.Status != http.StatusTooManyRequests || r.Code() != "too_many_refusals" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s past the share: %s; want 429 too_many_refusals with Retry-After, before any check", what, r)
		}
	}
	seen("acme's admin past the share", s.Do(t, "GET", "/rest/v1/projects", acme.AdminToken, nil))
	seen("the platform admin past the share", s.Do(t, "GET", "/v1/tenants", s.AdminToken, nil))
}

// forgeR returns token with 8 characters of its signature's R replaced by
// i in hex: a forgery that costs a whole Ed25519 check, and a different
// one for each i.
func forgeR(token string, i int) string {
	sig := strings.LastIndexByte(token, '.') + 1
	return token[:sig+8] + fmt.Sprintf("%08x", i) + token[sig+16:]
}

// unseenToken issues a valid token for a user of slug through an Auth of
// its own, as another replica of the server would: this server has
// neither issued it nor seen it pass.
func unseenToken(t *testing.T, s *apitest.Server, slug, email string) string {
	t.Helper()
	ctx := context.Background()
	other, err := s.DB.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	u, err := s.DB.Postgres().FindUserForLogin(ctx, tenant.Slug(slug), email)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := s.DB.Postgres().FindTenantBySlug(ctx, tenant.Slug(slug), false)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := other.IssueUserToken(ctx, u, tn)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAnonymousRefusalsTotal: past the server's total of denials for
// requests without valid credentials, each from an address well within
// its own share, the denials are counted under one overflow tally, and
// tokens the server has not seen pass get 429 too_many_refusals
// unchecked; tokens it has seen or issued, and logins, are served.
func TestAnonymousRefusalsTotal(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.AnonymousRefusalsTotal = httpapi.Bucket{Rate: 0.001, Burst: 3}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
		c.RefusalPause = -1
	}})
	acme := s.CreateTenant(t, "acme", "pool")
	addr := 0
	from := func(method, path, token string, body any) *apitest.Response {
		addr++
		return s.Do(t, method, path, token, body, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", addr))
	}
	if r := from("GET", "/rest/v1/projects", acme.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("acme's admin: %s", r)
	}
	forged := func(i int) string { return forgeR(acme.AdminToken, i) }
	for i := range 3 {
		if r := from("GET", "/rest/v1/projects", forged(i), nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("forged token %d within the total: %s; want 401", i, r)
		}
	}
	for what, r := range map[string]*apitest.Response{
		"a new forged token":                       from("GET", "/rest/v1/projects", forged(99), nil),
		"no token, an unknown route":               from("GET", "/no/such/route", "", nil),
		"a valid token this server never saw pass": from("GET", "/rest/v1/projects", unseenToken(t, s, "acme", "member@acme.test"), nil),
	} {
		if r.Status != http.StatusTooManyRequests || r.Code() != "too_many_refusals" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s past the total, from a new address: %s; want 429 too_many_refusals", what, r)
		}
	}
	if r := from("GET", "/rest/v1/projects", acme.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("a token seen before, past the total: %s", r)
	}
	login := from("POST", "/v1/auth/token", "", map[string]string{"tenant": "acme", "email": "member@acme.test", "password": "pw-member@acme.test"})
	if login.Status != http.StatusOK {
		t.Fatalf("a login past the total: %s", login)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	login.JSON(t, &tok)
	if r := from("GET", "/rest/v1/projects", tok.AccessToken, nil); r.Status != http.StatusOK {
		t.Fatalf("the token that login issued, past the total: %s", r)
	}
	// The three 429s are counted under the overflow tally: one event,
	// without a source address.
	if err := s.API.FlushRefusals(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n, count int
	if err := adminScan(t, s, `SELECT count(*), coalesce(sum((event->'detail'->>'count')::int), 0) FROM bulkhead_audit.inbox
		WHERE event->>'action' = 'http:Refusals' AND coalesce(event->>'source_ip', '') = ''`, nil, &n, &count); err != nil {
		t.Fatal(err)
	}
	if n != 1 || count != 3 {
		t.Fatalf("%d overflow events counting %d refusals; want 1 counting 3", n, count)
	}
}

// TestTrustedProxies: behind a trusted proxy, each client's address comes
// from X-Forwarded-For, for the shares of denials and for the audit trail;
// a client cannot pick its address by writing the header itself, and
// without trusted proxies the header is never read.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{true, false} {
		s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
			c.AnonymousRefusals = httpapi.Bucket{Rate: 0.001, Burst: 2}
			c.RefusalPause = -1
			if trust {
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
			}
		}})
		from := func(xff string) *apitest.Response {
			return s.Do(t, "GET", "/no/such/route", "", nil, "X-Forwarded-For", xff)
		}
		// The client wrote 198.51.100.1 itself; the proxy (the test client,
		// trusted) appended 203.0.113.9.
		first := from("198.51.100.1, 203.0.113.9")
		from("203.0.113.9")
		third := from("203.0.113.9")
		other := from("203.0.113.10")
		if trust {
			if third.Status != http.StatusTooManyRequests || other.Status != http.StatusNotFound {
				t.Fatalf("trusted proxy: 203.0.113.9's third denial %d, 203.0.113.10's first %d; want 429 and 404", third.Status, other.Status)
			}
		} else if third.Status != http.StatusTooManyRequests || other.Status != http.StatusTooManyRequests {
			t.Fatalf("no trusted proxy: %d and %d; want both 429, every request from the one TCP peer", third.Status, other.Status)
		}
		var src string
		err := adminScan(t, s, `SELECT event->>'source_ip' FROM bulkhead_audit.inbox WHERE event->>'request_id' = $1`, []any{first.Header.Get("X-Request-Id")}, &src)
		want := "127.0.0.1"
		if trust {
			want = "203.0.113.9"
		}
		if err != nil || src != want {
			t.Fatalf("trusted %v: the denial's source_ip %q, %v; want %s", trust, src, err, want)
		}
	}
}

// TestStatementTimeoutByPlan holds a lock the statement needs: the plan's
// statement timeout ends it long before the request deadline.
func TestStatementTimeoutByPlan(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.RequestTimeout = time.Minute
		// Long enough that seeding never meets it on a loaded machine, far
		// below the request deadline.
		c.Limits = map[string]httpapi.Limit{"premium": {Rate: 100, Burst: 100, Concurrent: 4, StatementTimeout: 2 * time.Second}}
	}})
	a := seed(t, s, "acme", "pool")
	lockProjects(t, s)
	if r := s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil); r.Status != http.StatusServiceUnavailable || r.Code() != "statement_timeout" {
		t.Fatalf("statement past the plan's timeout: %s", r)
	}
}

func TestBatchOnboarding(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	body := `[{"id":"b-1"},{"id":"b-2","tier":"silo","plan":"premium"},{"id":"acme","name":"acme","tier":"pool","plan":"premium"},{"id":"Bad"}]`
	if r := s.Do(t, "POST", "/v1/tenants/batch", a.AdminToken, body); r.Status != http.StatusForbidden {
		t.Fatalf("tenant admin batch: %s", r)
	}
	r := s.Do(t, "POST", "/v1/tenants/batch", s.AdminToken, body)
	var out struct {
		Results []struct{ ID, Result, Code string } `json:"results"`
	}
	r.JSON(t, &out)
	got := ""
	for _, x := range out.Results {
		got += x.ID + ":" + x.Result + ":" + x.Code + " "
	}
	if got != "b-1:created: b-2:created: acme:exists: Bad:failed:invalid_tenant_id " {
		t.Fatalf("batch = %s (%s)", got, r)
	}
	// Retrying is safe.
	r = s.Do(t, "POST", "/v1/tenants/batch", s.AdminToken, `[{"id":"b-1"}]`)
	if !strings.Contains(string(r.Body), `"result":"exists"`) {
		t.Fatalf("retry: %s", r)
	}
	// Items are created several at a time, but an id the batch repeats
	// meets what its earlier item left, in order: created, then exists,
	// then taken by another shape; the answers stay in the batch's order.
	var items []string
	want := ""
	for i := range 40 {
		id := fmt.Sprintf("p-%02d", i)
		items = append(items, fmt.Sprintf(`{"id":%q}`, id))
		want += id + ":created: "
		if i == 0 || i == 20 {
			items = append(items, `{"id":"d-1","name":"One"}`, `{"id":"d-1","name":"One"}`, `{"id":"d-1","name":"Other"}`)
		}
	}
	want = strings.Replace(want, "p-00:created: ", "p-00:created: d-1:created: d-1:exists: d-1:failed:tenant_exists ", 1)
	want = strings.Replace(want, "p-20:created: ", "p-20:created: d-1:exists: d-1:exists: d-1:failed:tenant_exists ", 1)
	r = s.Do(t, "POST", "/v1/tenants/batch", s.AdminToken, "["+strings.Join(items, ",")+"]")
	out.Results = nil
	r.JSON(t, &out)
	got = ""
	for _, x := range out.Results {
		got += x.ID + ":" + x.Result + ":" + x.Code + " "
	}
	if got != want {
		t.Fatalf("batch with repeated ids:\n got %s\nwant %s", got, want)
	}
	for _, id := range []string{"p-00", "p-39", "d-1"} {
		if r := s.Do(t, "GET", "/v1/tenants/"+id, s.AdminToken, nil); r.Status != http.StatusOK || (id == "d-1" && !strings.Contains(string(r.Body), `"name":"One"`)) {
			t.Fatalf("%s after the batch: %s", id, r)
		}
	}
	for _, bad := range []string{`{"id":"x"}`, `[]`, `[{"id":"x","ID":"y"}]`} {
		if r := s.Do(t, "POST", "/v1/tenants/batch", s.AdminToken, bad); r.Status < 400 || r.Status >= 500 {
			t.Fatalf("bad batch %s: %s", bad, r)
		}
	}
}

// TestBatchPastDeadline holds a lock that creating a tenant needs: when
// the request's time runs out, the answer still lists every item, each
// failed as "timeout" (the one that was waiting, and the rest, which are
// not tried), and none of them exists afterwards.
func TestBatchPastDeadline(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) { c.RequestTimeout = 500 * time.Millisecond }})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Reads of the catalog go on; inserts into it wait.
	if _, err := tx.Exec(ctx, `LOCK TABLE bulkhead_control.tenants IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "POST", "/v1/tenants/batch", s.AdminToken, `[{"id":"late-1"},{"id":"late-2","tier":"silo"},{"id":"late-3"}]`)
	tx.Rollback(ctx)
	var out struct {
		Results []struct{ ID, Result, Code, Message string } `json:"results"`
	}
	if r.Status != http.StatusOK {
		t.Fatalf("batch past its deadline: %s", r)
	}
	r.JSON(t, &out)
	got := ""
	for _, x := range out.Results {
		got += x.ID + ":" + x.Result + ":" + x.Code + " "
		if !strings.Contains(x.Message, "Send the batch again") {
			t.Errorf("%s: message %q", x.ID, x.Message)
		}
	}
	if got != "late-1:failed:timeout late-2:failed:timeout late-3:failed:timeout " {
		t.Fatalf("batch = %s (%s)", got, r)
	}
	// Read from the database: this server's 500 ms would make a check
	// through it fail on a loaded machine.
	var kept, schemas int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM bulkhead_control.tenants WHERE slug LIKE 'late-%'),
		(SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\_%' AND nspname NOT IN (SELECT placement FROM bulkhead_control.tenants))`).Scan(&kept, &schemas); err != nil {
		t.Fatal(err)
	}
	if kept != 0 || schemas != 0 {
		t.Fatalf("after a batch that timed out: %d of its tenants and %d silo schemas without a tenant were kept", kept, schemas)
	}
}

// TestStatementTimeBudgetFirstRunsAlone: until one of a tenant's requests
// has ended, its budget does not know what they cost, so a fresh tenant's
// requests run one at a time: while the first waits on a lock, no second
// reaches PostgreSQL; once it ends, having taken long, the others are
// charged what it took and refused, not run.
func TestStatementTimeBudgetFirstRunsAlone(t *testing.T) {
	t.Parallel()
	s := startBudgetServer(t, time.Minute)
	g := s.CreateTenantOnPlan(t, "globex", "pool", "basic")
	conn, unlock := lockProjects(t, s)
	answers := make(chan *apitest.Response, 3)
	for range 3 {
		go func() { answers <- s.Do(t, "GET", "/rest/v1/projects", g.AdminToken, nil) }()
	}
	awaitLockWait(t, conn)
	// Watch for a while (100 looks, 10 ms apart: without the rule the
	// other two reach the lock within it): one waits on the lock, never more.
	for range 100 {
		if waiting := lockWaiters(t, conn); waiting != 1 {
			unlock()
			t.Fatalf("%d of a fresh tenant's requests waited on the lock at once; want its first alone", waiting)
		}
		time.Sleep(10 * time.Millisecond)
	}
	unlock()
	status := map[string]int{}
	for range 3 {
		r := <-answers
		switch {
		case r.Status == http.StatusOK:
			status["ok"]++
		case r.Status == http.StatusTooManyRequests && r.Code() == "statement_time_spent" && r.Header.Get("Retry-After") != "":
			status["spent"]++
		default:
			t.Fatalf("a request: %s", r)
		}
	}
	if status["ok"] != 1 || status["spent"] != 2 {
		t.Fatalf("answers %v; want the first served and the two that waited for it refused with statement_time_spent", status)
	}
}

// TestStatementTimeBudgetWaitTimesOut: requests of a fresh tenant whose
// first one runs out of time on a lock: the first gets 503 timeout; one
// that waited for it gets 503 timeout too if its own deadline passed
// while it waited, or else is charged what the first took and refused
// (429 statement_time_spent). Never a 500.
func TestStatementTimeBudgetWaitTimesOut(t *testing.T) {
	t.Parallel()
	s := startBudgetServer(t, 500*time.Millisecond)
	g := s.CreateTenantOnPlan(t, "globex", "pool", "basic")
	lockProjects(t, s)
	answers := make(chan *apitest.Response, 2)
	for range 2 {
		go func() { answers <- s.Do(t, "GET", "/rest/v1/projects", g.AdminToken, nil) }()
	}
	timeouts := 0
	for range 2 {
		r := <-answers
		switch {
		case r.Status == http.StatusServiceUnavailable && r.Code() == "timeout":
			timeouts++
		case r.Status == http.StatusTooManyRequests && r.Code() == "statement_time_spent":
		default:
			t.Fatalf("a request on the lock or waiting for the first: %s; want 503 timeout or 429 statement_time_spent", r)
		}
	}
	if timeouts == 0 {
		t.Fatal("the first request, held on the lock past its deadline, did not get 503 timeout")
	}
}

// startBudgetServer starts a server whose plans both allow 50 ms of
// statement time a second and little else to limit, and no refusal pause.
func startBudgetServer(t *testing.T, requestTimeout time.Duration) *apitest.Server {
	return apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.RequestTimeout = requestTimeout
		c.RefusalPause = -1
		c.Limits = map[string]httpapi.Limit{
			"basic":   {Rate: 1000, Burst: 1000, Concurrent: 4, StatementTimeout: 30 * time.Second, StatementTime: 50 * time.Millisecond},
			"premium": {Rate: 1000, Burst: 1000, Concurrent: 4, StatementTimeout: 30 * time.Second, StatementTime: 50 * time.Millisecond},
		}
	}})
}

// TestStatementTimeBudget: a tenant whose requests took more database time
// than its plan's budget gets 429 statement_time_spent, with Retry-After,
// for its data requests and its reads of the audit trail, until the debt
// is repaid; another tenant is served meanwhile.
func TestStatementTimeBudget(t *testing.T) {
	t.Parallel()
	s := startBudgetServer(t, time.Minute)
	// No rows: seeding them through the API would spend the budgets this
	// test is about, by however long a busy machine takes to insert.
	a := s.CreateTenantOnPlan(t, "acme", "pool", "premium") // whose admins read the audit trail
	g := s.CreateTenantOnPlan(t, "globex", "pool", "basic")
	conn, unlock := lockProjects(t, s)
	// One request of acme's that takes at least 1.5 s: it waits on the
	// lock. At 50 ms a second, its debt takes about 30 s to repay, so the
	// checks below find it unpaid however busy the machine is.
	done := make(chan *apitest.Response, 1)
	go func() { done <- s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil) }()
	awaitLockWait(t, conn)
	time.Sleep(1500 * time.Millisecond)
	unlock()
	if r := <-done; r.Status != http.StatusOK {
		t.Fatalf("the long request: %s", r)
	}
	for _, path := range []string{"/rest/v1/projects", "/v1/audit"} {
		r := s.Do(t, "GET", path, a.AdminToken, nil)
		if r.Status != http.StatusTooManyRequests || r.Code() != "statement_time_spent" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("acme's GET %s after spending its budget: %s; want 429 statement_time_spent with Retry-After", path, r)
		}
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", g.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("globex meanwhile: %s", r)
	}
}

// downDeriver is a password hasher's process that is down.
type downDeriver struct{ down atomic.Bool }

func (d *downDeriver) DeriveKey(ctx context.Context, pw, salt []byte, p identity.Params) ([]byte, error) {
	if d.down.Load() {
		return nil, fault.E(fault.Unavailable, "password_hashing_unavailable", "Passwords cannot be checked at the moment; retry shortly.")
	}
	return identity.DeriveKey(pw, salt, p)
}

// TestLoginWhileHashingIsDown: while the hasher's process is down, every
// login (a known user with the right or a wrong password, an unknown
// user) gets the same 503 with Retry-After and no token; none takes from
// the address's share of failed logins, so once the hasher is back the
// right password logs in at once.
func TestLoginWhileHashingIsDown(t *testing.T) {
	t.Parallel()
	d := &downDeriver{}
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.Hasher = &identity.Hasher{Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, Deriver: d}
		c.FailedLogins = httpapi.Bucket{Rate: 0.001, Burst: 3}
		c.RefusalPause = -1
	}})
	s.CreateTenant(t, "acme", "pool")
	d.down.Store(true)
	login := func(email, pw string) *apitest.Response {
		return s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": "acme", "email": email, "password": pw})
	}
	var first *apitest.Response
	for i := range 4 {
		for _, r := range []*apitest.Response{login("admin@acme.test", "pw-admin@acme.test"), login("admin@acme.test", "wrong"), login("nobody@acme.test", "wrong")} {
			if r.Status != http.StatusServiceUnavailable || r.Code() != "password_hashing_unavailable" || r.Header.Get("Retry-After") == "" || strings.Contains(string(r.Body), "access_token") {
				t.Fatalf("login %d with the hasher down: %s; want 503 password_hashing_unavailable with Retry-After", i, r)
			}
			if first == nil {
				first = r
			} else if !sameAnswer(first, r) {
				t.Fatalf("the 503s differ:\n%s\n%s", first.Body, r.Body)
			}
		}
	}
	d.down.Store(false)
	if r := login("admin@acme.test", "pw-admin@acme.test"); r.Status != http.StatusOK {
		t.Fatalf("the right password once the hasher is back, after 12 logins it could not check: %s", r)
	}
}
