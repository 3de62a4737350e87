package bulkhead

import (
	"context"
	"slices"
	"sync"
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
// longer parses denies everything.
func (db *DB) PolicyScope(ctx context.Context, p tenant.Principal, t *tenant.Tenant) ([]string, error) {
	if db.pg == nil {
		return nil, ErrNotMinter
	}
	docs, boundary, err := db.scopes.documents(ctx, db.pg, t)
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
			d := policy.EvaluateWithBoundary(policy.Request{Action: a.action, Resource: policy.DataResource(string(t.ID), table), Time: now,
				Context: map[string][]string{policy.KeyLeadingKeys: {string(t.ID)}}},
				policy.Principal{TenantID: t.ID, Tier: t.Plan, Role: p.Role}, boundary, docs)
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

// scopeCache holds parsed policies per tenant for a couple of seconds.
type scopeCache struct {
	mu sync.Mutex
	m  map[tenant.ID]cachedDocs
}

type cachedDocs struct {
	plan           string
	docs, boundary []*policy.Document
	at             time.Time
}

var denyAllDoc = func() *policy.Document {
	d, err := policy.Parse([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Sid": "StoredPolicyInvalid", "Effect": "Deny", "Action": "*", "Resource": "*"}]}`))
	if err != nil {
		panic(err)
	}
	return d
}()

func (c *scopeCache) documents(ctx context.Context, pg *postgres.DB, t *tenant.Tenant) (docs, boundary []*policy.Document, err error) {
	c.mu.Lock()
	if e, ok := c.m[t.ID]; ok && e.plan == t.Plan && time.Since(e.at) < 2*time.Second {
		c.mu.Unlock()
		return e.docs, e.boundary, nil
	}
	c.mu.Unlock()
	tmpl, err := policy.Template(t.Plan)
	if err != nil {
		return nil, nil, err
	}
	docs, boundary = []*policy.Document{tmpl}, []*policy.Document{tmpl}
	stored, err := pg.FindPolicies(ctx, t.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, sp := range stored {
		d, err := policy.Parse([]byte(sp.Document))
		if err != nil {
			d = denyAllDoc // fail closed
		}
		docs = append(docs, d)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 100000 {
		c.m = map[tenant.ID]cachedDocs{}
	}
	c.m[t.ID] = cachedDocs{plan: t.Plan, docs: docs, boundary: boundary, at: time.Now()}
	c.mu.Unlock()
	return docs, boundary, nil
}

func (c *scopeCache) forget(id tenant.ID) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
