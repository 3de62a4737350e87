package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/postgres"
)

// runVerifier shows or changes which bulkhead.context() a database runs:
// the PL/pgSQL verifier of bulkhead's migrations, or the native one.
func runVerifier(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "verifier status [--json] | native [--library PATH] | plpgsql"
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := newFlags("verifier "+sub, synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL (a superuser, for native and plpgsql)")
	library := fs.String("library", postgres.DefaultNativeLibrary, "the native verifier's library, as PostgreSQL loads it (native)")
	asJSON := fs.Bool("json", false, "print JSON (status)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	switch sub {
	case "status", "native", "plpgsql":
	default:
		return usageError{fmt.Sprintf("unknown verifier command %q; usage: bulkhead %s", sub, synopsis)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["library"] && sub != "native" {
		return usageError{"--library is for bulkhead verifier native"}
	}
	if set["json"] && sub != "status" {
		return usageError{"--json is for bulkhead verifier status"}
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var v *postgres.Verifier
	switch sub {
	case "status":
		v, err = db.VerifierStatus(ctx)
	case "native":
		fmt.Fprintf(stderr, "installing the native verifier from %s\n", *library)
		v, err = db.InstallNativeVerifier(ctx, *library)
	case "plpgsql":
		v, err = db.RemoveNativeVerifier(ctx)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(v)
	}
	switch v.Kind {
	case "native":
		fmt.Fprintf(stdout, "bulkhead.context(): native (%s), the checks of migration %d\n", v.Library, postgres.NativeVerifierVersion)
	default:
		fmt.Fprintf(stdout, "bulkhead.context(): %s, from bulkhead's migrations\n", v.Kind)
	}
	return nil
}
