package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "migrate [--database-url URL] [--concurrency N] [--status]", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL (a superuser, or a role that may create roles and take bulkhead_owner)")
	concurrency := fs.Int("concurrency", 4, "silos migrated at once (1 to 64)")
	status := fs.Bool("status", false, "say which migrations the database lacks and which silos are behind, and change nothing")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 64 {
		return usageError{"--concurrency must be 1 to 64"}
	}
	u, err := databaseURL(*dbURL)
	if err != nil {
		return err
	}
	if *status {
		st, err := postgres.Status(ctx, u)
		if err != nil {
			return err
		}
		printStatus(stdout, st)
		return nil
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
	if rep.NativeReplaced {
		fmt.Fprintln(stdout, "warning:", postgres.NativeReplacedWarning)
	}
	for _, t := range rep.OverBound {
		fmt.Fprintf(stdout, "warning: tenant %s has %d policy documents, over the bound of %d that new ones are held to; each of its requests evaluates them all (remove some with bulkhead policy delete)\n",
			t.Slug, t.Documents, policy.MaxDocuments)
	}
	return migrateSilos(ctx, u, *concurrency, stdout, stderr)
}

// printStatus says what `bulkhead migrate` would do: the database's
// pending migrations, then the silos by tenant-table version and each one
// that is behind.
func printStatus(w io.Writer, st *postgres.MigrationStatus) {
	switch {
	case !st.SetUp:
		fmt.Fprintf(w, "database: not set up; bulkhead migrate would apply migrations %v\n", st.Pending)
	case len(st.Unknown) > 0:
		fmt.Fprintf(w, "database: has migrations %v that this build does not know: it was migrated by a newer bulkhead; upgrade bulkhead before you migrate or serve\n", st.Unknown)
	case len(st.Pending) > 0:
		fmt.Fprintf(w, "database: %d migrations applied, %d pending: %v\n", len(st.Applied), len(st.Pending), st.Pending)
	default:
		fmt.Fprintf(w, "database: up to date (%d migrations applied, the last %d)\n", len(st.Applied), st.Applied[len(st.Applied)-1])
	}
	var total int
	versions := make([]int, 0, len(st.Silos))
	for v, n := range st.Silos {
		versions = append(versions, v)
		total += n
	}
	slices.Sort(versions)
	parts := make([]string, 0, len(versions))
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		p := fmt.Sprintf("%d on version %d", st.Silos[v], v)
		if v == st.TenantVersion {
			p += " (current)"
		}
		parts = append(parts, p)
	}
	if total == 0 {
		fmt.Fprintf(w, "silos: none (the current tenant-table version is %d)\n", st.TenantVersion)
	} else {
		fmt.Fprintf(w, "silos: %d, %d behind: %s\n", total, len(st.Behind), strings.Join(parts, ", "))
	}
	for _, s := range st.Behind {
		fmt.Fprintf(w, "  %s: version %d of %d\n", s.Slug, s.Version, st.TenantVersion)
	}
	if !st.Current() && len(st.Unknown) == 0 {
		fmt.Fprintln(w, "bulkhead migrate brings them up to date")
	}
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
