package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// BenchmarkServed measures the server's own cost of the data API's three
// benchmark requests (bulkhead-bench's scenarios), in process and without
// the network: allocations, and the process's CPU per request (user and
// system time from getrusage, as cpu-ns/op), with eight requests at once
// as bulkhead-bench sends them. PostgreSQL runs in other processes, so
// its CPU is not counted; ns/op is wall time and includes it.
func BenchmarkServed(b *testing.B) {
	s := apitest.Start(b, apitest.Options{Config: func(c *httpapi.Config) {
		c.Limits = map[string]httpapi.Limit{"premium": {Rate: 1e9, Burst: 1e9, Concurrent: 64, StatementTimeout: 10 * time.Second}}
		c.TenantShare = -1 // as bulkhead-bench: the plan alone bounds it
	}})
	t := s.CreateTenant(b, "served", "pool")
	var id string
	for i := range 20 {
		res := s.Do(b, "POST", "/rest/v1/projects", t.MemberToken, map[string]string{"name": "p" + string(rune('0'+i%10))}, "Prefer", "return=representation")
		if res.Status != http.StatusCreated {
			b.Fatalf("seed: %s", res)
		}
		var rows []struct{ ID string }
		res.JSON(b, &rows)
		id = rows[0].ID
	}
	h := s.API.Handler()
	for _, tt := range []struct {
		name, method, target, body string
		status                     int
	}{
		{"get by id", "GET", "/rest/v1/projects?id=eq." + id, "", http.StatusOK},
		{"list with a filter", "GET", "/rest/v1/projects?select=id,name&name=like.p1*&limit=20", "", http.StatusOK},
		{"insert", "POST", "/rest/v1/projects", `{"name":"bench insert"}`, http.StatusCreated},
	} {
		do := func() *httptest.ResponseRecorder {
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			var r *http.Request
			if body != nil {
				r = httptest.NewRequest(tt.method, tt.target, body)
				r.Header.Set("Content-Type", "application/json")
			} else {
				r = httptest.NewRequest(tt.method, tt.target, nil)
			}
			r.Header.Set("Authorization", "Bearer "+t.MemberToken)
			r.RemoteAddr = "192.0.2.1:1234"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		do() // warms the caches
		b.Run(strings.ReplaceAll(tt.name, " ", "-"), func(b *testing.B) {
			// Eight clients on the bench's two CPUs, as bulkhead-bench runs.
			b.SetParallelism(4)
			before := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if w := do(); w.Code != tt.status {
						b.Errorf("status %d, want %d: %s", w.Code, tt.status, w.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
