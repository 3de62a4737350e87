// Package httphandlers writes shared state from net/http handlers:
// functions, ServeHTTP methods and middleware closures.
package httphandlers

import (
	"net/http"
	"sync"
)

var (
	lastPath string
	hits     = map[string]int{}
)

func serveProfile(w http.ResponseWriter, r *http.Request) {
	lastPath = r.URL.Path // want `^package-level variable lastPath is written on a path reachable from handler serveProfile`
}

type counter struct {
	mu     sync.Mutex
	byPath map[string]int
	last   string
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byPath[r.URL.Path]++ // want `^receiver c of handler \(\*counter\).ServeHTTP is written; the handler value outlives the invocation and can reach the next tenant \(keep per-invocation state in locals, or use a tenant-keyed cache\)$`
	c.last = r.URL.Path    // want `^receiver c of handler \(\*counter\).ServeHTTP is written`
}

type plain struct{ n int }

// ServeHTTP has a value receiver: p is a copy made for this request.
func (p plain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.n++
}

func withCount(next http.Handler) http.Handler {
	served := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++ // want `^variable served, captured by handler withCount.func1, is written; it outlives the invocation and can reach the next tenant \(declare it inside the handler, or use a tenant-keyed cache\)$`
		next.ServeHTTP(w, r)
	})
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/profile", serveProfile)
	mux.Handle("/count", &counter{byPath: map[string]int{}})
	mux.HandleFunc("/hits", func(w http.ResponseWriter, r *http.Request) {
		hits[r.URL.Path]++ // want `^package-level map hits is written on a path reachable from handler routes.func1`
		var status int
		record := func() { status = http.StatusOK } // the handler's own local
		record()
		w.WriteHeader(status)
	})
	return withCount(mux)
}
