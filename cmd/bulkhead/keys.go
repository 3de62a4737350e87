package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "keys list | publish [--purpose P] | rotate [--purpose context|jwt|admin-jwt|record|audit|all] [--grace DURATION | --retire-now] | retire KID"
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := newFlags("keys "+sub, synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	purpose := fs.String("purpose", "all", "which key to rotate")
	grace := fs.Duration("grace", 0, "how long older keys keep verifying (default: the longest lifetime of what they signed, plus skew)")
	retireNow := fs.Bool("retire-now", false, "retire every older key of the purpose at once (after a restore into another environment, or a leak)")
	kid, rest := splitPositional(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	kid, err := positional(fs, kid)
	if err != nil {
		return err
	}
	if sub != "retire" && kid != "" {
		return unexpectedArgument(kid)
	}
	graceSet := flagSet(fs, "grace")
	switch {
	case *grace < 0:
		return usageError{fmt.Sprintf("--grace must not be negative (%s); to retire every older key at once, use --retire-now", *grace)}
	case graceSet && *retireNow:
		return usageError{"--grace and --retire-now contradict each other; give one"}
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	purposes := []postgres.KeyPurpose{postgres.KeyContext, postgres.KeyJWT, postgres.KeyAdminJWT, postgres.KeyRecord, postgres.KeyAudit}
	switch sub {
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PURPOSE\tKID\tCREATED\tSIGNING\tNOT AFTER")
		for _, p := range purposes {
			ks, err := db.FindKeys(ctx, p)
			if err != nil {
				return err
			}
			signer := ""
			for _, k := range ks { // newest signer first
				if k.Signing(time.Now()) {
					signer = k.ID
					break
				}
			}
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", p, k.ID, k.CreatedAt.Format(time.RFC3339), k.ID == signer, fmtTime(k.NotAfter))
			}
		}
		return tw.Flush()
	case "publish", "rotate":
		if *purpose != "all" {
			p := postgres.KeyPurpose(*purpose)
			if !p.Valid() {
				return usageError{fmt.Sprintf("unknown purpose %q", *purpose)}
			}
			purposes = []postgres.KeyPurpose{p}
		}
		for _, p := range purposes {
			if sub == "publish" {
				kid, err := db.PublishKey(ctx, p)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: published verify-only key %s; `bulkhead keys rotate` switches to it\n", p, kid)
				continue
			}
			g := *grace
			if g == 0 {
				g = graceFor(p)
			}
			if *retireNow {
				g = -1
			}
			kid, err := db.RotateKey(ctx, p, g)
			if err != nil {
				return err
			}
			if *retireNow {
				fmt.Fprintf(stdout, "%s: signing key %s; every older key is retired now\n", p, kid)
			} else {
				fmt.Fprintf(stdout, "%s: signing key %s; older keys verify for %s more\n", p, kid, g)
			}
		}
		return nil
	case "retire":
		if kid == "" {
			return usageError{"usage: bulkhead keys retire KID"}
		}
		if err := db.RetireKey(ctx, kid); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "retired %s: it no longer verifies anything\n", kid)
		return nil
	}
	return usageError{fmt.Sprintf("unknown keys subcommand %q", sub)}
}

// graceFor is the longest lifetime of what a key of purpose signs, plus
// clock skew.
func graceFor(p postgres.KeyPurpose) time.Duration {
	const skew = 30 * time.Second
	switch p {
	case postgres.KeyContext:
		return bulkhead.MaxContextTTL + skew
	case postgres.KeyJWT:
		return bulkhead.DefaultTokenTTL + skew
	case postgres.KeyAdminJWT:
		return bulkhead.MaxAdminTokenTTL + skew
	}
	// Record and audit keys sign offboarding records and audit checkpoints
	// that must stay checkable for as long as anyone may ask: they keep
	// verifying unless retired by hand.
	return 100 * 365 * 24 * time.Hour
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
