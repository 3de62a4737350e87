package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestMoveTenantThroughTheAPI: only a platform administrator moves a
// tenant (POST /v1/tenants/{id}/move); bad requests are 4xx and change
// nothing; after a move, the tenant's users, with the tokens they already
// had, read and write their rows in the new place, and no tenant sees
// another's rows, in either direction. While a tenant moves, its users get
// 503 tenant_moving with Retry-After, and the others are served.
func TestMoveTenantThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) { c.MoveSettle = 200 * time.Millisecond }})
	a := seed(t, s, "acme", "pool")
	b := seed(t, s, "globex", "silo")
	c := seed(t, s, "initech", "pool")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tenantRow := func(slug string) string {
		t.Helper()
		var tier, status, placement string
		if err := conn.QueryRow(ctx, `SELECT tier, status, placement FROM bulkhead_control.tenants WHERE slug = $1`, slug).Scan(&tier, &status, &placement); err != nil {
			t.Fatal(err)
		}
		return tier + "/" + status + "/" + placement
	}
	sees := func(who *canary, want ...*canary) {
		t.Helper()
		r := s.Do(t, "GET", "/rest/v1/projects?select=name", who.MemberToken, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%s reads: %s", who.Slug, r)
		}
		for _, o := range []*canary{a, b, c} {
			has := strings.Contains(string(r.Body), o.ProjectName)
			if mine := o == who; has != mine {
				t.Fatalf("%s reads %s (%s's project there: %t)", who.Slug, r.Body, o.Slug, has)
			}
		}
	}

	before := tenantRow("acme")
	for _, tc := range []struct {
		token, path string
		body        any
		status      int
	}{
		{a.AdminToken, "/v1/tenants/acme/move", map[string]string{"tier": "silo"}, http.StatusForbidden},
		{a.AdminToken, "/v1/tenants/globex/move", map[string]string{"tier": "pool"}, http.StatusNotFound},
		{"", "/v1/tenants/acme/move", map[string]string{"tier": "silo"}, http.StatusUnauthorized},
		{s.AdminToken, "/v1/tenants/acme/move", map[string]string{"tier": "cluster"}, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", map[string]string{}, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", map[string]string{"tier": "silo", "placement": "app"}, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":"silo"`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":"silo","tier":"pool"}`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/nosuch/move", map[string]string{"tier": "silo"}, http.StatusNotFound},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":1}`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":null}`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `["silo"]`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `"silo"`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":"SILO"}`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":"silo\u0000"}`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"Tier":"silo"}`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":"silo"} {}`, http.StatusBadRequest},
		{s.AdminToken, "/v1/tenants/acme/move", `{"tier":"` + strings.Repeat("s", 1<<21) + `"}`, http.StatusRequestEntityTooLarge},
		{s.AdminToken, "/v1/tenants/ACME/move", map[string]string{"tier": "silo"}, http.StatusNotFound},
		{s.AdminToken, "/v1/tenants/" + a.UUID + "/move", map[string]string{"tier": "silo"}, http.StatusNotFound},
		{s.AdminToken, "/v1/tenants/%00/move", map[string]string{"tier": "silo"}, http.StatusNotFound},
	} {
		if r := s.Do(t, "POST", tc.path, tc.token, tc.body); r.Status != tc.status {
			t.Errorf("POST %s %v: %s, want %d", tc.path, tc.body, r, tc.status)
		}
	}
	if got := tenantRow("acme"); got != before {
		t.Fatalf("refused moves changed acme: %s, was %s", got, before)
	}

	r := s.Do(t, "POST", "/v1/tenants/acme/move", s.AdminToken, map[string]string{"tier": "silo"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"moved":true`) {
		t.Fatalf("move acme into a silo: %s", r)
	}
	if got := tenantRow("acme"); !strings.HasPrefix(got, "silo/active/t_") {
		t.Fatalf("acme after the move: %s", got)
	}
	// The tokens acme's users already had keep working, in the new place.
	sees(a)
	sees(b)
	sees(c)
	if r := s.Do(t, "POST", "/rest/v1/projects", a.AdminToken, map[string]string{"name": "after-the-move"}); r.Status != http.StatusCreated {
		t.Fatalf("acme writes after the move: %s", r)
	}
	var inSilo, inPool int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM app.projects WHERE tenant_id = $1::uuid`, a.UUID).Scan(&inPool); err != nil {
		t.Fatal(err)
	}
	if inPool != 0 {
		t.Fatalf("%d of acme's rows are in the pool after its move into a silo", inPool)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM "t_`+strings.ReplaceAll(a.UUID, "-", "")+`".projects`).Scan(&inSilo); err != nil || inSilo != 2 {
		t.Fatalf("acme's silo holds %d projects (%v), want its canary and the new one", inSilo, err)
	}
	// acme asks for the others' rows by id, now from its silo.
	for _, o := range []*canary{b, c} {
		if r := s.Do(t, "GET", "/rest/v1/projects?id=eq."+o.ProjectID, a.AdminToken, nil); r.Status != http.StatusOK || string(r.Body) != "[]" {
			t.Fatalf("acme asks for %s's project: %s", o.Slug, r)
		}
	}

	r = s.Do(t, "POST", "/v1/tenants/globex/move", s.AdminToken, map[string]string{"tier": "pool"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"dropped_schema":"t_`) {
		t.Fatalf("move globex into the pool: %s", r)
	}
	if got := tenantRow("globex"); got != "pool/active/pool" {
		t.Fatalf("globex after the move: %s", got)
	}
	sees(b)
	sees(c)
	for _, o := range []*canary{a, c} {
		if r := s.Do(t, "GET", "/rest/v1/projects?id=eq."+o.ProjectID, b.AdminToken, nil); r.Status != http.StatusOK || string(r.Body) != "[]" {
			t.Fatalf("globex, now in the pool, asks for %s's project: %s", o.Slug, r)
		}
	}

	// A tenant caught moving: its users are told to come back, the others
	// are served.
	if _, err := conn.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'moving', move_to = 'silo' WHERE slug = 'initech'`); err != nil {
		t.Fatal(err)
	}
	s.DB.ForgetTenant(tenant.ID(c.UUID))
	r = s.Do(t, "GET", "/rest/v1/projects", c.MemberToken, nil)
	if r.Status != http.StatusServiceUnavailable || r.Code() != "tenant_moving" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a moving tenant's user: %s (Retry-After %q)", r, r.Header.Get("Retry-After"))
	}
	sees(a)
	// Another move of it meanwhile is refused, and changes nothing.
	if r := s.Do(t, "POST", "/v1/tenants/initech/move", s.AdminToken, map[string]string{"tier": "pool"}); r.Status != http.StatusConflict || r.Code() != "move_in_progress" {
		t.Fatalf("moving initech to the pool while it moves to a silo: %s", r)
	}
	// The same move again finishes it.
	if r := s.Do(t, "POST", "/v1/tenants/initech/move", s.AdminToken, map[string]string{"tier": "silo"}); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"resumed":true`) {
		t.Fatalf("resuming initech's move: %s", r)
	}
	sees(c)
	sees(a)
	sees(b)
}
