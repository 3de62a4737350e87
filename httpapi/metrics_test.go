package httpapi

import (
	"fmt"
	"testing"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestTenantLabelsAreBounded(t *testing.T) {
	m := NewMetrics()
	seen := map[string]bool{}
	for i := 0; i < MaxTenantLabels*3; i++ {
		seen[m.tenantLabel(tenant.Slug(fmt.Sprintf("t%d", i)))] = true
	}
	if len(seen) != MaxTenantLabels+1 || !seen["other"] || !seen["t0"] || seen[fmt.Sprintf("t%d", MaxTenantLabels)] {
		t.Fatalf("%d distinct labels for %d tenants, want %d plus other", len(seen), MaxTenantLabels*3, MaxTenantLabels)
	}
	if m.tenantLabel("t1") != "t1" {
		t.Fatal("a tenant seen early lost its label")
	}
}
