package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/bulkhead-dev/bulkhead/postgres"
)

func runFunctions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "functions create NAME [--connection-limit N] | list [--json] | delete NAME"
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	if len(args) > 0 && args[0] == "list" {
		return listFunctions(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "delete" {
		return deleteFunction(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		return usageError{"usage: bulkhead " + synopsis}
	}
	fs := newFlags("functions create", synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	conns := fs.Int("connection-limit", postgres.DefaultFunctionConnections, fmt.Sprintf("the function's login role's CONNECTION LIMIT (1 to %d): how many statements it can run on PostgreSQL at once, each up to a CPU", postgres.MaxFunctionConnections))
	name, err := parseName(fs, args[1:], synopsis)
	if err != nil {
		return err
	}
	if *conns < 1 || *conns > postgres.MaxFunctionConnections {
		return usageError{fmt.Sprintf("--connection-limit must be 1 to %d", postgres.MaxFunctionConnections)}
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	fc, err := db.CreateFunctionWith(ctx, name, postgres.FunctionOptions{ConnectionLimit: *conns})
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "store these now: the credential and the password are shown once")
	return json.NewEncoder(stdout).Encode(map[string]string{
		"name": fc.Name, "login_role": fc.LoginRole, "function_token": fc.Token, "password": fc.Password,
	})
}

// listFunctions prints every registered function with its login role's
// connection limit and the sessions it holds now.
func listFunctions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("functions list", "functions list [--json]", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	fns, err := db.ListFunctions(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if fns == nil {
			fns = []postgres.FunctionInfo{}
		}
		return json.NewEncoder(stdout).Encode(fns)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLOGIN ROLE\tCONNECTION LIMIT\tSESSIONS\tCREATED")
	for _, f := range fns {
		limit := strconv.Itoa(f.ConnectionLimit)
		switch {
		case f.RoleMissing:
			limit = "role missing"
		case f.ConnectionLimit < 0:
			limit = "none"
		}
		sessions := strconv.Itoa(f.Sessions)
		if f.Sessions < 0 {
			sessions = "unknown"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.LoginRole, limit, sessions, f.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// deleteFunction revokes a function: its credential and login role go in
// one transaction, then its sessions are ended.
func deleteFunction(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "functions delete NAME"
	fs := newFlags("functions delete", synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	name, err := parseName(fs, args, synopsis)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ended, err := db.DeleteFunction(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted: %s (its credential and login role; %d sessions ended)\n", name, ended)
	return nil
}

// parseName parses fs from args, which must hold exactly one positional
// argument, the function's name, before or after the flags.
func parseName(fs *flag.FlagSet, args []string, synopsis string) (string, error) {
	name, rest := splitPositional(args)
	if err := parse(fs, rest); err != nil {
		return "", err
	}
	name, err := positional(fs, name)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", usageError{"usage: bulkhead " + synopsis}
	}
	return name, nil
}
