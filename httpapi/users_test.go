package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

type listedUser struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

// TestListUsersPages: a tenant's users come in pages ordered by email
// without regard to case, `after` continues where a page ended, and no
// page of one tenant holds another's users, whatever `after` names.
func TestListUsersPages(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	acme := s.CreateTenant(t, "acme", "pool") // admin@, member@
	globex := s.CreateTenant(t, "globex", "pool")
	for _, e := range []string{"Bea@acme.test", "carl@acme.test", "Dora@acme.test", "zed@acme.test"} {
		if r := s.Do(t, "POST", "/v1/tenants/acme/users", acme.AdminToken, map[string]string{"email": e, "password": "a-long-password"}); r.Status != http.StatusCreated {
			t.Fatalf("create %s: %s", e, r)
		}
	}
	// globex has a user whose email sorts between acme's.
	if r := s.Do(t, "POST", "/v1/tenants/globex/users", globex.AdminToken, map[string]string{"email": "carla@acme.test", "password": "a-long-password"}); r.Status != http.StatusCreated {
		t.Fatalf("create globex's user: %s", r)
	}
	list := func(token, query string) []listedUser {
		t.Helper()
		r := s.Do(t, "GET", "/v1/tenants/acme/users"+query, token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list %q: %s", query, r)
		}
		var us []listedUser
		r.JSON(t, &us)
		return us
	}
	emails := func(us []listedUser) []string {
		var out []string
		for _, u := range us {
			if u.Tenant != "acme" {
				t.Fatalf("acme's list holds %+v", u)
			}
			out = append(out, u.Email)
		}
		return out
	}
	want := []string{"admin@acme.test", "Bea@acme.test", "carl@acme.test", "Dora@acme.test", "member@acme.test", "zed@acme.test"}
	for _, token := range []string{acme.AdminToken, s.AdminToken} {
		if got := emails(list(token, "")); !slices.Equal(got, want) {
			t.Fatalf("all users: %q; want %q", got, want)
		}
		var paged []string
		after := ""
		for range 10 {
			page := emails(list(token, "?limit=2&after="+url.QueryEscape(after)))
			if len(page) > 2 {
				t.Fatalf("a page of %d with limit=2", len(page))
			}
			paged = append(paged, page...)
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("paged: %q; want %q", paged, want)
		}
	}
	// after compares without regard to case, and may name an email no
	// user has, or another tenant's user's: the page is still acme's own.
	for _, c := range []struct{ after, first string }{
		{"BEA@acme.test", "carl@acme.test"},
		{"carla@acme.test", "Dora@acme.test"},
		{"a", "admin@acme.test"},
		{"zzz", ""},
	} {
		page := emails(list(acme.AdminToken, "?limit=1&after="+url.QueryEscape(c.after)))
		if first := strings.Join(page, ""); first != c.first {
			t.Errorf("after=%q: %q; want %q", c.after, first, c.first)
		}
	}
	// Another tenant's admin gets the same 404 with any paging.
	for _, q := range []string{"", "?limit=1", "?after=a", "?limit=0"} {
		if r := s.Do(t, "GET", "/v1/tenants/acme/users"+q, globex.AdminToken, nil); r.Status != http.StatusNotFound || r.Code() != "tenant_not_found" {
			t.Errorf("globex lists acme's users %q: %s; want 404 tenant_not_found", q, r)
		}
	}
}

// TestListsRefuseBadPaging: malformed paging and filters on the lists of
// users and tenants get a 400 that says which, never a 5xx or an empty
// list that looks like an answer.
func TestListsRefuseBadPaging(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	acme := s.CreateTenant(t, "acme", "pool")
	for _, c := range []struct{ path, code string }{
		{"/v1/tenants/acme/users?limit=0", "invalid_parameter"},
		{"/v1/tenants/acme/users?limit=1001", "invalid_parameter"},
		{"/v1/tenants/acme/users?limit=two", "invalid_parameter"},
		{"/v1/tenants/acme/users?limit=-1", "invalid_parameter"},
		{"/v1/tenants/acme/users?after=" + strings.Repeat("a", 321), "invalid_parameter"},
		{"/v1/tenants/acme/users?after=%00", "invalid_parameter"},
		{"/v1/tenants/acme/users?after=%ff", "invalid_parameter"},
		{"/v1/tenants?limit=0", "invalid_parameter"},
		{"/v1/tenants?limit=1001", "invalid_parameter"},
		{"/v1/tenants?tier=gold", "invalid_tier"},
		{"/v1/tenants?tier=Pool", "invalid_tier"},
	} {
		r := s.Do(t, "GET", c.path, s.AdminToken, nil)
		if r.Status != http.StatusBadRequest || r.Code() != c.code {
			t.Errorf("GET %s: %s; want 400 %s", c.path, r, c.code)
		}
	}
	// The tenants list pages too.
	s.CreateTenant(t, "globex", "silo")
	var ts []struct {
		ID string `json:"id"`
	}
	s.Do(t, "GET", "/v1/tenants?limit=1", s.AdminToken, nil).JSON(t, &ts)
	if len(ts) != 1 || ts[0].ID != "acme" {
		t.Fatalf("tenants, limit=1: %+v; want acme alone", ts)
	}
	s.Do(t, "GET", "/v1/tenants?limit=1&after=acme", s.AdminToken, nil).JSON(t, &ts)
	if len(ts) != 1 || ts[0].ID != "globex" {
		t.Fatalf("tenants after acme: %+v; want globex", ts)
	}
	// A tenant user's list is its own tenant, as before.
	s.Do(t, "GET", "/v1/tenants?after=zzz", acme.AdminToken, nil).JSON(t, &ts)
	if len(ts) != 1 || ts[0].ID != "acme" {
		t.Fatalf("acme's admin lists tenants: %+v; want acme alone", ts)
	}
}
