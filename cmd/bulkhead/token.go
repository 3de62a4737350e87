package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bulkhead-dev/bulkhead"
)

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "revoke" {
		return runTokenRevoke(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("token", "token --admin [--subject NAME] [--ttl DURATION] | token revoke < TOKEN", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	admin := fs.Bool("admin", false, "issue a platform-admin token (required: tenant users log in through POST /v1/auth/token)")
	subject := fs.String("subject", "cli-admin", "who the token is for (recorded as sub)")
	ttl := fs.Duration("ttl", bulkhead.DefaultAdminTokenTTL, "lifetime, at most "+bulkhead.MaxAdminTokenTTL.String())
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if !*admin {
		return usageError{"usage: bulkhead token --admin (tenant users get tokens from POST /v1/auth/token)"}
	}
	u, err := databaseURL(*dbURL)
	if err != nil {
		return err
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: u})
	if err != nil {
		return err
	}
	defer db.Close()
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		return err
	}
	defer auth.Close()
	tok, exp, err := auth.IssueAdminToken(ctx, *subject, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "platform-admin token for %q, expires %s\n", *subject, exp.Format("2006-01-02T15:04:05Z07:00"))
	fmt.Fprintln(stdout, tok)
	return nil
}

// stdin is the command's standard input; tests replace it.
var stdin io.Reader = os.Stdin

// runTokenRevoke revokes the platform-admin token read from stdin (never
// from a flag: flags show in ps).
func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token revoke", "token revoke < TOKEN", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 16<<10))
	if err != nil {
		return err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return usageError{"usage: bulkhead token revoke < TOKEN (the token on standard input)"}
	}
	u, err := databaseURL(*dbURL)
	if err != nil {
		return err
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: u})
	if err != nil {
		return err
	}
	defer db.Close()
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		return err
	}
	defer auth.Close()
	if err := auth.RevokeAdminToken(ctx, tok); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "revoked")
	return nil
}
