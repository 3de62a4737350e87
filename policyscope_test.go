package bulkhead_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestMintFollowsPolicies checks that a context minted without an explicit
// scope carries only what the tenant's plan and policies allow: what
// POST /v1/auth/context, the Lambda authorizer and DB.Tx hand out.
func TestMintFollowsPolicies(t *testing.T) {
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
