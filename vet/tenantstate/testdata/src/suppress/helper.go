package suppress

import (
	"net/http"
	"sync"
)

// cache is keyed by a verified tenant ID; its one write is suppressed
// there, which covers every caller.
type cache struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *cache) put(k, v string) {
	c.mu.Lock()
	c.m[k] = v //bulkhead:ok keyed by the verified tenant ID, never by request input
	c.mu.Unlock()
}

func (c *cache) drop(k string) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

var plans = &cache{m: map[string]string{}}

type server struct{ plans cache }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenantID := r.Header.Get("X-Verified-Tenant")
	s.plans.put(tenantID, "pro")
	plans.put(tenantID, "pro")
	plans.drop(tenantID) // want `^package-level variable plans is written by \(\*cache\).drop \(through its receiver\) on a path reachable from handler \(\*server\).ServeHTTP;`
}
