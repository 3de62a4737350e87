package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func openStore(ctx context.Context, flagURL string) (*postgres.DB, error) {
	u, err := databaseURL(flagURL)
	if err != nil {
		return nil, err
	}
	return postgres.Open(ctx, postgres.Config{AdminURL: u})
}

func runTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "tenants create ID [--name NAME] [--tier pool|silo] | list [--json] | show ID | suspend ID | resume ID | delete ID --yes"
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := newFlags("tenants "+sub, synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	name := fs.String("name", "", "display name (create)")
	tier := fs.String("tier", "pool", "pool or silo (create)")
	asJSON := fs.Bool("json", false, "print JSON")
	yes := fs.Bool("yes", false, "confirm deletion (delete)")
	id, rest := splitPositional(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		if id == "" {
			return usageError{"usage: bulkhead tenants create ID [--name NAME] [--tier pool|silo]"}
		}
		t, created, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(id), Name: *name, Tier: tenant.Tier(*tier)})
		if err != nil {
			return err
		}
		verb := "created"
		if !created {
			verb = "exists"
		}
		return printTenant(stdout, t, *asJSON, verb)
	case "list":
		ts, err := db.FindTenants(ctx, postgres.TenantFilter{})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(ts)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIER\tSTATUS\tUUID\tNAME")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Slug, t.Tier, t.Status, t.ID, t.Name)
		}
		return tw.Flush()
	case "show":
		t, err := db.FindTenantBySlug(ctx, tenant.Slug(id), true)
		if err != nil {
			return err
		}
		return printTenant(stdout, t, *asJSON, "")
	case "suspend", "resume":
		t, err := db.FindTenantBySlug(ctx, tenant.Slug(id), false)
		if err != nil {
			return err
		}
		st := tenant.Suspended
		if sub == "resume" {
			st = tenant.Active
		}
		if err := db.SetTenantStatus(ctx, t.ID, st); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is %s\n", t.Slug, st)
		return nil
	case "delete":
		if id == "" || !*yes {
			return usageError{"usage: bulkhead tenants delete ID --yes (deletes all of the tenant's data)"}
		}
		t, err := db.FindTenantBySlug(ctx, tenant.Slug(id), false)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "offboarding %s (%s): deleting its rows, schema and users\n", t.Slug, t.ID)
		rec, err := db.OffboardTenant(ctx, t.ID)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rec)
	}
	return usageError{fmt.Sprintf("unknown tenants subcommand %q; usage: bulkhead %s", sub, synopsis)}
}

func printTenant(w io.Writer, t *tenant.Tenant, asJSON bool, verb string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(t)
	}
	if verb != "" {
		fmt.Fprintf(w, "%s: ", verb)
	}
	_, err := fmt.Fprintf(w, "%s tier=%s status=%s uuid=%s placement=%s\n", t.Slug, t.Tier, t.Status, t.ID, t.Placement)
	return err
}

// splitPositional takes a leading positional argument off args, so that
// flags may follow it ("create acme --tier silo").
func splitPositional(args []string) (string, []string) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}
