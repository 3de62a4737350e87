package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/policy"
)

func TestPolicies(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")                  // premium
	b := seedOnPlan(t, s, "globex", "silo", "basic") // basic
	denyMemberDelete := `{"Version":"2012-10-17","Statement":[{"Sid":"NoMemberDeletes","Effect":"Deny","Action":"data:Delete","Resource":"*",
		"Condition":{"StringEquals":{"bulkhead:Role":"member"}}}]}`
	grantEverything := `{"Version":"2012-10-17","Statement":[{"Sid":"Everything","Effect":"Allow","Action":"*","Resource":"*"}]}`

	// A premium admin narrows its members: they lose DELETE, it keeps it.
	if r := s.Do(t, "PUT", "/v1/policies/no-member-deletes", a.AdminToken, denyMemberDelete); r.Status != http.StatusCreated {
		t.Fatalf("put: %s", r)
	}
	if r := s.Do(t, "DELETE", "/rest/v1/tasks?id=eq."+a.TaskID, a.MemberToken, nil); r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "policy_denied") {
		t.Fatalf("member delete under the new policy: %s", r)
	}
	// The database agrees even for a statement the API would allow: the
	// member's context no longer carries "delete".
	if r := s.Do(t, "GET", "/rest/v1/tasks?id=eq."+a.TaskID, a.MemberToken, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), a.TaskID) {
		t.Fatalf("member read: %s", r)
	}
	if r := s.Do(t, "DELETE", "/rest/v1/tasks?id=eq."+a.TaskID, a.AdminToken, nil); r.Status != http.StatusNoContent {
		t.Fatalf("admin delete: %s", r)
	}

	// A basic plan's boundary holds whatever its admin attaches: granting
	// everything adds nothing beyond the template.
	if r := s.Do(t, "PUT", "/v1/policies/everything", b.AdminToken, grantEverything); r.Status != http.StatusForbidden {
		t.Fatalf("a basic admin managing policies (premium only): %s", r)
	}
	if r := s.Do(t, "PUT", "/v1/policies/everything?tenant=globex", s.AdminToken, grantEverything); r.Status != http.StatusCreated {
		t.Fatalf("platform admin attaching to globex: %s", r)
	}
	if r := s.Do(t, "DELETE", "/rest/v1/projects?id=eq."+b.ProjectID, b.AdminToken, nil); r.Status != http.StatusForbidden {
		t.Fatalf("basic tenant deleting with an Allow * attached: %s", r)
	}
	if r := s.Do(t, "POST", "/v1/tenants/globex/users", b.AdminToken, map[string]string{"email": "x@globex.test", "password": "pw-x", "role": "admin"}); r.Status != http.StatusForbidden {
		t.Fatalf("basic admin creating users with Allow * attached: %s", r)
	}

	// A policy can never reach another tenant: Allow on globex's resources,
	// attached by acme, grants nothing there.
	cross := `{"Version":"2012-10-17","Statement":[{"Sid":"Grab","Effect":"Allow","Action":"data:*","Resource":"brn:bulkhead:data:` + b.UUID + `:table/*"}]}`
	if r := s.Do(t, "PUT", "/v1/policies/grab", a.AdminToken, cross); r.Status != http.StatusCreated {
		t.Fatalf("put cross: %s", r)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects?tenant_id=eq."+b.UUID, a.AdminToken, nil); r.Status != http.StatusForbidden {
		t.Fatalf("acme naming globex with a cross-tenant Allow: %s", r)
	}
	// Each tenant sees only its own policies; there is no way to name another.
	r := s.Do(t, "GET", "/v1/policies", a.AdminToken, nil)
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), "everything") || !strings.Contains(string(r.Body), "no-member-deletes") {
		t.Fatalf("acme's policies: %s", r)
	}
	if r := s.Do(t, "GET", "/v1/policies?tenant=globex", a.AdminToken, nil); strings.Contains(string(r.Body), "everything") {
		t.Fatalf("acme reading globex's policies: %s", r)
	}
	if r := s.Do(t, "DELETE", "/v1/policies/everything", a.AdminToken, nil); r.Status != http.StatusNotFound {
		t.Fatalf("acme deleting globex's policy by name: %s", r)
	}
	if r := s.Do(t, "GET", "/v1/policies", a.MemberToken, nil); r.Status != http.StatusForbidden {
		t.Fatalf("a member listing policies: %s", r)
	}

	// Invalid documents are refused with the place named.
	r = s.Do(t, "PUT", "/v1/policies/bad", a.AdminToken, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"data:Select","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}]}`)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `Statement[0]`) || !strings.Contains(string(r.Body), "StringEqualz") {
		t.Fatalf("invalid policy: %s", r)
	}
	if r := s.Do(t, "PUT", "/v1/policies/bad%20name", a.AdminToken, denyMemberDelete); r.Status != http.StatusBadRequest {
		t.Fatalf("bad name: %s", r)
	}

	// The simulator says what would happen and which statement decides.
	for _, tt := range []struct {
		token, body, decision, statement string
	}{
		{a.MemberToken, `{"action":"data:Delete","resource":"brn:bulkhead:data:` + a.UUID + `:table/tasks"}`, "explicit_deny", "NoMemberDeletes"},
		{a.AdminToken, `{"action":"data:Delete","resource":"brn:bulkhead:data:` + a.UUID + `:table/tasks"}`, "allow", "ReadWriteDeleteOwnTables"},
		{a.AdminToken, `{"action":"data:Select","resource":"brn:bulkhead:data:` + b.UUID + `:table/projects"}`, "explicit_deny", "DenyOtherTenantsData"},
	} {
		r := s.Do(t, "POST", "/v1/policies/simulate", tt.token, tt.body)
		if r.Status == http.StatusForbidden && tt.token == a.MemberToken {
			continue // members may not simulate on premium; the admin case covers it
		}
		var d struct{ Decision, Statement string }
		r.JSON(t, &d)
		if d.Decision != tt.decision || d.Statement != tt.statement {
			t.Errorf("simulate %s = %s, want %s by %s", tt.body, r, tt.decision, tt.statement)
		}
	}
	r = s.Do(t, "POST", "/v1/policies/simulate?tenant=acme", s.AdminToken, `{"action":"data:Delete","resource":"brn:bulkhead:data:`+a.UUID+`:table/tasks","role":"member"}`)
	if !strings.Contains(string(r.Body), `"statement":"NoMemberDeletes"`) {
		t.Fatalf("platform simulating acme's member: %s", r)
	}
}

// TestPoliciesReachDirectSQL checks that what the policies refuse over
// HTTP is refused to business code too, and that policies fail closed.
func TestPoliciesReachDirectSQL(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	b := seedOnPlan(t, s, "basico", "pool", "basic")
	ctx := context.Background()
	fn, err := s.DB.Postgres().CreateFunction(ctx, "pol_"+strings.ReplaceAll(b.UUID[:8], "-", ""))
	if err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "POST", "/v1/auth/context", fn.Token, map[string]string{"token": b.AdminToken})
	var v struct{ Context, Schema string }
	r.JSON(t, &v)
	db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: s.PG.URL(fn.LoginRole, fn.Password)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := bulkhead.WithSigned(ctx, v.Context, v.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var deleted int64
	err = db.Tx(c, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM app.projects`)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil || deleted != 0 {
		t.Fatalf("a basic admin's vended context deleted %d rows (%v); the plan allows no delete", deleted, err)
	}
	// The caller's own UUID in capitals is still its own leading key.
	if r := s.Do(t, "GET", "/rest/v1/projects?tenant_id=eq."+strings.ToUpper(b.UUID), b.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("own tenant id in capitals: %s", r)
	}
	// A stored policy that no longer parses denies everything.
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO bulkhead_control.policies (tenant_id, name, document) VALUES ($1, 'broken', '{"not":"a policy"}')`, b.UUID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // the policy cache holds parsed policies for 2 s
	if r := s.Do(t, "GET", "/rest/v1/projects", b.AdminToken, nil); r.Status != http.StatusForbidden {
		t.Fatalf("with a broken stored policy: %s", r)
	}
}

// TestPolicyDocumentsBounded: a tenant has at most policy.MaxDocuments
// documents, since every decision for its users evaluates all of them; a
// new one past the bound is a 409 that changes nothing, a document it has
// can still be replaced, and another tenant's documents are its own.
func TestPolicyDocumentsBounded(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	b := seed(t, s, "globex", "pool")
	doc := func(i int) string {
		return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"S%d","Effect":"Deny","Action":"data:Delete","Resource":"brn:bulkhead:data:*:table/t%d"}]}`, i, i)
	}
	for i := range policy.MaxDocuments {
		if r := s.Do(t, "PUT", fmt.Sprintf("/v1/policies/p%d", i), a.AdminToken, doc(i)); r.Status != http.StatusCreated {
			t.Fatalf("document %d of %d: %s", i+1, policy.MaxDocuments, r)
		}
	}
	r := s.Do(t, "PUT", "/v1/policies/one-more", a.AdminToken, doc(99))
	if r.Status != http.StatusConflict || r.Code() != "too_many_policies" {
		t.Fatalf("a document past the bound: %s; want 409 too_many_policies", r)
	}
	var got struct {
		Policies []struct{ Name string } `json:"policies"`
	}
	s.Do(t, "GET", "/v1/policies", a.AdminToken, nil).JSON(t, &got)
	if len(got.Policies) != policy.MaxDocuments {
		t.Fatalf("%d documents after the refusal; want %d", len(got.Policies), policy.MaxDocuments)
	}
	if r := s.Do(t, "PUT", "/v1/policies/p3", a.AdminToken, doc(42)); r.Status != http.StatusOK {
		t.Fatalf("replacing a document at the bound: %s", r)
	}
	// A platform administrator is held to the same bound.
	if r := s.Do(t, "PUT", "/v1/policies/by-admin?tenant=acme", s.AdminToken, doc(7)); r.Status != http.StatusConflict {
		t.Fatalf("a platform admin's document past the bound: %s", r)
	}
	// The bound is per tenant.
	if r := s.Do(t, "PUT", "/v1/policies/one-more", b.AdminToken, doc(99)); r.Status != http.StatusCreated {
		t.Fatalf("globex's first document while acme is at its bound: %s", r)
	}
	if r := s.Do(t, "DELETE", "/v1/policies/p0", a.AdminToken, nil); r.Status >= 300 {
		t.Fatalf("delete: %s", r)
	}
	if r := s.Do(t, "PUT", "/v1/policies/one-more", a.AdminToken, doc(99)); r.Status != http.StatusCreated {
		t.Fatalf("a new document once one was deleted: %s", r)
	}
}

// TestBadBytesRefusedByName: a document that is not UTF-8 is refused as an
// invalid document (not as a bad name), and a user's email with a NUL as
// an invalid email; neither is stored.
func TestBadBytesRefusedByName(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	doc := []byte("{\"Version\":\"2012-10-17\",\"Id\":\"\xff\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"data:Select\",\"Resource\":\"*\"}]}")
	if r := s.Do(t, "PUT", "/v1/policies/good-name", a.AdminToken, doc); r.Status != http.StatusBadRequest || r.Code() != "invalid_policy" {
		t.Fatalf("a document that is not UTF-8: %s, want 400 invalid_policy", r)
	}
	if r := s.Do(t, "GET", "/v1/policies", a.AdminToken, nil); strings.Contains(string(r.Body), "good-name") {
		t.Fatalf("the refused document was stored: %s", r)
	}
	body := map[string]string{"email": "a\u0000@acme.test", "password": "a long enough password", "role": "member"}
	if r := s.Do(t, "POST", "/v1/tenants/acme/users", a.AdminToken, body); r.Status != http.StatusBadRequest || r.Code() != "invalid_email" {
		t.Fatalf("an email with a NUL: %s, want 400 invalid_email", r)
	}
}
