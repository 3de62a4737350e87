package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead"
)

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", "token --admin [--subject NAME] [--ttl 1h]", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	admin := fs.Bool("admin", false, "issue a platform-admin token (required: tenant users log in through POST /v1/auth/token)")
	subject := fs.String("subject", "cli-admin", "who the token is for (recorded as sub)")
	ttl := fs.Duration("ttl", bulkhead.DefaultAdminTokenTTL, "lifetime, at most 24h")
	if err := parse(fs, args); err != nil {
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
