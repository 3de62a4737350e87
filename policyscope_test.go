package bulkhead_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestMintFollowsPolicies checks that a context minted without an explicit
// scope carries only what the tenant's plan and policies allow: what
// POST /v1/auth/context, the Lambda authorizer and DB.Tx hand out.
func TestMintFollowsPolicies(t *testing.T) {
	// A database of its own, so that the test can run again (-count).
	databaseURL := pgtest.NewDB(t).AdminURL
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scope := func(slug, plan string, role tenant.Role) []string {
		tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(slug), Tier: tenant.Pool, Plan: plan})
		if err != nil {
			t.Fatal(err)
		}
		s, err := db.Mint(ctx, tenant.Principal{TenantID: tn.ID, Role: role}, bulkhead.MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(s.Token, ".")[2])
		var c struct{ Scope []string }
		json.Unmarshal(raw, &c)
		return c.Scope
	}
	if got := scope("scope-basic", "basic", tenant.Admin); slices.Contains(got, "delete") || !slices.Contains(got, "select") {
		t.Fatalf("basic admin's scope %v: want select, insert, update only", got)
	}
	if got := scope("scope-premium", "premium", tenant.Member); !slices.Contains(got, "delete") {
		t.Fatalf("premium member's scope %v: want delete too", got)
	}
	tn, err := db.Postgres().FindTenantBySlug(ctx, "scope-premium", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Postgres().PutPolicy(ctx, tn.ID, "no-deletes", `{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"data:Delete","Resource":"*"}]}`); err != nil {
		t.Fatal(err)
	}
	db.ForgetTenant(tn.ID)
	s, err := db.Mint(ctx, tenant.Principal{TenantID: tn.ID, Role: tenant.Admin}, bulkhead.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(s.Token, ".")[2])
	if strings.Contains(string(raw), `"delete"`) {
		t.Fatalf("a context minted under a Deny on data:Delete carries delete: %s", raw)
	}
}

// TestPoliciesParsedOnce: a tenant's stored documents, read again at each
// reload, are parsed once while their text is the same; a changed
// document is parsed again and applies; the same text under another
// tenant is that tenant's own parse.
func TestPoliciesParsedOnce(t *testing.T) {
	// A database of its own, so that the test can run again (-count).
	databaseURL := pgtest.NewDB(t).AdminURL
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tenants []*tenant.Tenant
	for _, slug := range []string{"parsed-a", "parsed-b"} {
		tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(slug), Tier: tenant.Pool, Plan: "premium"})
		if err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, tn)
	}
	a, b := tenants[0], tenants[1]
	const noDeletes = `{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"data:Delete","Resource":"*"}]}`
	const noInserts = `{"Version":"2012-10-17","Statement":[{"Sid":"NoInserts","Effect":"Deny","Action":"data:Insert","Resource":"*"}]}`
	doc := func(tn *tenant.Tenant) *policy.Document {
		t.Helper()
		db.ForgetPolicies(tn.ID) // as a reload after policiesAge would
		tp, err := db.Policies(ctx, tn)
		if err != nil || len(tp.Policies) != 2 {
			t.Fatalf("policies of %s: %+v %v; want the template and one document", tn.Slug, tp, err)
		}
		return tp.Policies[1]
	}
	for _, tn := range tenants {
		if _, err := db.Postgres().PutPolicy(ctx, tn.ID, "p", noDeletes); err != nil {
			t.Fatal(err)
		}
	}
	first := doc(a)
	if again := doc(a); again != first {
		t.Fatal("an unchanged document was parsed again at the reload")
	}
	if other := doc(b); other == first {
		t.Fatal("another tenant's document with the same text is the same parse")
	}
	if _, err := db.Postgres().PutPolicy(ctx, a.ID, "p", noInserts); err != nil {
		t.Fatal(err)
	}
	changed := doc(a)
	if changed == first || changed.Statement[0].Sid != "NoInserts" {
		t.Fatalf("after the change: %+v; want the new document", changed.Statement[0])
	}
}

// TestPolicyScopeAddressUnknown: a context's scope is minted without the
// address its statements will come from, so a Deny conditioned on
// aws:SourceIp counts (it dropped out, since the key was absent), and an
// Allow conditioned on it does not.
func TestPolicyScopeAddressUnknown(t *testing.T) {
	db := openOneConnection(t)
	ctx := context.Background()
	tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "scope-ip", Tier: tenant.Pool, Plan: "premium"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(name, doc string) {
		t.Helper()
		if _, err := db.Postgres().PutPolicy(ctx, tn.ID, name, doc); err != nil {
			t.Fatal(err)
		}
		db.ForgetTenant(tn.ID)
	}
	scope := func() []string {
		t.Helper()
		got, err := db.PolicyScope(ctx, tenant.Principal{TenantID: tn.ID, Role: tenant.Admin}, tn)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := scope(); !slices.Contains(got, "delete") {
		t.Fatalf("premium admin's scope %v has no delete to begin with", got)
	}
	put("no-deletes-from-anywhere", `{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletesFromAnywhere","Effect":"Deny","Action":"data:Delete","Resource":"*",
		"Condition":{"IpAddress":{"aws:SourceIp":["0.0.0.0/0","::/0"]}}}]}`)
	if got := scope(); slices.Contains(got, "delete") || !slices.Contains(got, "insert") {
		t.Fatalf("scope %v: want delete dropped by the address-conditioned Deny, insert kept", got)
	}
}
