// Command tenantcache caches in bulkhead's lambda.TenantCache, which is
// keyed by the tenant in ctx and is not reported, and finds handlers
// passed to lambda.Wrap.
package main

import (
	"context"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/bulkhead-dev/bulkhead/lambda"
)

type Event struct{ TenantID, SessionID, User string }

type Config struct{ Plan string }

// TenantCache has bulkhead's name but not its package: it is not exempt.
type TenantCache map[string]Config

var (
	configs   lambda.TenantCache[Config]
	sessions  = &lambda.TenantCache[string]{}
	lookalike = TenantCache{}
	plain     = map[string]Config{}
)

func setLimit(c *lambda.TenantCache[Config], n int) { c.MaxEntries = n }

func fetch(ev Event) Config { return Config{Plan: ev.TenantID} }

func HandleRequest(ctx context.Context, ev Event) error {
	cfg, ok := configs.Load(ctx, "config")
	if !ok {
		cfg = fetch(ev)
		configs.Store(ctx, "config", cfg)
	}
	configs.MaxEntries = 100
	sessions.Store(ctx, ev.SessionID, ev.User)
	sessions.MaxEntries = 10
	setLimit(&configs, 5)
	lookalike[ev.TenantID] = cfg // want `^package-level map lookalike is written on a path reachable from handler HandleRequest;`
	return nil
}

// process is a handler only because it is passed to lambda.Wrap.
func process(ctx context.Context, ev Event) error {
	plain[ev.TenantID] = fetch(ev) // want `^package-level map plain is written on a path reachable from handler process;`
	return nil
}

var wrapped = lambda.Wrap(process)

func main() {
	awslambda.Start(lambda.Wrap(HandleRequest))
}
