package bulkheadtest

import (
	"strings"
	"testing"
)

// TestRenderWalksValues checks that render finds text that %+v and JSON
// do not show as text, and that it ends on cyclic values.
func TestRenderWalksValues(t *testing.T) {
	type node struct {
		next  *node
		items []any
		label []byte
	}
	n := &node{label: []byte("canary-in-a-cycle")}
	n.next = n
	n.items = []any{n, map[any]any{[2]byte{'o', 'k'}: &[]string{"canary-in-a-map"}}}
	for _, tt := range []struct {
		v    any
		want []string
	}{
		{n, []string{"canary-in-a-cycle", "canary-in-a-map", "ok"}},
		{struct{ b [3]byte }{[3]byte{'a', 'b', 'c'}}, []string{"abc"}},
	} {
		got := render(tt.v)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("render(%T) does not hold %q: %.300q", tt.v, w, got)
			}
		}
	}
}
