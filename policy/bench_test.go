package policy_test

import (
	"testing"

	"github.com/bulkhead-dev/bulkhead/policy"
)

// tenantAdditions is what a tenant admin might add to the premium template:
// fourteen statements with wildcards, variables and every operator family.
const tenantAdditions = `{
  "Version": "2012-10-17",
  "Id": "acme-analysts",
  "Statement": [
    {"Sid": "AnalystsReadReports", "Effect": "Allow", "Action": "data:Select",
     "Resource": ["brn:bulkhead:data:${bulkhead:TenantID}:table/report_*", "brn:bulkhead:data:${bulkhead:TenantID}:table/metrics"],
     "Condition": {"StringEquals": {"aws:PrincipalTag/department": "analytics"}}},
    {"Sid": "TeamTables", "Effect": "Allow", "Action": ["data:Select", "data:Insert", "data:Update"],
     "Resource": "brn:bulkhead:data:${bulkhead:TenantID}:table/${aws:PrincipalTag/team}_*"},
    {"Sid": "OfficeHours", "Effect": "Allow", "Action": "data:*",
     "Resource": "brn:bulkhead:data:${bulkhead:TenantID}:table/shifts",
     "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}, "DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}},
    {"Sid": "OfficeNetwork", "Effect": "Allow", "Action": "data:Select",
     "Resource": "brn:bulkhead:data:${bulkhead:TenantID}:table/payroll",
     "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}, "Bool": {"ext:MFA": "true"}}},
    {"Sid": "BatchLimits", "Effect": "Allow", "Action": "data:Insert",
     "Resource": "brn:bulkhead:data:${bulkhead:TenantID}:table/events",
     "Condition": {"NumericLessThanEquals": {"ext:Rows": "1000"}}},
    {"Sid": "ProjectsByPrefix", "Effect": "Allow", "Action": "data:Select",
     "Resource": "brn:bulkhead:data:${bulkhead:TenantID}:table/projects",
     "Condition": {"StringLike": {"ext:Project": ["${aws:PrincipalTag/team}-*", "shared-*"]}}},
    {"Sid": "ContractorsReadOnly", "Effect": "Deny", "NotAction": "data:Select",
     "Resource": "*", "Condition": {"StringEqualsIgnoreCase": {"aws:PrincipalTag/employment": "contractor"}}},
    {"Sid": "NoDeleteAudit", "Effect": "Deny", "Action": "data:Delete",
     "Resource": "brn:bulkhead:data:*:table/audit_*"},
    {"Sid": "NoLegacyTables", "Effect": "Deny", "Action": "data:*",
     "Resource": ["brn:bulkhead:data:*:table/legacy_*", "brn:bulkhead:data:*:table/tmp_?"]},
    {"Sid": "BlockedNetworks", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "198.51.100.0/24"]}}},
    {"Sid": "ExpiredAccess", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"DateGreaterThan": {"ext:AccessExpires": "2020-01-01"}}},
    {"Sid": "SuspendedUsers", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/status": "suspended"}}},
    {"Sid": "PremiumOnly", "Effect": "Deny", "Action": "data:Delete", "Resource": "*",
     "Condition": {"StringNotEquals": {"bulkhead:Tier": "premium"}}},
    {"Sid": "KnownGroups", "Effect": "Deny", "Action": "data:*", "Resource": "*",
     "Condition": {"ForAnyValue:StringNotLike": {"ext:Groups": ["acme-*", "${bulkhead:TenantID}-*"]}}}
  ]
}`

func BenchmarkEvaluate(b *testing.B) {
	docs := []*policy.Document{MustTemplate(b, policy.TierPremium), MustParse(b, tenantAdditions)}
	if n := len(docs[0].Statement) + len(docs[1].Statement); n != 20 {
		b.Fatalf("%d statements, want 20", n)
	}
	p := policy.Principal{TenantID: "acme", Tier: "premium", Role: "admin",
		Tags: map[string]string{"team": "red", "department": "analytics"}}
	opts := []reqOpt{leading("acme"), at(t0), from("10.1.2.3"), ctx("ext:Groups", "acme-dev", "acme-ops")}
	for _, bb := range []struct {
		name string
		req  policy.Request
		want policy.Effect
	}{
		{"Allow", rq(policy.DataSelect, policy.DataResource("acme", "report_q1"), opts...), policy.Allow},
		{"CrossTenant", rq(policy.DataSelect, policy.DataResource("globex", "report_q1"), opts...), policy.ExplicitDeny},
		{"ImplicitDeny", rq(policy.KeysList, policy.ControlResource("acme", policy.KindKey, ""), opts...), policy.ImplicitDeny},
	} {
		if d := policy.Evaluate(bb.req, p, docs...); d.Effect != bb.want {
			b.Fatalf("%s: Evaluate = %+v, want %v", bb.name, d, bb.want)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				policy.Evaluate(bb.req, p, docs...)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte(tenantAdditions)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := policy.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
