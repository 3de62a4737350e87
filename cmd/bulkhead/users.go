package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "users create --tenant ID --email EMAIL [--role admin|member] (password from BULKHEAD_USER_PASSWORD or stdin)"
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "create" {
		return usageError{"usage: bulkhead " + synopsis}
	}
	fs := newFlags("users create", synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	tid := fs.String("tenant", "", "tenant id")
	email := fs.String("email", "", "the user's email")
	role := fs.String("role", "member", "admin or member")
	if err := parseNoArgs(fs, args[1:]); err != nil {
		return err
	}
	pw := os.Getenv("BULKHEAD_USER_PASSWORD")
	if pw == "" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, identity.MaxPasswordLen+1))
		if err != nil {
			return err
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	t, err := db.FindTenantBySlug(ctx, tenant.Slug(*tid), false)
	if err != nil {
		return err
	}
	h := &identity.Hasher{}
	hash, err := h.Hash(ctx, pw)
	if err != nil {
		return err
	}
	u, err := db.CreateUser(ctx, t.ID, *email, hash, tenant.Role(*role))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (%s) in %s as %s\n", u.Email, u.ID, t.Slug, u.Role)
	return nil
}
