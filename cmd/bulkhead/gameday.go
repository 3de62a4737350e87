package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/verify/gameday"
)

// runGameday plays a compromised function: connected as an app login role
// and holding a valid context for tenant A, it attacks tenant B's canary
// rows, one named scenario at a time. Exit 1 when a scenario leaked (or
// proved nothing).
func runGameday(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "gameday [--database-url URL] [--keep] [--format text|json] [-v]\n" +
		"       bulkhead gameday --app-database-url URL --table SCHEMA.TABLE --tenant-a A --tenant-b B --context SQL\n" +
		"            [--tenant-column tenant_id] [--context-b SQL] [--admin-database-url URL]\n" +
		"            [--canary-column COL [--canary-value V]] [--canaries 20] [--membership-table SCHEMA.TABLE]\n" +
		"            [--keep] [--format text|json] [-v]"
	fs := newFlags("gameday", synopsis, stderr)
	dbURL := fs.String("database-url", "", "bulkhead's own database: the control plane's URL (or BULKHEAD_DATABASE_URL); gameday sets up canary tenants and a function, and removes them")
	appURL := fs.String("app-database-url", "", "a user's database: the app login role to attack as, never a superuser (or BULKHEAD_APP_DATABASE_URL)")
	adminURL := fs.String("admin-database-url", "", "a user's database: a superuser or BYPASSRLS URL to plant and remove B's canary rows and run controls (or BULKHEAD_ADMIN_DATABASE_URL)")
	table := fs.String("table", "", "a user's database: the attacked table, schema-qualified")
	tcol := fs.String("tenant-column", "tenant_id", "a user's database: the table's tenant column")
	tenantA := fs.String("tenant-a", "", "a user's database: the attacker's tenant value, as text")
	tenantB := fs.String("tenant-b", "", "a user's database: the victim's tenant value, as text")
	ctxA := fs.String("context", "", "a user's database: SQL that sets tenant A's context in a transaction, as the app runs it; @FILE reads it from a file")
	ctxB := fs.String("context-b", "", "a user's database: SQL that sets tenant B's context, for the controls; @FILE reads it from a file")
	canaryCol := fs.String("canary-column", "", "a user's database: a text column that holds the canary marker (default: the first text column)")
	canaryVal := fs.String("canary-value", "", "a user's database: find B's existing canary rows by this value of --canary-column instead of planting any")
	canaries := fs.Int("canaries", 20, "canary rows planted for each victim tenant")
	members := fs.String("membership-table", "", "a user's database: a membership table with the same tenant column, for A30 (A must have a row)")
	keep := fs.Bool("keep", false, "leave the canary rows (and, for bulkhead's database, the canary tenants and the function) in place")
	format := fs.String("format", "text", "output: text or json")
	verbose := fs.Bool("v", false, "text output: print the evidence of every scenario, not only of leaked, contained and inconclusive ones")
	timeout := fs.Duration("statement-timeout", 10*time.Second, "statement_timeout of each attack statement")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"usage: bulkhead " + synopsis}
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Sprintf("--format must be text or json, not %q", *format)}
	}
	if *canaries < 1 || *canaries > 10000 {
		return usageError{"--canaries must be between 1 and 10000"}
	}
	if *timeout < 100*time.Millisecond {
		return usageError{"--statement-timeout must be at least 100ms"}
	}
	if *appURL == "" {
		*appURL = os.Getenv("BULKHEAD_APP_DATABASE_URL")
	}
	if *adminURL == "" {
		*adminURL = os.Getenv("BULKHEAD_ADMIN_DATABASE_URL")
	}
	userMode := *appURL != "" || *table != ""

	var rep *gameday.Report
	var err error
	if !userMode {
		for _, f := range []struct{ name, v string }{{"tenant-a", *tenantA}, {"tenant-b", *tenantB}, {"context", *ctxA},
			{"context-b", *ctxB}, {"canary-column", *canaryCol}, {"canary-value", *canaryVal}, {"membership-table", *members}} {
			if f.v != "" {
				return usageError{"--" + f.name + " is for a user's database: give --app-database-url and --table too"}
			}
		}
		u, err := databaseURL(*dbURL)
		if err != nil {
			return err
		}
		rep, err = gameday.RunOwn(ctx, gameday.OwnConfig{DatabaseURL: u, Keep: *keep, Canaries: *canaries,
			StatementTimeout: *timeout, Progress: stderr})
		if err != nil {
			return err
		}
	} else {
		if *dbURL != "" {
			return usageError{"--database-url is for bulkhead's own database; for a user's database give --app-database-url (and --admin-database-url)"}
		}
		var missing []string
		for _, f := range []struct{ name, v string }{{"app-database-url", *appURL}, {"table", *table}, {"tenant-a", *tenantA},
			{"tenant-b", *tenantB}, {"context", *ctxA}} {
			if f.v == "" {
				missing = append(missing, "--"+f.name)
			}
		}
		if len(missing) > 0 {
			return usageError{"a user's database needs " + strings.Join(missing, ", ") + "; usage: bulkhead " + synopsis}
		}
		if *tenantA == *tenantB {
			return usageError{"--tenant-a and --tenant-b must differ"}
		}
		if *canaryVal != "" && *canaryCol == "" {
			return usageError{"--canary-value needs --canary-column"}
		}
		a, err := sqlArg(*ctxA)
		if err != nil {
			return err
		}
		b, err := sqlArg(*ctxB)
		if err != nil {
			return err
		}
		rep, err = gameday.Run(ctx, gameday.Config{AppURL: *appURL, AdminURL: *adminURL, Table: *table, TenantColumn: *tcol,
			TenantA: *tenantA, TenantB: *tenantB, ContextA: a, ContextB: b, CanaryColumn: *canaryCol, CanaryValue: *canaryVal,
			Canaries: *canaries, MembershipTable: *members, Keep: *keep, StatementTimeout: *timeout, Progress: stderr})
		if err != nil {
			return err
		}
	}
	if *format == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, *verbose)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		return findingsError{}
	}
	return nil
}

// sqlArg returns a flag's SQL, read from a file when it starts with @
// (contexts may hold secrets, and flags show in ps).
func sqlArg(v string) (string, error) {
	if !strings.HasPrefix(v, "@") {
		return v, nil
	}
	b, err := os.ReadFile(v[1:])
	if err != nil {
		return "", usageError{fmt.Sprintf("read %s: %v", v[1:], err)}
	}
	return strings.TrimSpace(string(b)), nil
}
