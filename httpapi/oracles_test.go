package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// oracleVarying is what differs between two answers for reasons of their own.
var oracleVarying = regexp.MustCompile(`"request_id":"[0-9a-f]+"|"created_at":"[^"]+"`)

// oracleAnswer is a response as compared: status, headers and body, with
// request ids and times left out and the given ids named by role.
func oracleAnswer(r *apitest.Response, subst map[string]string) string {
	b := oracleVarying.ReplaceAllString(string(r.Body), `"-":"-"`)
	for k, v := range subst {
		b = strings.ReplaceAll(b, k, v)
	}
	var hs []string
	for k, v := range r.Header {
		switch k {
		case "Date", "X-Request-Id", "Content-Length":
			continue
		}
		hs = append(hs, k+"="+strings.Join(v, "|"))
	}
	sort.Strings(hs)
	return fmt.Sprintf("%d %v %s", r.Status, hs, b)
}

// oracleRequest is one request shape of TestOtherTenantsIDsLookLikeNone.
type oracleRequest struct {
	method, path string
	body         string
	hdr          []string
}

// TestOtherTenantsIDsLookLikeNone: tenant A, as its admin and as a member,
// sends 35 request shapes (reads, counts, HEAD, filters, casts, PATCH,
// DELETE, inserts, upserts with every conflict target, mixed batches,
// tasks pointing at projects) once with tenant B's ids and once with ids
// that exist nowhere, with B in the pool and B in a silo. Every answer
// (status, headers, body) must be the same: no unique or foreign-key
// error, count, code or message tells A that B's id exists.
func TestOtherTenantsIDsLookLikeNone(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "pool-a", "pool")
	bp := seed(t, s, "pool-b", "pool")
	bs := seed(t, s, "silo-b", "silo")
	const rnd = "11111111-2222-4333-8444-555555555555"
	const rndT = "21111111-2222-4333-8444-555555555555"
	mk := func(X, T, BU string) []oracleRequest {
		tmpl := []oracleRequest{
			{"GET", "/rest/v1/projects?id=eq.X", "", nil},
			{"GET", "/rest/v1/projects?id=eq.X", "", []string{"Prefer", "count=exact"}},
			{"GET", "/rest/v1/projects?id=eq.X", "", []string{"Prefer", "count=planned"}},
			{"GET", "/rest/v1/projects?id=eq.X", "", []string{"Prefer", "count=estimated"}},
			{"GET", "/rest/v1/projects?id=eq.X", "", []string{"Accept", "application/vnd.pgrst.object+json"}},
			{"HEAD", "/rest/v1/projects?id=eq.X", "", []string{"Prefer", "count=exact"}},
			{"GET", "/rest/v1/projects?id=in.(X,A)", "", []string{"Prefer", "count=exact"}},
			{"GET", "/rest/v1/projects?id=gte.X&id=lte.X", "", []string{"Prefer", "count=exact"}},
			{"GET", "/rest/v1/projects?id=like.X*", "", []string{"Prefer", "count=exact"}},
			{"GET", "/rest/v1/projects?select=name::integer&id=eq.X", "", nil},
			{"GET", "/rest/v1/tasks?project_id=eq.X", "", []string{"Prefer", "count=exact"}},
			{"GET", "/rest/v1/tasks?id=eq.T", "", []string{"Accept", "application/vnd.pgrst.object+json"}},
			{"GET", "/rest/v1/projects?tenant_id=eq.BU", "", nil},
			{"GET", "/rest/v1/projects?tenant_id=neq.BU", "", []string{"Prefer", "count=exact"}},
			{"GET", "/rest/v1/projects", "", []string{"Accept-Profile", "t_BH", "Prefer", "count=exact"}},
			{"PATCH", "/rest/v1/projects?id=eq.X", `{"name":"p"}`, []string{"Prefer", "count=exact"}},
			{"PATCH", "/rest/v1/projects?id=eq.X", `{"name":"p"}`, []string{"Prefer", "return=representation", "Accept", "application/vnd.pgrst.object+json"}},
			{"PATCH", "/rest/v1/projects?id=eq.A", `{"id":"X"}`, []string{"Prefer", "tx=rollback"}},
			{"PATCH", "/rest/v1/tasks?id=eq.AT", `{"project_id":"X"}`, []string{"Prefer", "tx=rollback"}},
			{"PATCH", "/rest/v1/tasks?id=eq.T", `{"project_id":"X"}`, []string{"Prefer", "tx=rollback"}},
			{"DELETE", "/rest/v1/projects?id=eq.X", "", []string{"Prefer", "count=exact,tx=rollback"}},
			{"DELETE", "/rest/v1/tasks?id=eq.T", "", []string{"Prefer", "count=exact,tx=rollback,return=representation"}},
			{"POST", "/rest/v1/projects", `{"id":"X","name":"n"}`, []string{"Prefer", "tx=rollback,count=exact"}},
			{"POST", "/rest/v1/projects", `{"id":"X","name":"n"}`, []string{"Prefer", "tx=rollback,resolution=merge-duplicates,return=representation"}},
			{"POST", "/rest/v1/projects", `{"id":"X","name":"n"}`, []string{"Prefer", "tx=rollback,resolution=ignore-duplicates,return=representation,count=exact"}},
			{"POST", "/rest/v1/projects?on_conflict=tenant_id,id", `{"id":"X","name":"n"}`, []string{"Prefer", "tx=rollback,resolution=merge-duplicates"}},
			{"POST", "/rest/v1/projects?on_conflict=id", `{"id":"X","name":"n"}`, []string{"Prefer", "tx=rollback,resolution=merge-duplicates"}},
			{"POST", "/rest/v1/projects?on_conflict=id,tenant_id", `[{"id":"X","name":"n"},{"id":"A","name":"m"}]`, []string{"Prefer", "tx=rollback,resolution=merge-duplicates"}},
			{"POST", "/rest/v1/projects", `[{"name":"own"},{"id":"X","name":"n"}]`, []string{"Prefer", "tx=rollback,missing=default"}},
			{"POST", "/rest/v1/projects", `{"tenant_id":"AU","id":"X","name":"n"}`, []string{"Prefer", "tx=rollback"}},
			{"POST", "/rest/v1/projects", `{"tenant_id":"BU","id":"X","name":"n"}`, []string{"Prefer", "tx=rollback"}},
			{"POST", "/rest/v1/tasks", `{"project_id":"X","title":"t"}`, []string{"Prefer", "tx=rollback"}},
			{"POST", "/rest/v1/tasks", `{"id":"T","project_id":"A","title":"t"}`, []string{"Prefer", "tx=rollback,resolution=merge-duplicates"}},
			{"POST", "/rest/v1/tasks", `{"id":"T","project_id":"X","title":"t"}`, []string{"Prefer", "tx=rollback,resolution=merge-duplicates"}},
			{"POST", "/rest/v1/tasks?columns=project_id,title", `{"project_id":"X","title":"t"}`, []string{"Prefer", "tx=rollback"}},
		}
		var out []oracleRequest
		rep := strings.NewReplacer("AT", a.TaskID, "AU", a.UUID, "BU", BU, "BH", strings.ReplaceAll(BU, "-", ""), "X", X, "T", T, "A", a.ProjectID)
		for _, p := range tmpl {
			out = append(out, oracleRequest{p.method, rep.Replace(p.path), rep.Replace(p.body), p.hdr})
		}
		return out
	}
	for _, b := range []*canary{bp, bs} {
		for _, tok := range []string{a.AdminToken, a.MemberToken} {
			br := mk(b.ProjectID, b.TaskID, b.UUID)
			rr := mk(rnd, rndT, "31111111-2222-4333-8444-555555555555")
			for i := range br {
				var bb, rb any
				if br[i].body != "" {
					bb, rb = br[i].body, rr[i].body
				}
				x := s.Do(t, br[i].method, br[i].path, tok, bb, br[i].hdr...)
				y := s.Do(t, rr[i].method, rr[i].path, tok, rb, rr[i].hdr...)
				nx := oracleAnswer(x, map[string]string{b.ProjectID: "<ID>", b.TaskID: "<TID>", b.UUID: "<BU>"})
				ny := oracleAnswer(y, map[string]string{rnd: "<ID>", rndT: "<TID>", "31111111-2222-4333-8444-555555555555": "<BU>"})
				if nx != ny {
					t.Errorf("%s %s %v answers differently for B's ids and for ids that exist nowhere:\n  B's:  %s\n  none: %s", br[i].method, br[i].path, br[i].hdr, nx, ny)
				}
				if strings.Contains(string(x.Body), b.ProjectName) || strings.Contains(string(x.Body), "secret of "+b.Slug) {
					t.Errorf("B's row in A's answer: %s", x)
				}
			}
		}
	}
}

// TestFilterSpellings: the policy's leading keys and the cross-tenant
// probe check read the parsed filters, so no spelling the parser accepts
// (a quoted name, an or tree, eq(any)) names another tenant without the
// policy seeing it, or asks for another tenant's row without a probe event.
func TestFilterSpellings(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "pool-a", "pool")
	b := seed(t, s, "pool-b", "pool")
	for _, q := range []string{
		"tenant_id=eq." + b.UUID,
		"%22tenant_id%22=eq." + b.UUID,
		"or=" + url.QueryEscape("(tenant_id.eq."+b.UUID+",name.eq.x)"),
		"and=" + url.QueryEscape("(tenant_id.not.neq."+b.UUID+")"),
		"tenant_id=eq(any)." + url.QueryEscape("{"+b.UUID+"}"),
		"tenant_id=in.(" + a.UUID + "," + b.UUID + ")",
	} {
		if r := s.Do(t, "GET", "/rest/v1/projects?"+q, a.AdminToken, nil); r.Status != http.StatusForbidden || r.Code() != "policy_denied" {
			t.Errorf("%s: %s, want 403 policy_denied", q, r)
		}
	}
	if r := s.Do(t, "GET", "/rest/v1/projects?select=name&tenant_id=eq."+strings.ToUpper(a.UUID), a.AdminToken, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), a.ProjectName) {
		t.Errorf("A's own UUID in upper case: %s", r)
	}
	probes := []string{
		"id=eq." + b.ProjectID,
		"%22id%22=eq." + b.ProjectID,
		"or=" + url.QueryEscape("(id.eq."+b.ProjectID+")"),
		"id=eq(any)." + url.QueryEscape("{"+b.ProjectID+"}"),
	}
	for _, q := range probes {
		if r := s.Do(t, "GET", "/rest/v1/projects?"+q, a.AdminToken, nil); r.Status != http.StatusOK || string(r.Body) != "[]" {
			t.Fatalf("%s: %s", q, r)
		}
	}
	var page auditPage
	for i := 0; i < 200 && len(page.Events) < len(probes); i++ {
		s.Sequence(t)
		s.Do(t, "GET", "/v1/audit?decision=probe", s.AdminToken, nil).JSON(t, &page)
		if len(page.Events) < len(probes) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(page.Events) != len(probes) {
		t.Fatalf("%d requests for B's project by id, %d probe events", len(probes), len(page.Events))
	}
}

// TestUpsertNamingAKeyTwice: an upsert whose body names one key twice is
// a 400, not a 500, and changes nothing.
func TestUpsertNamingAKeyTwice(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "pool-a", "pool")
	body := `[{"id":"` + a.ProjectID + `","name":"one"},{"id":"` + a.ProjectID + `","name":"two"}]`
	r := s.Do(t, "POST", "/rest/v1/projects", a.AdminToken, body, "Prefer", "resolution=merge-duplicates")
	if r.Status != http.StatusBadRequest || r.Code() != "duplicate_key_in_body" {
		t.Fatalf("an upsert naming a key twice: %s, want 400 duplicate_key_in_body", r)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects?select=name&id=eq."+a.ProjectID, a.AdminToken, nil); !strings.Contains(string(r.Body), a.ProjectName) {
		t.Fatalf("the refused upsert changed the row: %s", r)
	}
}
