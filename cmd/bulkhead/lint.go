package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/verify/lint"
)

// runLint inspects any PostgreSQL database through its catalogs, read-only,
// and reports isolation findings. Exit 1 when a finding at --fail-on or
// above exists.
func runLint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "lint [--database-url URL] [--format text|json|sarif] [--fail-on error|warn] [--tenant-column tenant_id] [--app-roles r1,r2] [--schemas s1,s2] [--tenant-expr SQL]"
	fs := newFlags("lint", synopsis, stderr)
	dbURL := fs.String("database-url", "", "the PostgreSQL URL of the database to inspect (any database; a superuser or the objects' owner sees the most)")
	format := fs.String("format", "text", "output: text, json or sarif")
	failOn := fs.String("fail-on", "error", "exit 1 when a finding at this level or above exists: error or warn")
	tcol := fs.String("tenant-column", "tenant_id", "the column that says which tenant owns a row")
	appRoles := fs.String("app-roles", "", "comma-separated login roles that serve tenant traffic (default: members of bulkhead_app in a bulkhead database; else login roles that are neither superusers nor owners of tenant tables)")
	schemas := fs.String("schemas", "", "comma-separated exposed schemas for the splinter-derived checks (default: every non-system schema)")
	tenantExpr := fs.String("tenant-expr", "", "the verified-tenant SQL expression to use in suggested fixes (default: (SELECT bulkhead.tenant_id()) in a bulkhead database)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"usage: bulkhead " + synopsis}
	}
	if !slices.Contains(lint.Formats, *format) {
		return usageError{fmt.Sprintf("--format must be text, json or sarif, not %q", *format)}
	}
	level, err := lint.ParseSeverity(*failOn)
	if err != nil || level == lint.Info {
		return usageError{fmt.Sprintf("--fail-on must be error or warn, not %q", *failOn)}
	}
	if *tcol == "" {
		return usageError{"--tenant-column must not be empty"}
	}
	u, err := databaseURL(*dbURL)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep, err := lint.Run(ctx, conn, lint.Options{
		TenantColumn: *tcol,
		AppRoles:     lintList(*appRoles),
		Schemas:      lintList(*schemas),
		TenantExpr:   *tenantExpr,
	})
	if err != nil {
		return err
	}
	if err := lint.Write(stdout, rep, *format); err != nil {
		return err
	}
	if *format != "text" {
		fmt.Fprintln(stderr, rep.Summary())
	}
	if rep.Fails(level) {
		return findingsError{}
	}
	return nil
}

// lintList splits a comma-separated flag value, dropping empty items.
func lintList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
