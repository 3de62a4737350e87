package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "policy list --tenant ID | put --tenant ID --name NAME --file FILE | delete --tenant ID --name NAME | validate FILE... | simulate --plan basic|premium --tenant-id UUID --role ROLE --action A --resource R [--context key=value]... [--policy FILE]... | export --aws --table NAME [--action A]..."
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := newFlags("policy "+sub, synopsis, stderr)
	switch sub {
	case "list", "put", "delete":
		dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
		slug := fs.String("tenant", "", "the tenant whose policies these are")
		name := fs.String("name", "", "the policy's name (put, delete)")
		file := fs.String("file", "", "the policy document (put)")
		if err := parseNoArgs(fs, args); err != nil {
			return err
		}
		if *slug == "" || (sub != "list" && *name == "") || (sub == "put" && *file == "") {
			return usageError{"usage: bulkhead " + synopsis}
		}
		db, err := openStore(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		t, err := db.FindTenantBySlug(ctx, tenant.Slug(*slug), false)
		if err != nil {
			return err
		}
		switch sub {
		case "list":
			ps, err := db.FindPolicies(ctx, t.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: plan %s (template %q bounds every policy)\n", t.Slug, t.Plan, "bulkhead-"+t.Plan)
			for _, p := range ps {
				fmt.Fprintf(stdout, "  %s (updated %s)\n", p.Name, p.UpdatedAt.Format(time.RFC3339))
			}
			return nil
		case "put":
			b, err := os.ReadFile(*file)
			if err != nil {
				return err
			}
			if _, err := policy.Parse(b); err != nil {
				return fmt.Errorf("%s: %s", *file, messageOf(err))
			}
			created, err := db.PutPolicy(ctx, t.ID, *name, string(b))
			if err != nil {
				return err
			}
			verb := "replaced"
			if created {
				verb = "created"
			}
			fmt.Fprintf(stdout, "%s policy %s for %s (servers pick it up within 2 s)\n", verb, *name, t.Slug)
			return nil
		default:
			if err := db.DeletePolicy(ctx, t.ID, *name); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted policy %s of %s\n", *name, t.Slug)
			return nil
		}
	case "validate":
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usageError{"usage: bulkhead policy validate FILE..."}
		}
		bad := false
		for _, f := range fs.Args() {
			b, err := os.ReadFile(f)
			if err != nil {
				// The operating system's reason (no such file, a flag
				// given after the files), not a generic message.
				bad = true
				fmt.Fprintf(stdout, "%s: cannot read it: %v\n", f, errors.Unwrap(err))
				continue
			}
			if _, err = policy.Parse(b); err != nil {
				bad = true
				fmt.Fprintf(stdout, "%s: %s\n", f, messageOf(err))
				continue
			}
			fmt.Fprintf(stdout, "%s: ok\n", f)
		}
		if bad {
			return findingsError{}
		}
		return nil
	case "simulate":
		plan := fs.String("plan", policy.TierBasic, "the tier template that bounds the principal: basic or premium")
		tid := fs.String("tenant-id", "", "the principal's tenant UUID")
		role := fs.String("role", "member", "the principal's role: admin or member")
		action := fs.String("action", "", "the action, e.g. data:Select")
		resource := fs.String("resource", "", "the resource, e.g. brn:bulkhead:data:<tenant-uuid>:table/projects")
		ip := fs.String("source-ip", "", "aws:SourceIp")
		var ctxKV, files multiFlag
		fs.Var(&ctxKV, "context", "a request key as key=value (repeat for more values or keys), e.g. data:LeadingKeys=<uuid>")
		fs.Var(&files, "policy", "a policy document attached to the tenant (repeatable)")
		if err := parseNoArgs(fs, args); err != nil {
			return err
		}
		if *tid == "" || *action == "" || *resource == "" {
			return usageError{"usage: bulkhead " + synopsis}
		}
		tmpl, err := policy.Template(*plan)
		if err != nil {
			return err
		}
		docs := []*policy.Document{tmpl}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			d, err := policy.Parse(b)
			if err != nil {
				return fmt.Errorf("%s: %s", f, messageOf(err))
			}
			docs = append(docs, d)
		}
		req := policy.Request{Action: *action, Resource: *resource, Time: time.Now(), Context: map[string][]string{}}
		for _, kv := range ctxKV {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return usageError{fmt.Sprintf("--context %q: want key=value", kv)}
			}
			req.Context[k] = append(req.Context[k], v)
		}
		if *ip != "" {
			a, err := netip.ParseAddr(*ip)
			if err != nil {
				return usageError{"--source-ip: " + err.Error()}
			}
			req.SourceIP = a
		}
		d := policy.EvaluateWithBoundary(req, policy.Principal{TenantID: tenant.ID(*tid), Tier: *plan, Role: tenant.Role(*role)},
			[]*policy.Document{tmpl}, docs)
		verdict := map[policy.Effect]string{policy.Allow: "ALLOW", policy.ExplicitDeny: "DENY (explicit)", policy.ImplicitDeny: "DENY (implicit)"}[d.Effect]
		stmt := d.Statement
		if stmt == "" {
			stmt = "(no statement matched)"
		}
		fmt.Fprintf(stdout, "%s by %s: %s\n", verdict, stmt, d.Reason)
		if !d.Allowed() {
			return findingsError{}
		}
		return nil
	case "export":
		aws := fs.Bool("aws", false, "write an AWS IAM policy (required: the only export today)")
		table := fs.String("table", "", "the DynamoDB table ARN or name")
		var actions multiFlag
		fs.Var(&actions, "action", "a DynamoDB action to allow (repeatable; default GetItem, PutItem, UpdateItem, DeleteItem, Query)")
		if err := parseNoArgs(fs, args); err != nil {
			return err
		}
		if !*aws || *table == "" {
			return usageError{"usage: bulkhead policy export --aws --table NAME [--action dynamodb:GetItem]..."}
		}
		if len(actions) == 0 {
			actions = multiFlag{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"}
		}
		b, err := policy.ExportDynamoDB(*table, actions)
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	return usageError{fmt.Sprintf("unknown policy subcommand %q", sub)}
}

// messageOf is the caller-facing message of an error, for CLI output.
func messageOf(err error) string { return fault.MessageOf(err) }
