package fields

import (
	"context"
	"net/http"
)

type Cmd struct {
	Args  []string
	Stdin any
}

type Runner struct {
	Path string
	Args []string
}

// ServeHTTP builds a new command from the handler's configuration; the
// command is this request's own.
func (h *Runner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cmd := &Cmd{Args: append([]string{h.Path}, h.Args...)}
	cmd.Stdin = r.Body
	args := append(h.Args[:0:0], h.Args...)
	args[0] = r.URL.Path
	shared := append(h.Args, r.URL.Path) // may share h.Args's backing array
	shared[0] = ""                       // want `^receiver h of handler \(\*Runner\).ServeHTTP is written;`
}

type holder struct {
	m     map[string]string
	count int
}

var (
	globalMap = map[string]string{}
	others    []*State
)

//bulkhead:handler
func Fresh(ctx context.Context, ev Event) error {
	p := &holder{m: globalMap}
	p.count = 1                // the new holder
	p.m[ev.TenantID] = "seen"  // want `^package-level map globalMap is written on a path reachable from handler Fresh`
	ptrs := []*State{statePtr} // a new slice of shared pointers
	ptrs[0] = nil
	ptrs = append(ptrs, others...)
	ptrs[1].Count++ // want `^package-level variable statePtr is written on a path reachable from handler Fresh`
	return nil
}
