// Package suppress suppresses reports with //bulkhead:ok, with and without
// a reason.
package suppress

import "context"

type Event struct{ TenantID string }

type Config struct{ Plan string }

var (
	cached   *Config
	hits     int
	lastSeen string
)

func defaultConfig() *Config { return &Config{Plan: "free"} }

func Handler(ctx context.Context, ev Event) error {
	cached = defaultConfig() //bulkhead:ok the same default for every tenant, never request data

	//bulkhead:ok counts invocations, and a count carries no tenant data
	hits++

	lastSeen = ev.TenantID /* want `^package-level variable lastSeen is written on a path reachable from handler Handler; .*; //bulkhead:ok without a reason does not suppress this: say why it is safe, as in //bulkhead:ok <reason>$` */ //bulkhead:ok

	//bulkhead:ok
	hits-- // want `^package-level variable hits is written on .*//bulkhead:ok without a reason does not suppress this`

	lastSeen = "" //bulkhead:okay // want `^package-level variable lastSeen is written on a path reachable from handler Handler; it outlives the invocation and can reach the next tenant \(keep it in the handler, or use a tenant-keyed cache\)$`

	n := 1   //bulkhead:ok this reason is for the line it is on
	hits = n // want `^package-level variable hits is written on a path reachable from handler Handler; it outlives the invocation and can reach the next tenant \(keep it in the handler, or use a tenant-keyed cache\)$`
	return nil
}
