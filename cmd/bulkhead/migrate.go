package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/postgres"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "migrate [--database-url URL]", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL (a superuser, or a role that may create roles and take bulkhead_owner)")
	if err := parse(fs, args); err != nil {
		return err
	}
	u, err := databaseURL(*dbURL)
	if err != nil {
		return err
	}
	log := newLogger(stderr, false)
	fmt.Fprintln(stderr, "migrating: roles, schemas, hardening, migrations, keys")
	rep, err := postgres.Setup(ctx, u, log)
	if err != nil {
		return err
	}
	if len(rep.Applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	} else {
		fmt.Fprintf(stdout, "applied migrations %v\n", rep.Applied)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	return nil
}
