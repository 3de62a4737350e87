package policy_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
	"github.com/google/go-cmp/cmp"
)

// TestTemplatesIsolateTenants runs every action of every template as
// tenant acme, in every role, against tenant globex's resources, and
// against acme's own tables with leading keys that include globex. Nothing
// may be allowed, and the data cases must be explicit denies.
func TestTemplatesIsolateTenants(t *testing.T) {
	for _, tier := range policy.Tiers() {
		d := MustTemplate(t, tier)
		for _, role := range []tenant.Role{tenant.Member, tenant.Admin} {
			p := policy.Principal{TenantID: "acme", Tier: tier, Role: role, Tags: map[string]string{"TenantID": "acme"}}
			for _, action := range policy.Actions() {
				res := policy.DataResource("globex", "orders")
				if service(action) != "data" {
					res = policy.ControlResource("globex", kindOf(action), "x")
				}
				got := policy.Evaluate(rq(action, res, leading("acme")), p, d)
				if got.Effect != policy.ExplicitDeny {
					t.Errorf("%s/%s: %s on %s = %+v, want ExplicitDeny", tier, role, action, res, got)
				}
				if service(action) != "data" {
					continue
				}
				for _, keys := range [][]string{{"globex"}, {"acme", "globex"}, {"globex", "acme"}} {
					got := policy.Evaluate(rq(action, acmeOrders, leading(keys...)), p, d)
					if got.Effect != policy.ExplicitDeny || got.Statement != "DenyOtherTenantsKeys" {
						t.Errorf("%s/%s: %s with leading keys %v = %+v, want ExplicitDeny by DenyOtherTenantsKeys", tier, role, action, keys, got)
					}
				}
			}
		}
	}
}

func service(action string) string {
	for i := range action {
		if action[i] == ':' {
			return action[:i]
		}
	}
	return action
}

func kindOf(action string) string {
	return map[string]string{"tenants": policy.KindTenant, "users": policy.KindUser, "policies": policy.KindPolicy,
		"audit": policy.KindAudit, "keys": policy.KindKey}[service(action)]
}

// TestTemplateGrants lists what each tier allows a tenant on its own
// resources.
func TestTemplateGrants(t *testing.T) {
	own := func(action string) string {
		if service(action) == "data" {
			return acmeOrders
		}
		k := kindOf(action)
		switch k {
		case policy.KindTenant:
			return policy.ControlResource("acme", k, "acme")
		case policy.KindKey:
			return policy.ControlResource("", k, "")
		}
		return policy.ControlResource("acme", k, "")
	}
	for _, tt := range []struct {
		tier string
		role tenant.Role
		want []string
	}{
		{policy.TierBasic, tenant.Member, []string{"data:Select", "data:Insert", "data:Update", "tenants:Get"}},
		{policy.TierBasic, tenant.Admin, []string{"data:Select", "data:Insert", "data:Update", "tenants:Get"}},
		{policy.TierPremium, tenant.Member, []string{"data:Select", "data:Insert", "data:Update", "data:Delete", "tenants:Get"}},
		{policy.TierPremium, tenant.Admin, []string{"data:Select", "data:Insert", "data:Update", "data:Delete", "tenants:Get",
			"users:Create", "users:List", "policies:Get", "policies:List", "policies:Put", "policies:Delete", "policies:Simulate", "audit:Read"}},
	} {
		t.Run(tt.tier+"/"+string(tt.role), func(t *testing.T) {
			d := MustTemplate(t, tt.tier)
			p := policy.Principal{TenantID: "acme", Tier: tt.tier, Role: tt.role}
			var got []string
			for _, a := range policy.Actions() {
				if policy.Evaluate(rq(a, own(a), leading("acme")), p, d).Allowed() {
					got = append(got, a)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("allowed actions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTemplateUnknownTier(t *testing.T) {
	if _, err := policy.Template("gold"); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf(`Template("gold") = %v, want ErrInvalid`, err)
	}
	if b := policy.TemplateJSON("gold"); b != nil {
		t.Errorf(`TemplateJSON("gold") = %s, want nil`, b)
	}
}

// TestTemplateFresh checks that Template returns a copy that a caller may
// change without changing the next caller's.
func TestTemplateFresh(t *testing.T) {
	a := MustTemplate(t, policy.TierBasic)
	a.Statement[0].Action = []string{"*"}
	b := MustTemplate(t, policy.TierBasic)
	if cmp.Equal(a.Statement[0].Action, b.Statement[0].Action) {
		t.Error("Template returned a shared document")
	}
}

func TestExportDynamoDB(t *testing.T) {
	b, err := policy.ExportDynamoDB("AppTable", []string{"dynamodb:GetItem", "dynamodb:PutItem"})
	if err != nil {
		t.Fatalf("ExportDynamoDB = %v", err)
	}
	want := `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "TenantItemsOnly",
      "Effect": "Allow",
      "Action": [
        "dynamodb:GetItem",
        "dynamodb:PutItem"
      ],
      "Resource": "arn:aws:dynamodb:*:*:table/AppTable",
      "Condition": {
        "ForAllValues:StringEquals": {
          "dynamodb:LeadingKeys": [
            "${aws:PrincipalTag/TenantID}"
          ]
        },
        "Null": {
          "dynamodb:LeadingKeys": [
            "false"
          ]
        }
      }
    }
  ]
}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("ExportDynamoDB (-want +got):\n%s", diff)
	}
	if !json.Valid(b) {
		t.Fatal("not JSON")
	}
	d := MustParse(t, string(b))
	table := "arn:aws:dynamodb:us-east-1:123456789012:table/AppTable"
	p := policy.Principal{Tags: map[string]string{"TenantID": "t1"}}
	for _, tt := range []struct {
		name string
		req  policy.Request
		want policy.Effect
	}{
		{"OwnItems", rq("dynamodb:GetItem", table, ctx("dynamodb:LeadingKeys", "t1")), policy.Allow},
		{"OtherTenant", rq("dynamodb:GetItem", table, ctx("dynamodb:LeadingKeys", "t2")), policy.ImplicitDeny},
		{"Mixed", rq("dynamodb:PutItem", table, ctx("dynamodb:LeadingKeys", "t1", "t2")), policy.ImplicitDeny},
		{"ScanWithoutKeys", rq("dynamodb:GetItem", table), policy.ImplicitDeny},
		{"OtherAction", rq("dynamodb:DeleteItem", table, ctx("dynamodb:LeadingKeys", "t1")), policy.ImplicitDeny},
		{"OtherTable", rq("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/Other", ctx("dynamodb:LeadingKeys", "t1")), policy.ImplicitDeny},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.Evaluate(tt.req, p, d); got.Effect != tt.want {
				t.Errorf("Evaluate(%+v) = %+v, want %v", tt.req, got, tt.want)
			}
		})
	}

	arn := "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders"
	b, err = policy.ExportDynamoDB(arn, []string{"dynamodb:Query"})
	if err != nil || MustParse(t, string(b)).Statement[0].Resource[0] != arn {
		t.Errorf("ExportDynamoDB(%q) = %s, %v; want the ARN as the resource", arn, b, err)
	}

	for _, tt := range []struct {
		name    string
		table   string
		actions []string
		want    string
	}{
		{"BadTable", "a b", []string{"dynamodb:GetItem"}, `"a b" is not a DynamoDB table name or table ARN`},
		{"NoActions", "AppTable", nil, `no actions`},
		{"Wildcard", "AppTable", []string{"dynamodb:*"}, `"dynamodb:*" is not a DynamoDB action such as dynamodb:GetItem (wildcards are not exported)`},
		{"OtherService", "AppTable", []string{"s3:GetObject"}, `"s3:GetObject" is not a DynamoDB action such as dynamodb:GetItem (wildcards are not exported)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.ExportDynamoDB(tt.table, tt.actions)
			if !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("ExportDynamoDB(%q, %q) = %v, want ErrInvalid", tt.table, tt.actions, err)
			}
			if got := fault.MessageOf(err); got != tt.want {
				t.Errorf("message = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEvaluateConcurrently shares one validated document between
// goroutines, as a server does; run it with -race.
func TestEvaluateConcurrently(t *testing.T) {
	d := MustTemplate(t, policy.TierPremium)
	done := make(chan policy.Effect)
	for i := range 8 {
		go func() {
			var last policy.Effect
			for range 200 {
				res := acmeOrders
				if i%2 == 1 {
					res = globexOrders
				}
				last = policy.Evaluate(rq(policy.DataSelect, res, leading("acme")), acmeAdmin, d).Effect
			}
			done <- last
		}()
	}
	for range 8 {
		if got := <-done; got != policy.Allow && got != policy.ExplicitDeny {
			t.Errorf("Evaluate = %v", got)
		}
	}
}
