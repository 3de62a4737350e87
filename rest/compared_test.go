package rest_test

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/rest"
)

// TestCompared: every spelling the parser accepts names its values, for
// each column asked about, and a query Build would refuse returns not ok.
func TestCompared(t *testing.T) {
	for _, tt := range []struct {
		name, query string
		want        map[string][]string
		ok          bool
	}{
		{"eq", "tenant_id=eq." + tenantB, map[string][]string{"tenant_id": {tenantB}}, true},
		{"quoted name", "%22tenant_id%22=eq." + tenantB, map[string][]string{"tenant_id": {tenantB}}, true},
		{"in", "id=in.(" + rowID + ",%22" + tenantA + "%22)", map[string][]string{"id": {rowID, tenantA}}, true},
		{"or tree, negated", "or=(tenant_id.not.eq." + tenantB + ",and(id.eq." + rowID + ",name.eq.x))",
			map[string][]string{"tenant_id": {tenantB}, "id": {rowID}}, true},
		{"eq(any)", "tenant_id=eq(any).%7B" + tenantA + "," + tenantB + "%7D", map[string][]string{"tenant_id": {tenantA, tenantB}}, true},
		{"other columns only", "name=eq.x", map[string][]string{}, true},
		{"unknown column", "nope=eq.x", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := rest.Compared(projects, "GET", q, "tenant_id", "id")
			if ok != tt.ok || (ok && !cmp.Equal(got, tt.want)) {
				t.Fatalf("Compared(%s) = %v %v, want %v %v", tt.query, got, ok, tt.want, tt.ok)
			}
		})
	}
}
