package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// BenchmarkRefused measures what the server spends, in process and without
// the network, on a request it refuses: a basic-plan tenant's data request
// past its rate (429 rate_limited, as a flooding tenant gets), and the same
// request served, for scale. A flood's cost to the other tenants is this
// times its rate.
func BenchmarkRefused(b *testing.B) {
	s := apitest.Start(b, apitest.Options{Config: func(c *httpapi.Config) {
		c.RefusalPause = -1 // answered at once, not held
		c.Limits = map[string]httpapi.Limit{"basic": {Rate: 0.001, Burst: 1, Concurrent: 4, StatementTimeout: 5e9},
			"premium": {Rate: 1e9, Burst: 1e9, Concurrent: 64, StatementTimeout: 5e9}}
	}})
	noisy := s.CreateTenantOnPlan(b, "noisy", "pool", "basic")
	quiet := s.CreateTenant(b, "quiet", "pool")
	h := s.API.Handler()
	for _, tt := range []struct {
		name   string
		token  string
		status int
	}{{"rate-limited", noisy.MemberToken, http.StatusTooManyRequests}, {"served", quiet.MemberToken, http.StatusOK}} {
		do := func() *httptest.ResponseRecorder {
			r := httptest.NewRequest("GET", "/rest/v1/projects?limit=1", nil)
			r.Header.Set("Authorization", "Bearer "+tt.token)
			r.RemoteAddr = "192.0.2.1:1234"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		do() // the first takes the plan's burst, and warms the caches
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if w := do(); w.Code != tt.status {
					b.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
				}
			}
		})
	}
}
