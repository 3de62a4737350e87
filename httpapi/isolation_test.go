package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// canary is one tenant's seeded data.
type canary struct {
	*apitest.Tenant
	ProjectID, ProjectName, TaskID, TaskTitle string
}

func seed(t testing.TB, s *apitest.Server, slug, tier string) *canary {
	t.Helper()
	return seedOnPlan(t, s, slug, tier, "premium")
}

func seedOnPlan(t testing.TB, s *apitest.Server, slug, tier, plan string) *canary {
	t.Helper()
	tn := s.CreateTenantOnPlan(t, slug, tier, plan)
	c := &canary{Tenant: tn, ProjectName: "canary-project-" + slug, TaskTitle: "canary-task-" + slug}
	r := s.Do(t, "POST", "/rest/v1/projects", tn.AdminToken, map[string]string{"name": c.ProjectName, "description": "secret of " + slug},
		"Prefer", "return=representation")
	var rows []map[string]any
	if r.Status != http.StatusCreated {
		t.Fatalf("seed project: %s", r)
	}
	r.JSON(t, &rows)
	c.ProjectID = rows[0]["id"].(string)
	r = s.Do(t, "POST", "/rest/v1/tasks", tn.AdminToken, map[string]any{"title": c.TaskTitle, "project_id": c.ProjectID},
		"Prefer", "return=representation")
	if r.Status != http.StatusCreated {
		t.Fatalf("seed task: %s", r)
	}
	r.JSON(t, &rows)
	c.TaskID = rows[0]["id"].(string)
	return c
}

const randomUUID = "6f1d3c1e-9a55-4a8e-b7a4-1f2f3e4d5c6b"

// leaks runs every data and control path as tenant a against b's rows and
// returns what got through. It is a function, not assertions, so that
// TestIsolationSuiteCanFail can run it against a deliberately broken
// database and demand that it finds leaks.
func leaks(t *testing.T, s *apitest.Server, a, b *canary) []string {
	t.Helper()
	var out []string
	leak := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	secret := []string{b.ProjectID, b.ProjectName, b.TaskID, b.TaskTitle, "secret of " + b.Slug}
	see := func(what string, r *apitest.Response) {
		for _, v := range secret {
			if strings.Contains(string(r.Body), v) {
				leak("%s: response contains b's %q: %s", what, v, r)
			}
		}
	}
	tok := a.AdminToken
	before := snapshot(t, s, b)
	// Reads: list, by id, by filter, by in, through the task's foreign key.
	for _, q := range []string{
		"/rest/v1/projects", "/rest/v1/tasks", "/rest/v1/projects?select=*",
		"/rest/v1/projects?id=eq." + b.ProjectID, "/rest/v1/projects?name=eq." + b.ProjectName,
		"/rest/v1/projects?name=like.canary*", "/rest/v1/projects?description=ilike.*secret*",
		"/rest/v1/projects?id=in.(" + b.ProjectID + "," + a.ProjectID + ")",
		"/rest/v1/tasks?project_id=eq." + b.ProjectID, "/rest/v1/tasks?id=eq." + b.TaskID,
		"/rest/v1/projects?id=neq." + a.ProjectID, "/rest/v1/projects?tenant_id=eq." + b.UUID,
		"/rest/v1/projects?or=(id.eq." + b.ProjectID + ",name.eq." + b.ProjectName + ")",
	} {
		r := s.Do(t, "GET", q, tok, nil, "Prefer", "count=exact")
		see("GET "+q, r)
		if r.Status == http.StatusOK && strings.HasSuffix(r.Header.Get("Content-Range"), "/0") == false &&
			strings.Contains(q, b.ProjectID) && !strings.Contains(q, a.ProjectID) && !strings.Contains(q, "neq") {
			leak("GET %s: count says rows exist: %s", q, r.Header.Get("Content-Range"))
		}
	}
	// One object by b's id answers exactly like a random id.
	rb := s.Do(t, "GET", "/rest/v1/projects?id=eq."+b.ProjectID, tok, nil, "Accept", "application/vnd.pgrst.object+json")
	rr := s.Do(t, "GET", "/rest/v1/projects?id=eq."+randomUUID, tok, nil, "Accept", "application/vnd.pgrst.object+json")
	see("GET single", rb)
	if rb.Status != rr.Status || rb.Code() != rr.Code() {
		leak("single object: b's id answers %d %s, a random id %d %s", rb.Status, rb.Code(), rr.Status, rr.Code())
	}
	// Writes aimed at b's rows change nothing.
	see("PATCH", s.Do(t, "PATCH", "/rest/v1/projects?id=eq."+b.ProjectID, tok, map[string]string{"name": "pwned"}, "Prefer", "return=representation"))
	see("PATCH by name", s.Do(t, "PATCH", "/rest/v1/projects?name=eq."+b.ProjectName, tok, map[string]string{"description": "pwned"}))
	see("DELETE task", s.Do(t, "DELETE", "/rest/v1/tasks?id=eq."+b.TaskID, tok, nil, "Prefer", "return=representation"))
	see("DELETE project", s.Do(t, "DELETE", "/rest/v1/projects?id=eq."+b.ProjectID, tok, nil))
	// Inserts into b.
	r := s.Do(t, "POST", "/rest/v1/projects", tok, map[string]string{"tenant_id": b.UUID, "name": "planted-by-a"})
	if r.Status < 400 {
		leak("insert with b's tenant_id: %s", r)
	}
	r = s.Do(t, "PATCH", "/rest/v1/projects?id=eq."+a.ProjectID, tok, map[string]string{"tenant_id": b.UUID})
	if r.Status < 400 {
		leak("move a's row to b: %s", r)
	}
	// A task pointing at b's project fails exactly like one pointing nowhere.
	rf := s.Do(t, "POST", "/rest/v1/tasks", tok, map[string]string{"title": "x", "project_id": b.ProjectID})
	rn := s.Do(t, "POST", "/rest/v1/tasks", tok, map[string]string{"title": "x", "project_id": randomUUID})
	if rf.Status < 400 || rf.Status != rn.Status || rf.Code() != rn.Code() {
		leak("task -> b's project: %s; task -> nowhere: %s", rf, rn)
	}
	rf = s.Do(t, "PATCH", "/rest/v1/tasks?id=eq."+a.TaskID, tok, map[string]string{"project_id": b.ProjectID})
	if rf.Status < 400 {
		leak("re-point a's task at b's project: %s", rf)
	}
	// Upsert on b's id: keys include tenant_id, so this can only make or
	// change a's own row with that id, never b's (b's id is in the answer
	// only because a sent it).
	r = s.Do(t, "POST", "/rest/v1/projects", tok, map[string]string{"id": b.ProjectID, "name": "upsert-by-a"},
		"Prefer", "resolution=merge-duplicates,return=representation")
	if strings.Contains(string(r.Body), b.ProjectName) || strings.Contains(string(r.Body), b.UUID) {
		leak("upsert on b's id answered with b's row: %s", r)
	}
	// Control plane: b does not exist for a.
	for _, q := range []struct{ method, path string }{
		{"GET", "/v1/tenants/" + b.Slug}, {"DELETE", "/v1/tenants/" + b.Slug},
		{"GET", "/v1/tenants/" + b.Slug + "/users"}, {"POST", "/v1/tenants/" + b.Slug + "/users"},
	} {
		var body any
		if q.method == "POST" {
			body = map[string]string{"email": "intruder@x.test", "password": "pw-intruder", "role": "admin"}
		}
		rb := s.Do(t, q.method, q.path, tok, body)
		rn := s.Do(t, q.method, strings.Replace(q.path, b.Slug, "no-such-tenant", 1), tok, body)
		see(q.method+" "+q.path, rb)
		if rb.Status != http.StatusNotFound || rb.Code() != rn.Code() {
			leak("%s %s: %s; for a missing tenant: %s", q.method, q.path, rb, rn)
		}
	}
	see("GET /v1/tenants", s.Do(t, "GET", "/v1/tenants", tok, nil))
	// b's data is exactly as it was.
	if after := snapshot(t, s, b); after != before {
		leak("b's rows changed:\nbefore %s\nafter  %s", before, after)
	}
	return out
}

// snapshot is everything b can see, as b.
func snapshot(t testing.TB, s *apitest.Server, b *canary) string {
	t.Helper()
	p := s.Do(t, "GET", "/rest/v1/projects?select=*&order=id", b.AdminToken, nil)
	k := s.Do(t, "GET", "/rest/v1/tasks?select=*&order=id", b.AdminToken, nil)
	if p.Status != http.StatusOK || k.Status != http.StatusOK {
		t.Fatalf("snapshot of %s: %s / %s", b.Slug, p, k)
	}
	return string(p.Body) + string(k.Body)
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	tenants := map[string]*canary{
		"pool-a": seed(t, s, "pool-a", "pool"), "pool-b": seed(t, s, "pool-b", "pool"),
		"silo-a": seed(t, s, "silo-a", "silo"), "silo-b": seed(t, s, "silo-b", "silo"),
	}
	for _, pair := range [][2]string{
		{"pool-a", "pool-b"}, {"pool-b", "pool-a"}, {"pool-a", "silo-b"}, {"silo-b", "pool-a"},
		{"silo-a", "silo-b"}, {"silo-b", "silo-a"},
	} {
		t.Run(pair[0]+"->"+pair[1], func(t *testing.T) {
			for _, l := range leaks(t, s, tenants[pair[0]], tenants[pair[1]]) {
				t.Error(l)
			}
		})
	}
}

// TestIsolationSuiteCanFail breaks the row policies on purpose and demands
// that the suite above notices: a negative test that cannot fail proves
// nothing.
func TestIsolationSuiteCanFail(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a, b := seed(t, s, "pool-a", "pool"), seed(t, s, "pool-b", "pool")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`ALTER POLICY tenant_select ON app.projects USING (true)`,
		`ALTER POLICY tenant_update ON app.projects USING (true) WITH CHECK (true)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if got := leaks(t, s, a, b); len(got) == 0 {
		t.Fatal("with the select and update policies opened, the isolation suite found no leak")
	}
}

// forge returns tokens an attacker holding a's token could make.
func forge(t *testing.T, a, b *canary) map[string]string {
	t.Helper()
	parts := strings.Split(a.MemberToken, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	json.Unmarshal(hdr, &h)
	kid, _ := h["kid"].(string)
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	claims["tenant_id"] = b.UUID
	edited, _ := json.Marshal(claims)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	out := map[string]string{
		"alg none":             none + "." + parts[1] + ".",
		"stripped signature":   parts[0] + "." + parts[1] + ".",
		"edited tenant claim":  parts[0] + "." + base64.RawURLEncoding.EncodeToString(edited) + "." + parts[2],
		"garbage":              "not-a-token",
		"b's signature on a's": parts[0] + "." + parts[1] + "." + strings.Split(b.MemberToken, ".")[2],
	}
	key, err := identity.NewSigningKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key.ID = kid
	mk := func(name string, iss identity.Issuer, c identity.Claims) {
		tok, _, err := iss.Issue(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = tok
	}
	claimsB := identity.Claims{Subject: "attacker", TenantID: tenant.ID(b.UUID), Role: tenant.Admin}
	mk("wrong key, same kid", identity.Issuer{Issuer: bulkhead.TokenIssuer, Audience: bulkhead.TokenAudience, Keys: []identity.SigningKey{key}}, claimsB)
	mk("wrong audience", identity.Issuer{Issuer: bulkhead.TokenIssuer, Audience: "someone-else", Keys: []identity.SigningKey{key}}, claimsB)
	mk("expired", identity.Issuer{Issuer: bulkhead.TokenIssuer, Audience: bulkhead.TokenAudience, Keys: []identity.SigningKey{key},
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}, claimsB)
	mk("foreign issuer", identity.Issuer{Issuer: "https://evil.example", Audience: bulkhead.TokenAudience, Keys: []identity.SigningKey{key}}, claimsB)
	admin := identity.Claims{Subject: "attacker", Platform: true}
	mk("self-made admin token", identity.Issuer{Issuer: bulkhead.AdminTokenIssuer, Audience: bulkhead.AdminTokenAudience, Keys: []identity.SigningKey{key}, Platform: true}, admin)
	return out
}

func TestForgedTokens(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a, b := seed(t, s, "pool-a", "pool"), seed(t, s, "silo-b", "silo")
	for name, tok := range forge(t, a, b) {
		t.Run(name, func(t *testing.T) {
			for _, q := range []struct{ method, path string }{
				{"GET", "/rest/v1/projects"}, {"GET", "/rest/v1/projects?id=eq." + b.ProjectID},
				{"GET", "/v1/tenants"}, {"GET", "/v1/tenants/" + b.Slug},
			} {
				r := s.Do(t, q.method, q.path, tok, nil)
				if r.Status != http.StatusUnauthorized || r.Code() != "invalid_token" {
					t.Errorf("%s %s with %s: %s, want 401 invalid_token", q.method, q.path, name, r)
				}
				if strings.Contains(string(r.Body), b.ProjectName) {
					t.Errorf("%s leaked b's data", name)
				}
			}
			r := s.Do(t, "POST", "/v1/tenants", tok, map[string]string{"id": "evil-corp", "tier": "pool"})
			if r.Status != http.StatusUnauthorized {
				t.Errorf("create tenant with %s: %s", name, r)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		r := s.Do(t, "GET", "/rest/v1/projects", "", nil)
		if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("no token: %s", r)
		}
	})
	t.Run("two authorization headers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.URL+"/rest/v1/projects", nil)
		req.Header.Add("Authorization", "Bearer "+a.MemberToken)
		req.Header.Add("Authorization", "Bearer "+b.MemberToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("two bearer tokens: %d, want 401", res.StatusCode)
		}
	})
	t.Run("context header ignored", func(t *testing.T) {
		// A client cannot choose its tenant or schema with headers.
		r := s.Do(t, "GET", "/rest/v1/projects", a.MemberToken, nil,
			"Accept-Profile", "t_"+strings.ReplaceAll(b.UUID, "-", ""), "X-Tenant-Id", b.UUID, "X-Request-Id", "forged")
		if r.Status != http.StatusOK || strings.Contains(string(r.Body), b.ProjectName) || r.Header.Get("X-Request-Id") == "forged" {
			t.Fatalf("headers: %s (request id %q)", r, r.Header.Get("X-Request-Id"))
		}
	})
}
