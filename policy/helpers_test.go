package policy_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/policy"
)

// t0 is the request time of the tests that need one.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	acmeOrders   = policy.DataResource("acme", "orders")
	globexOrders = policy.DataResource("globex", "orders")
)

// Principals.
var (
	acme       = policy.Principal{TenantID: "acme", Tier: "basic", Role: "member", Tags: map[string]string{"team": "red"}}
	acmeAdmin  = policy.Principal{TenantID: "acme", Tier: "premium", Role: "admin"}
	globexUser = policy.Principal{TenantID: "globex", Tier: "basic", Role: "member"}
	nobody     = policy.Principal{}
)

type reqOpt func(*policy.Request)

// rq builds a request.
func rq(action, resource string, opts ...reqOpt) policy.Request {
	r := policy.Request{Action: action, Resource: resource}
	for _, o := range opts {
		o(&r)
	}
	return r
}

// sel is data:Select on acme's orders table.
func sel(opts ...reqOpt) policy.Request { return rq(policy.DataSelect, acmeOrders, opts...) }

// ctx adds a Context key; with no values, the key is present with an
// empty set.
func ctx(k string, v ...string) reqOpt {
	return func(r *policy.Request) {
		if r.Context == nil {
			r.Context = map[string][]string{}
		}
		if v == nil {
			v = []string{}
		}
		r.Context[k] = v
	}
}

func at(t time.Time) reqOpt { return func(r *policy.Request) { r.Time = t } }

func from(ip string) reqOpt {
	return func(r *policy.Request) { r.SourceIP = netip.MustParseAddr(ip) }
}

func leading(ids ...string) reqOpt { return ctx(policy.KeyLeadingKeys, ids...) }

// doc wraps statements in a 2012-10-17 document.
func doc(stmts ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// doc08 wraps statements in a 2008-10-17 document.
func doc08(stmts ...string) string {
	return `{"Version":"2008-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// allowIf is a document with one statement, Sid "S", that allows
// data:Select on everything under cond.
func allowIf(cond string) string {
	return doc(`{"Sid":"S","Effect":"Allow","Action":"data:Select","Resource":"*","Condition":` + cond + `}`)
}

// allowAll is a statement, Sid "All", that allows everything.
const allowAll = `{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}`

// MustParse parses a document or fails the test.
func MustParse(tb testing.TB, s string) *policy.Document {
	tb.Helper()
	d, err := policy.Parse([]byte(s))
	if err != nil {
		tb.Fatalf("Parse(%s) = %v", s, err)
	}
	return d
}

// MustParseAll parses documents or fails the test.
func MustParseAll(tb testing.TB, ss []string) []*policy.Document {
	tb.Helper()
	var docs []*policy.Document
	for _, s := range ss {
		docs = append(docs, MustParse(tb, s))
	}
	return docs
}

// MustTemplate returns a tier's template or fails the test.
func MustTemplate(tb testing.TB, tier string) *policy.Document {
	tb.Helper()
	d, err := policy.Template(tier)
	if err != nil {
		tb.Fatalf("Template(%q) = %v", tier, err)
	}
	return d
}
