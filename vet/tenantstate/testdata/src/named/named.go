// Package named has handlers found by name and by directive, and
// functions that are not handlers.
package named

import "context"

type Event struct{ TenantID string }

var (
	lastTenant string
	count      int
)

func Handler(ctx context.Context, ev Event) error {
	lastTenant = ev.TenantID // want `^package-level variable lastTenant is written on a path reachable from handler Handler;`
	return nil
}

type service struct{}

func (service) handler(ctx context.Context, ev Event) error {
	count++ // want `^package-level variable count is written on a path reachable from handler service.handler;`
	return nil
}

// consume handles queue messages; the directive makes it a handler.
//
//bulkhead:handler
func consume(ctx context.Context, ev Event) error {
	lastTenant = ev.TenantID // want `^package-level variable lastTenant is written on a path reachable from handler consume;`
	return nil
}

type worker struct{}

// Handler is named like a handler, but takes no context.Context first.
func (worker) Handler(ev Event) {
	lastTenant = ev.TenantID
}

// process has a handler's parameters but neither the name nor the
// directive.
func process(ctx context.Context, ev Event) error {
	lastTenant = ev.TenantID
	return nil
}
