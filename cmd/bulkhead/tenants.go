package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/strictjson"
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
	const synopsis = "tenants create ID [--name NAME] [--tier pool|silo] [--plan basic|premium] | import FILE [--concurrency N] | list [--json] | show ID | suspend ID | resume ID | set-plan ID --plan basic|premium | move ID --to pool|silo [--settle 5s] | delete ID --yes"
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := newFlags("tenants "+sub, synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	name := fs.String("name", "", "display name (create)")
	tier := fs.String("tier", "pool", "pool or silo (create)")
	plan := fs.String("plan", "basic", "basic or premium (create, set-plan)")
	concurrency := fs.Int("concurrency", 4, "tenants created at once (import)")
	asJSON := fs.Bool("json", false, "print JSON")
	yes := fs.Bool("yes", false, "confirm deletion (delete)")
	to := fs.String("to", "", "the tier to move the tenant to: pool or silo (move)")
	settle := fs.Duration("settle", postgres.DefaultMoveSettle, "how long the moving tenant stays stopped before it resumes in its new place; at least 2s longer than every server's tenant cache, which is 2s at most (move)")
	id, rest := splitPositional(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	id, err := positional(fs, id)
	if err != nil {
		return err
	}
	if *settle < 4*time.Second || *settle > 5*time.Minute {
		return usageError{fmt.Sprintf("--settle must be between 4s and 5m, not %s", *settle)}
	}
	if *concurrency < 1 || *concurrency > 64 {
		return usageError{fmt.Sprintf("--concurrency must be between 1 and 64, not %d", *concurrency)}
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		if id == "" {
			return usageError{"usage: bulkhead tenants create ID [--name NAME] [--tier pool|silo] [--plan basic|premium]"}
		}
		t, created, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(id), Name: *name, Tier: tenant.Tier(*tier), Plan: *plan})
		if err != nil {
			return err
		}
		verb := "created"
		if !created {
			verb = "exists"
		}
		return printTenant(stdout, t, *asJSON, verb)
	case "import":
		if id == "" {
			return usageError{"usage: bulkhead tenants import FILE (JSON lines: {\"id\":…,\"name\":…,\"tier\":…,\"plan\":…}; - for stdin)"}
		}
		return importTenants(ctx, db, id, *concurrency, stdout, stderr)
	case "list":
		if id != "" {
			return unexpectedArgument(id)
		}
		ts, err := allTenants(ctx, db, 1000)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(ts)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIER\tSTATUS\tPLAN\tUUID\tNAME")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Slug, t.Tier, t.Status, t.Plan, t.ID, t.Name)
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
	case "set-plan":
		if id == "" || !flagSet(fs, "plan") {
			return usageError{"usage: bulkhead tenants set-plan ID --plan basic|premium"}
		}
		if err := (postgres.TenantUpdate{Plan: *plan}).Valid(); err != nil {
			return usageError{fault.MessageOf(err)}
		}
		t, err := db.FindTenantBySlug(ctx, tenant.Slug(id), false)
		if err != nil {
			return err
		}
		if err := db.SetTenantPlan(ctx, t.ID, *plan); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is on the %s plan (was %s)\n", t.Slug, *plan, t.Plan)
		return nil
	case "move":
		if id == "" || !tenant.Tier(*to).Valid() {
			return usageError{"usage: bulkhead tenants move ID --to pool|silo [--settle 5s]"}
		}
		t, err := db.FindTenantBySlug(ctx, tenant.Slug(id), false)
		if err != nil {
			return err
		}
		began := time.Now()
		rep, err := db.MoveTenant(ctx, t.ID, tenant.Tier(*to), postgres.MoveOptions{Settle: *settle, Progress: func(step string) {
			fmt.Fprintf(stderr, "moving %s to %s: %s\n", t.Slug, *to, step)
		}})
		if err != nil {
			switch fault.KindOf(err) {
			case fault.Invalid, fault.Conflict, fault.NotFound:
				return err // refused: nothing changed, or the message says what to do
			}
			return fmt.Errorf("%w; if %s is left moving, run the same command again to finish the move", err, t.Slug)
		}
		if !rep.Moved {
			fmt.Fprintf(stderr, "%s is already on %s (%s); nothing to do\n", t.Slug, rep.To, rep.Placement)
		} else {
			fmt.Fprintf(stderr, "moved %s to %s (%s) in %s\n", t.Slug, rep.To, rep.Placement, time.Since(began).Round(time.Millisecond))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
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
	_, err := fmt.Fprintf(w, "%s tier=%s status=%s plan=%s uuid=%s placement=%s\n", t.Slug, t.Tier, t.Status, t.Plan, t.ID, t.Placement)
	return err
}

// splitPositional takes a leading positional argument off args, so that
// flags may follow it ("create acme --tier silo"). "-" (standard input) is
// positional; anything else that starts with "-" is a flag, so a value
// that starts with "-" goes after "--" (see positional).
func splitPositional(args []string) (string, []string) {
	if len(args) > 0 && (args[0] == "-" || len(args[0]) > 0 && args[0][0] != '-') {
		return args[0], args[1:]
	}
	return "", args
}

// positional returns the command's one positional argument once fs has
// parsed the flags: the one splitPositional took, or else the first left
// after the flags ("keys retire -- -Xyz" for a key id that starts with
// "-"). Any more is a usage error.
func positional(fs *flag.FlagSet, first string) (string, error) {
	rest := fs.Args()
	if first == "" && len(rest) > 0 {
		first, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", unexpectedArgument(rest[0])
	}
	return first, nil
}

// noPositional refuses a positional argument: given is what
// splitPositional took, if anything.
func noPositional(fs *flag.FlagSet, given string) error {
	if given != "" {
		return unexpectedArgument(given)
	}
	if fs.NArg() > 0 {
		return unexpectedArgument(fs.Arg(0))
	}
	return nil
}

func unexpectedArgument(arg string) error {
	if len(arg) > 40 {
		arg = arg[:40] + "…"
	}
	return usageError{fmt.Sprintf("unexpected argument %q", arg)}
}

// maxImportLine bounds one line of a tenants import file.
const maxImportLine = 1 << 20

// importTenants onboards every tenant of a JSON-lines file, several at
// once, with progress on stderr. Each tenant is created atomically and a
// retry of the same line is safe, so an interrupted import is resumed by
// running it again.
func importTenants(ctx context.Context, db *postgres.DB, path string, concurrency int, stdout, stderr io.Writer) error {
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	// Every line is checked, as CreateTenant would check it, before any
	// tenant is created: a bad line anywhere creates nothing.
	var specs []postgres.TenantCreate
	seen := map[tenant.Slug]int{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			Tier string `json:"tier"`
			Plan string `json:"plan"`
		}
		if err := strictjson.Decode(sc.Bytes(), &r); err != nil {
			return usageError{fmt.Sprintf("%s:%d: %v", path, line, err)}
		}
		if r.Tier == "" {
			r.Tier = "pool"
		}
		c, err := postgres.TenantCreate{Slug: tenant.Slug(r.ID), Name: r.Name, Tier: tenant.Tier(r.Tier), Plan: r.Plan}.Normalized()
		if err != nil {
			return usageError{fmt.Sprintf("%s:%d: %s (nothing was imported)", path, line, fault.MessageOf(err))}
		}
		if first, dup := seen[c.Slug]; dup {
			return usageError{fmt.Sprintf("%s:%d: tenant id %q is also on line %d (nothing was imported)", path, line, c.Slug, first)}
		}
		seen[c.Slug] = line
		specs = append(specs, c)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return usageError{fmt.Sprintf("%s:%d: a line is longer than %d KiB (nothing was imported)", path, line+1, maxImportLine>>10)}
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	start := time.Now()
	var mu sync.Mutex
	var created, existed int
	failed := map[string]string{}
	work := make(chan postgres.TenantCreate)
	var wg sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				_, isNew, err := db.CreateTenant(ctx, c)
				mu.Lock()
				switch {
				case err != nil:
					failed[string(c.Slug)] = fault.MessageOf(err)
				case isNew:
					created++
				default:
					existed++
				}
				done := created + existed + len(failed)
				if done%100 == 0 || done == len(specs) {
					fmt.Fprintf(stderr, "\rimported %d/%d tenants (%.0f/s)", done, len(specs), float64(done)/time.Since(start).Seconds())
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range specs {
		select {
		case work <- c:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	fmt.Fprintln(stderr)
	fmt.Fprintf(stdout, "%d created, %d already there, %d failed in %s\n", created, existed, len(failed), time.Since(start).Round(time.Millisecond))
	for _, slug := range slices.Sorted(maps.Keys(failed)) {
		fmt.Fprintf(stdout, "  %s: %s\n", slug, failed[slug])
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d tenants were not created", len(failed))
	}
	return ctx.Err()
}

// allTenants reads every tenant that is not offboarded, page by page, so
// that a list of 100,000 tenants is whole and no one query is large.
func allTenants(ctx context.Context, db *postgres.DB, page int) ([]*tenant.Tenant, error) {
	all := []*tenant.Tenant{} // --json prints [] for none, not null
	f := postgres.TenantFilter{Limit: page}
	for {
		ts, err := db.FindTenants(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list tenants after %q: %w", f.After, err)
		}
		all = append(all, ts...)
		if len(ts) < page {
			return all, nil
		}
		f.After = ts[len(ts)-1].Slug
	}
}
