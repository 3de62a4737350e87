package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/postgres"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "migrate [--database-url URL]", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL (a superuser, or a role that may create roles and take bulkhead_owner)")
	concurrency := fs.Int("concurrency", 4, "silos migrated at once")
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
	return migrateSilos(ctx, u, *concurrency, stdout, stderr)
}

// migrateSilos brings every silo to the current tenant-table version,
// with a progress bar on stderr. It is resumable: run it again after a
// failure or a crash.
func migrateSilos(ctx context.Context, dbURL string, concurrency int, stdout, stderr io.Writer) error {
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: dbURL})
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	rep, err := db.MigrateSilos(ctx, postgres.MigrateOptions{Concurrency: concurrency, Progress: func(done, failed, total int) {
		progressBar(stderr, done+failed, total, failed)
	}})
	if err != nil {
		return err
	}
	if rep.Total > 0 {
		fmt.Fprintln(stderr)
	}
	fmt.Fprintf(stdout, "silos: %d behind, %d migrated to version %d, %d failed (%s)\n",
		rep.Total, rep.Migrated, postgres.TenantSchemaVersion, len(rep.Failed), time.Since(start).Round(time.Millisecond))
	for slug, why := range rep.Failed {
		fmt.Fprintf(stdout, "  %s: %s\n", slug, why)
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("%d silos were left on their old version; fix them and run bulkhead migrate again", len(rep.Failed))
	}
	return nil
}

// progressBar draws one line of progress.
func progressBar(w io.Writer, done, total, failed int) {
	const width = 30
	n := width
	if total > 0 {
		n = done * width / total
	}
	fmt.Fprintf(w, "\r[%s%s] %d/%d silos", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
	if failed > 0 {
		fmt.Fprintf(w, " (%d failed)", failed)
	}
}
