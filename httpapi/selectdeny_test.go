package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// docs/policies.md: "a policy that denies data:Select binds the data API".
// A premium admin denies its members data:Select on projects; a member's
// GET is refused, but a DELETE (decided as data:Delete only) with
// Prefer: return=representation, tx=rollback returns every row and keeps
// them, and so does a PATCH (data:Update) with return=representation.
// TestSelectDenyHoldsForWrites: a member whose policies deny data:Select
// cannot read rows through a write that returns them (PATCH or DELETE with
// return=representation and tx=rollback); the admin still can.
func TestSelectDenyHoldsForWrites(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool") // premium
	noRead := `{"Version":"2012-10-17","Statement":[{"Sid":"MembersDoNotReadProjects","Effect":"Deny","Action":"data:Select",
		"Resource":"brn:bulkhead:data:${bulkhead:TenantID}:table/projects","Condition":{"StringEquals":{"bulkhead:Role":"member"}}}]}`
	if r := s.Do(t, "PUT", "/v1/policies/no-member-reads", a.AdminToken, noRead); r.Status != http.StatusCreated {
		t.Fatalf("put: %s", r)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", a.MemberToken, nil); r.Status != http.StatusForbidden {
		t.Fatalf("member GET under the Deny: %s", r)
	}
	r := s.Do(t, "DELETE", "/rest/v1/projects?id=eq."+a.ProjectID, a.MemberToken, nil, "Prefer", "return=representation,tx=rollback")
	if r.Status != http.StatusForbidden || strings.Contains(string(r.Body), "secret of acme") {
		t.Errorf("member read a project it may not data:Select through DELETE + return=representation, tx=rollback: %s", r)
	}
	r = s.Do(t, "PATCH", "/rest/v1/projects?id=eq."+a.ProjectID, a.MemberToken, map[string]string{"name": "x"}, "Prefer", "return=representation,tx=rollback")
	if r.Status != http.StatusForbidden || strings.Contains(string(r.Body), "secret of acme") {
		t.Errorf("member read a project it may not data:Select through PATCH + return=representation, tx=rollback: %s", r)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects?id=eq."+a.ProjectID, a.AdminToken, nil); !strings.Contains(string(r.Body), "secret of acme") {
		t.Fatalf("the row is gone (tx=rollback not honoured?): %s", r)
	}
}
