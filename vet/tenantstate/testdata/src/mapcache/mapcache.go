// Package mapcache caches in package-level maps, none of them keyed by a
// verified tenant.
package mapcache

import (
	"context"
	"sync"
)

type Event struct{ TenantID, RequestID string }

type Response struct{ Body string }

// TenantCache has bulkhead's name but not its package: it is not exempt.
type TenantCache map[string]Response

var (
	responses = map[string]Response{}
	byTenant  = map[string]Response{}
	configs   sync.Map
	registry  = struct{ byID map[string]Response }{byID: map[string]Response{}}
	lookalike = TenantCache{}
	settings  struct{ tags map[string]string }
)

func Handler(ctx context.Context, ev Event) (Response, error) {
	if r, ok := responses[ev.RequestID]; ok { // a read
		return r, nil
	}
	resp := Response{Body: ev.TenantID}
	responses[ev.RequestID] = resp     // want `^package-level map responses is written on a path reachable from handler Handler; it is not a tenant-keyed cache, and its entries outlive the invocation and can reach the next tenant \(keep it in the handler, or use lambda.TenantCache\)$`
	byTenant[ev.TenantID] = resp       // want `^package-level map byTenant is written on a path reachable from handler Handler`
	configs.Store(ev.RequestID, resp)  // want `^package-level map configs is written by sync.Map.Store on a path reachable from handler Handler`
	registry.byID[ev.RequestID] = resp // want `^package-level map registry.byID is written on`
	delete(responses, "stale")         // want `^package-level map responses is written by delete on`
	lookalike[ev.RequestID] = resp     // want `^package-level map lookalike is written on`

	m := responses
	m[ev.RequestID] = resp // want `^package-level map responses is written on`

	s := settings          // a copy of the struct shares its map
	s.tags["last"] = "set" // want `^package-level variable settings is written on`

	local := map[string]Response{}
	local[ev.RequestID] = resp
	return resp, nil
}
