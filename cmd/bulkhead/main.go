// Command bulkhead keeps the tenants of a multi-tenant SaaS apart on
// PostgreSQL, and proves it. Run `bulkhead help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/bulkhead-dev/bulkhead/identity/hashproc"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "bulkhead:", err)
		os.Exit(2)
	case errors.As(err, new(findingsError)):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "bulkhead:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// findingsError means a check found something: exit 1, already reported.
type findingsError struct{}

func (findingsError) Error() string { return "findings" }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "run a private PostgreSQL, a seeded demo and the server", runDev},
		{"serve", "run the server against a PostgreSQL", runServe},
		{"migrate", "create roles, harden and migrate a database", runMigrate},
		{"tenants", "create, list, suspend, re-plan, move and delete tenants", runTenants},
		{"users", "add users to a tenant", runUsers},
		{"functions", "register business functions (their own login role and credential), list and delete them", runFunctions},
		{"keys", "list, rotate and retire signing keys", runKeys},
		{"verifier", "show or switch the database's context verifier (PL/pgSQL or native C)", runVerifier},
		{"token", "issue or revoke a platform-admin token", runToken},
		{"audit", "verify the audit chain, or tail the trail", runAudit},
		{"lint", "check a database's tenant isolation (read-only)", runLint},
		{"gameday", "attack a database as a compromised function", runGameday},
		{"probe", "attack an HTTP API as one tenant against another's canary objects", runProbe},
		{"policy", "validate, simulate and export access policies", runPolicy},
		{"version", "print the build's version, commit and database schema version", runVersion},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// Changes made from the command line are audited under the OS user.
	who := "cli"
	if u, err := user.Current(); err == nil {
		who = "cli:" + u.Username
	}
	ctx = postgres.WithActor(ctx, postgres.Actor{Subject: who, Role: "platform"})
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return flag.ErrHelp
		}
		return nil
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	if args[0] == hashWorkerCommand { // hidden: the server's password hashing process
		return hashproc.Run(os.Stdin, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `bulkhead keeps the tenants of a multi-tenant SaaS apart on PostgreSQL, and proves it.

Usage: bulkhead <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'bulkhead <command> -h' for a command's flags.
Commands that talk to PostgreSQL take --database-url or BULKHEAD_DATABASE_URL
(prefer the environment: flags show in ps).
`)
}

// newFlags returns a flag set whose -h prints the command's help.
// flagSet says whether the command line set the flag name, whatever its
// value (a default cannot be told from a value given).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bulkhead "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bulkhead %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return usageError{err.Error()}
	}
	return nil
}

// parseNoArgs parses flags for a command that takes no positional
// argument: a stray one is refused rather than silently ending the flags
// (flag parsing stops at the first argument that is not a flag).
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	return noPositional(fs, "")
}

// databaseURL returns the flag's value or BULKHEAD_DATABASE_URL.
func databaseURL(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := os.Getenv("BULKHEAD_DATABASE_URL"); v != "" {
		return v, nil
	}
	return "", usageError{"no database: set BULKHEAD_DATABASE_URL or pass --database-url"}
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" || s == "help" }
