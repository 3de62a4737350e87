package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

// BenchmarkMetricsMiddleware measures what the metrics middleware adds to
// every request: the caller and route noted, then counted and timed.
func BenchmarkMetricsMiddleware(b *testing.B) {
	m := NewMetrics()
	p := tenant.Principal{Tenant: "acme", TenantID: "11111111-1111-4111-8111-111111111111"}
	h := m.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notePrincipal(r, p)
		if slot, ok := r.Context().Value(principalSlotKey{}).(*principalSlot); ok {
			slot.route = "GET /rest/v1/{table}"
		}
		w.WriteHeader(http.StatusOK)
	}))
	r := httptest.NewRequest("GET", "/rest/v1/projects", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
