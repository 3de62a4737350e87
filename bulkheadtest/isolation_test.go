package bulkheadtest_test

import (
	"testing"

	"github.com/bulkhead-dev/bulkhead/bulkheadtest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// seed gives a tenant a project and a task under it, with canary text.
func seed(t *testing.T, tn *bulkheadtest.Tenant) {
	t.Helper()
	p := tn.Insert(t, "projects", map[string]any{"name": "canary-project-" + string(tn.Slug), "description": "secret of " + string(tn.Slug)})
	tn.Insert(t, "tasks", map[string]any{"title": "canary-task-" + string(tn.Slug), "project_id": p})
}

// TestAssertIsolated runs the suite for pool↔pool, pool↔silo and
// silo↔silo, both ways, against bulkhead as it ships: no leaks.
func TestAssertIsolated(t *testing.T) {
	t.Parallel()
	env := bulkheadtest.Start(t)
	tenants := map[string]*bulkheadtest.Tenant{}
	for _, x := range []struct {
		slug string
		tier tenant.Tier
	}{{"pool-a", bulkheadtest.Pool}, {"pool-b", bulkheadtest.Pool}, {"silo-a", bulkheadtest.Silo}, {"silo-b", bulkheadtest.Silo}} {
		tenants[x.slug] = env.Tenant(t, x.slug, x.tier)
		seed(t, tenants[x.slug])
	}
	for _, pair := range [][2]string{
		{"pool-a", "pool-b"}, {"pool-b", "pool-a"}, {"pool-a", "silo-b"}, {"silo-b", "pool-a"},
		{"silo-a", "silo-b"}, {"silo-b", "silo-a"},
	} {
		t.Run(pair[0]+"->"+pair[1], func(t *testing.T) {
			env.AssertIsolated(t, tenants[pair[0]], tenants[pair[1]])
		})
	}
}
