// Package fields writes fields of package-level structs, directly and
// through pointers, next to writes to local copies and shadows.
package fields

import "context"

type Event struct{ TenantID string }

type Inner struct{ Name string }

type State struct {
	LastTenant string
	Count      int
	Inner      *Inner
}

var (
	state    State
	statePtr = &State{Inner: &Inner{}}
)

func Handler(ctx context.Context, ev Event) error {
	state.LastTenant = ev.TenantID // want `^package-level variable state is written on a path reachable from handler Handler`
	statePtr.Count++               // want `^package-level variable statePtr is written on`
	state.Inner.Name = ev.TenantID // want `^package-level variable state is written on`

	p := &state
	p.Count = 1 // want `^package-level variable state is written on`
	q := &statePtr.Count
	*q = 2 // want `^package-level variable statePtr is written on`

	local := state // a copy
	local.LastTenant = ev.TenantID
	local.Count++
	r := &local
	r.Count = 3
	// The copy shares the pointer Inner with state.
	local.Inner.Name = ev.TenantID // want `^package-level variable state is written on`

	{
		state := State{} // shadows the package-level variable
		state.LastTenant = ev.TenantID
		statePtr := &state
		statePtr.Count++
	}
	return nil
}
