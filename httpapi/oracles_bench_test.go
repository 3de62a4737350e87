package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// BenchmarkOtherTenantsIDs is the timing side of
// TestOtherTenantsIDsLookLikeNone: tenant A asks for tenant B's ids and
// for ids that exist nowhere, alternately, in the same run, and the
// benchmark reports the ratio of the median times (metric "B/none"; 1.00
// means A cannot tell them apart by time). B is in the pool and in a silo,
// and holds many rows, so that a plan that found B's row and then dropped
// it under row security would take measurably longer than one that found
// nothing. The cross-tenant probe check that a miss starts runs after the
// answer (and records an event when it finds B's id), so its cost falls on
// whichever request follows; the two kinds take turns going first.
//
// It also fails, like the test, if the two answers' statuses differ.
//
//	go test ./httpapi -run '^$' -bench OtherTenantsIDs -benchtime 2000x
func BenchmarkOtherTenantsIDs(b *testing.B) {
	s := apitest.Start(b, apitest.Options{Config: func(c *httpapi.Config) {
		for plan, l := range c.Limits {
			l.Rate, l.Burst = 1e9, 1e9
			c.Limits[plan] = l
		}
	}})
	a := seed(b, s, "bench-a", "pool")
	bp := seed(b, s, "bench-pool-b", "pool")
	bs := seed(b, s, "bench-silo-b", "silo")
	// B's tables hold many rows, A's few.
	var many []map[string]string
	for i := range 2000 {
		many = append(many, map[string]string{"name": "b-row-" + strings.Repeat("x", i%50)})
	}
	for _, t := range []*apitest.Tenant{bp.Tenant, bs.Tenant} {
		for i := 0; i < len(many); i += 1000 {
			if r := s.Do(b, "POST", "/rest/v1/projects", t.AdminToken, many[i:i+1000]); r.Status != http.StatusCreated {
				b.Fatalf("seed B's rows: %s", r)
			}
		}
	}
	const none = "11111111-2222-4333-8444-555555555555"
	h := s.API.Handler()
	do := func(method, path, body string, hdr []string) (int, time.Duration) {
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		var r *http.Request
		if rd != nil {
			r = httptest.NewRequest(method, path, rd)
			r.Header.Set("Content-Type", "application/json")
		} else {
			r = httptest.NewRequest(method, path, nil)
		}
		r.Header.Set("Authorization", "Bearer "+a.AdminToken)
		r.RemoteAddr = "192.0.2.1:1234"
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		return w.Code, time.Since(start)
	}
	shapes := []struct {
		name, method, path, body string
		hdr                      []string
	}{
		{"get", "GET", "/rest/v1/projects?id=eq.X", "", nil},
		{"object", "GET", "/rest/v1/projects?id=eq.X", "", []string{"Accept", "application/vnd.pgrst.object+json"}},
		{"count", "GET", "/rest/v1/projects?id=in.(X)", "", []string{"Prefer", "count=exact"}},
		{"patch", "PATCH", "/rest/v1/projects?id=eq.X", `{"name":"p"}`, []string{"Prefer", "tx=rollback"}},
		{"delete", "DELETE", "/rest/v1/projects?id=eq.X", "", []string{"Prefer", "tx=rollback"}},
		{"insert-same-id", "POST", "/rest/v1/projects", `{"id":"X","name":"n"}`, []string{"Prefer", "tx=rollback"}},
	}
	for _, owner := range []struct {
		name string
		c    *canary
	}{{"pool", bp}, {"silo", bs}} {
		for _, sh := range shapes {
			other := strings.NewReplacer("X", owner.c.ProjectID)
			absent := strings.NewReplacer("X", none)
			b.Run(owner.name+"/"+sh.name, func(b *testing.B) {
				var tb, tn []time.Duration
				var cb, cn int
				var db, dn time.Duration
				for i := 0; b.Loop(); i++ {
					// Each goes first every other time, so that neither
					// always follows the other's background work.
					if i%2 == 0 {
						cb, db = do(sh.method, other.Replace(sh.path), other.Replace(sh.body), sh.hdr)
						cn, dn = do(sh.method, absent.Replace(sh.path), absent.Replace(sh.body), sh.hdr)
					} else {
						cn, dn = do(sh.method, absent.Replace(sh.path), absent.Replace(sh.body), sh.hdr)
						cb, db = do(sh.method, other.Replace(sh.path), other.Replace(sh.body), sh.hdr)
					}
					if cb != cn {
						b.Fatalf("%s: status %d for B's id, %d for an id that exists nowhere", sh.name, cb, cn)
					}
					tb, tn = append(tb, db), append(tn, dn)
				}
				b.ReportMetric(float64(median(tb))/float64(median(tn)), "B/none")
			})
		}
	}
}

// median returns the middle of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}
