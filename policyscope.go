package bulkhead

import (
	"context"
	"slices"
	"time"

	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// PolicyScope returns the commands (select, insert, update, delete) that
// t's policies, bounded by its plan's template, allow p on every tenant
// table. Mint uses it when no scope is given, so that every context a
// minter makes (for the data API, for a function through
// POST /v1/auth/context, for a Lambda authorizer, for DB.Tx) lets the
// database refuse what the policies refuse. A stored policy that no
// longer parses denies everything. The address of the statements such a
// context will carry is unknown when it is minted: a Deny conditioned on
// aws:SourceIp is taken to apply, and an Allow conditioned on it not to.
func (db *DB) PolicyScope(ctx context.Context, p tenant.Principal, t *tenant.Tenant) ([]string, error) {
	if db.pg == nil {
		return nil, ErrNotMinter
	}
	tp, err := db.Policies(ctx, t)
	if err != nil {
		return nil, err
	}
	now := db.now()
	var scope []string
	for i, table := range postgres.TenantTableNames {
		var allowed []string
		for _, a := range []struct{ cmd, action string }{
			{"select", policy.DataSelect}, {"insert", policy.DataInsert}, {"update", policy.DataUpdate}, {"delete", policy.DataDelete},
		} {
			// Isolation: the statements this scope will allow come from
			// wherever the function runs, not from an address the policy
			// can test now; an address condition is decided for the
			// worst case.
			d := policy.EvaluateWithBoundary(policy.Request{Action: a.action, Resource: policy.DataResource(string(t.ID), table), Time: now,
				SourceIPUnknown: true, Context: map[string][]string{policy.KeyLeadingKeys: {string(t.ID)}}},
				policy.Principal{TenantID: t.ID, Tier: tp.Plan, Role: p.Role}, tp.Boundary, tp.Policies)
			if d.Allowed() {
				allowed = append(allowed, a.cmd)
			}
		}
		if i == 0 {
			scope = allowed
		} else {
			scope = slices.DeleteFunc(scope, func(c string) bool { return !slices.Contains(allowed, c) })
		}
	}
	if scope == nil {
		scope = []string{}
	}
	return scope, nil
}

// TenantPolicies is what decides a tenant principal's requests: its plan's
// template, which bounds them, and its policies, the template first and
// then the documents the tenant's admins stored.
type TenantPolicies struct {
	Plan     string
	Boundary []*policy.Document
	Policies []*policy.Document
}

// policiesAge bounds how long a change to a tenant's policies may take to
// reach a server that did not make it (the one that did drops them at once).
const policiesAge = 2 * time.Second

type policiesKey struct {
	id   tenant.ID
	plan string // a change of plan changes the template
}

// denyAllDoc stands in for a stored policy that no longer parses: its Deny
// statements may matter, so it denies everything.
var denyAllDoc = func() *policy.Document {
	d, err := policy.Parse([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Sid": "StoredPolicyInvalid", "Effect": "Deny", "Action": "*", "Resource": "*"}]}`))
	if err != nil {
		panic(err)
	}
	return d
}()

// Policies returns t's policies, parsed, from the cache that Mint's scope
// and the data API's decisions share: at most two seconds old, reloaded
// ahead of expiry while the tenant is busy, and dropped at once by
// ForgetPolicies. A stored document that no longer parses stands as a
// deny-all, and is logged.
func (db *DB) Policies(ctx context.Context, t *tenant.Tenant) (*TenantPolicies, error) {
	if db.pg == nil {
		return nil, ErrNotMinter
	}
	return db.policies.Get(ctx, policiesKey{t.ID, t.Plan})
}

func (db *DB) loadPolicies(ctx context.Context, k policiesKey) (*TenantPolicies, error) {
	tmpl, err := policy.Template(k.plan)
	if err != nil {
		return nil, err
	}
	stored, err := db.pg.FindPolicies(ctx, k.id)
	if err != nil {
		return nil, err
	}
	tp := &TenantPolicies{Plan: k.plan, Boundary: []*policy.Document{tmpl}, Policies: []*policy.Document{tmpl}}
	now := db.now()
	for _, sp := range stored {
		// The stored documents are read again every policiesAge while
		// the tenant is busy, and seldom change: a document is parsed
		// once and reused while its exact text, under the same tenant
		// and name, comes back (a 10 KiB document takes about a
		// millisecond to parse). The key holds the tenant, so no parsed
		// document is shared between tenants.
		key := string(k.id) + "\x00" + sp.Name + "\x00" + sp.Document
		d, ok := db.parsed.Get(key, now)
		if !ok {
			var err error
			if d, err = policy.Parse([]byte(sp.Document)); err != nil {
				db.log.ErrorContext(ctx, "stored policy does not parse; denying all for the tenant", "tenant_id", string(k.id), "policy", sp.Name, "err", err)
				d = denyAllDoc // fail closed; parsed again at the next load
			} else {
				db.parsed.Put(key, d, now.Add(parsedPoliciesAge), now)
			}
		}
		tp.Policies = append(tp.Policies, d)
	}
	return tp, nil
}

// parsedPoliciesMax bounds the parsed documents kept across loads, and
// parsedPoliciesAge how long one is kept after it was parsed.
const (
	parsedPoliciesMax = 10000
	parsedPoliciesAge = 10 * time.Minute
)

// ForgetPolicies drops t's cached policies, after they changed.
func (db *DB) ForgetPolicies(id tenant.ID) {
	db.policies.ForgetFunc(func(k policiesKey, _ *TenantPolicies) bool { return k.id == id })
}
