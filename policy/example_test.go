package policy_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
)

func ExampleEvaluate() {
	tmpl, err := policy.Template(policy.TierBasic)
	if err != nil {
		panic(err)
	}
	p := policy.Principal{TenantID: "acme", Tier: policy.TierBasic, Role: "member"}
	for _, req := range []policy.Request{
		{Action: policy.DataSelect, Resource: policy.DataResource("acme", "orders"),
			Context: map[string][]string{policy.KeyLeadingKeys: {"acme"}}},
		{Action: policy.DataSelect, Resource: policy.DataResource("globex", "orders")},
		{Action: policy.DataDelete, Resource: policy.DataResource("acme", "orders")},
	} {
		d := policy.Evaluate(req, p, tmpl)
		fmt.Println(req.Action, req.Resource, "→", d.Effect, d.Statement)
	}
	// Output:
	// data:Select brn:bulkhead:data:acme:table/orders → Allow ReadWriteOwnTables
	// data:Select brn:bulkhead:data:globex:table/orders → ExplicitDeny DenyOtherTenantsData
	// data:Delete brn:bulkhead:data:acme:table/orders → ImplicitDeny
}

func ExampleParse() {
	_, err := policy.Parse([]byte(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Sid": "AllowReads",
	    "Effect": "Allow",
	    "Action": "data:Select",
	    "Resource": "*",
	    "Condition": {"StringEqualz": {"bulkhead:Tier": "basic"}}
	  }]
	}`))
	fmt.Println(fault.MessageOf(err))
	// Output:
	// Statement[0] ("AllowReads"): Condition: unknown operator "StringEqualz"
}

func ExampleEvaluateWithBoundary() {
	everything, _ := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}}`))
	boundary, _ := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":{
	  "Effect":"Allow","Action":"data:*","Resource":"brn:bulkhead:data:${bulkhead:TenantID}:*",
	  "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`))
	p := policy.Principal{TenantID: "acme"}
	req := policy.Request{
		Action:   policy.DataUpdate,
		Resource: policy.DataResource("acme", "orders"),
		Time:     time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		SourceIP: netip.MustParseAddr("10.1.2.3"),
	}
	fmt.Println(policy.EvaluateWithBoundary(req, p, []*policy.Document{boundary}, []*policy.Document{everything}).Effect)
	req.SourceIP = netip.MustParseAddr("203.0.113.9")
	fmt.Println(policy.EvaluateWithBoundary(req, p, []*policy.Document{boundary}, []*policy.Document{everything}).Effect)
	// Output:
	// Allow
	// ImplicitDeny
}

func ExampleExportDynamoDB() {
	b, err := policy.ExportDynamoDB("AppTable", []string{"dynamodb:GetItem", "dynamodb:PutItem"})
	if err != nil {
		panic(err)
	}
	d, _ := policy.Parse(b)
	fmt.Println(d.Statement[0].Resource[0])
	fmt.Println(d.Statement[0].Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"][0])
	// Output:
	// arn:aws:dynamodb:*:*:table/AppTable
	// ${aws:PrincipalTag/TenantID}
}
