// Command bulkhead-bench measures what isolation costs: the same queries
// on the same PostgreSQL and the same data, once through a minimal
// net/http + pgx server that filters by tenant_id and checks nothing, and
// once through bulkhead's full path (JWT verification, policy decision,
// signed context, forced row security, audit). It starts its own
// PostgreSQL and both servers, drives them from a separate load process
// (vegeta, on loopback, bounded in time), and prints a table of
// throughput, p50 and p99 and their ratios. With pgbench it also compares
// the signed-context RLS query with a plain filter at the SQL level.
//
// Usage:
//
//	bulkhead-bench [--duration 10s] [--workers 8] [--tenants 10] [--rows 200]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bulkhead-dev/bulkhead/identity/hashproc"
)

func main() {
	hashproc.MainIf(os.Args, hashWorkerCommand)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "attack":
		err = attack(ctx, os.Stdin, os.Stdout)
	case len(os.Args) > 1 && os.Args[1] == "checks":
		err = checks(ctx, os.Args[2:], os.Stdout)
	default:
		err = run(ctx, os.Args[1:])
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bulkhead-bench:", err)
		os.Exit(1)
	}
}
