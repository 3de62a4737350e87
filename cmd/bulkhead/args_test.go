package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// isUsage reports whether err is a usage error (exit status 2).
func isUsage(err error) bool { return errors.As(err, new(usageError)) }

// TestPositionalArguments covers the one positional argument the commands
// take: "-" for standard input, a value that starts with "-" after "--",
// and no second one.
func TestPositionalArguments(t *testing.T) {
	pg := pgtest.NewDB(t)
	ctx := context.Background()
	cmd := cli(pg.AdminURL)
	adm, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	if _, err := cmd("tenants", "list"); err != nil { // sets the database up
		t.Fatal(err)
	}

	// Key ids made before they stopped starting with "-" can still be
	// retired, after "--".
	const dashKID = "-HDpFXhvfBQ9"
	if _, err := adm.Exec(ctx, `INSERT INTO bulkhead_control.keys (kid, purpose, secret) VALUES ($1, 'context', bulkhead_crypto.gen_random_bytes(32))`, dashKID); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd("keys", "retire", dashKID); !isUsage(err) {
		t.Fatalf("keys retire %s without --: %v, want a usage error (the flag parser reads it)", dashKID, err)
	}
	// (The flags go before "--": here, in the environment.)
	t.Setenv("BULKHEAD_DATABASE_URL", pg.AdminURL)
	var out bytes.Buffer
	if err := run(ctx, []string{"keys", "retire", "--", dashKID}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "retired "+dashKID) {
		t.Fatalf("keys retire -- %s: %q %v", dashKID, out.String(), err)
	}
	var retired bool
	if err := adm.QueryRow(ctx, `SELECT not_after <= now() FROM bulkhead_control.keys WHERE kid = $1`, dashKID).Scan(&retired); err != nil || !retired {
		t.Fatalf("the key is not retired: %v %v", retired, err)
	}

	// "-" reads the import from standard input.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(`{"id":"from-stdin"}` + "\n")
	w.Close()
	stdin := os.Stdin
	os.Stdin = r
	imported, err := cmd("tenants", "import", "-")
	os.Stdin = stdin
	if err != nil || !strings.Contains(imported, "1 created") {
		t.Fatalf("tenants import -: %q %v", imported, err)
	}

	// A second positional argument is refused, and nothing is made.
	for _, args := range [][]string{
		{"tenants", "create", "acme", "extra"},
		{"tenants", "create", "acme", "--tier", "silo", "extra"},
		{"functions", "create", "fn-a", "fn-b"},
		{"tenants", "list", "extra"},
		{"audit", "tail", "extra"},
		{"migrate", "extra"},
		{"serve", "extra", "--addr", "127.0.0.1:0"},
		{"users", "create", "extra", "--tenant", "acme", "--email", "a@b.c"},
		{"keys", "list", "extra"},
		{"policy", "list", "extra", "--tenant", "acme"},
	} {
		if _, err := cmd(args...); !isUsage(err) || !strings.Contains(err.Error(), `unexpected argument "extra"`) && !strings.Contains(err.Error(), `"fn-b"`) {
			t.Errorf("%v: %v, want a usage error naming the extra argument", args, err)
		}
	}
	if out, _ := cmd("tenants", "list"); strings.Contains(out, "acme") {
		t.Fatalf("a refused create made acme:\n%s", out)
	}

	// New key ids never start with "-" or "_" (each random one would with
	// odds of 1 in 32).
	for i := 0; i < 200; i++ {
		out, err := cmd("keys", "publish", "--purpose", "context")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(out)
		if len(f) < 5 || strings.HasPrefix(f[4], "-") || strings.HasPrefix(f[4], "_") {
			t.Fatalf("keys publish: %q", out)
		}
	}
}

// TestBadFlagValues: values a flag's type accepts but the command cannot
// use are usage errors that change nothing.
func TestBadFlagValues(t *testing.T) {
	pg := pgtest.NewDB(t)
	cmd := cli(pg.AdminURL)
	before, err := cmd("keys", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"keys", "rotate", "--purpose", "context", "--grace", "-1h"},
		{"keys", "rotate", "--purpose", "context", "--grace", "1h", "--retire-now"},
		{"audit", "tail", "-n", "-1"},
		{"tenants", "import", "x.jsonl", "--concurrency", "0"},
		{"tenants", "import", "x.jsonl", "--concurrency", "65"},
	} {
		if _, err := cmd(args...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if after, _ := cmd("keys", "list"); after != before {
		t.Fatalf("a refused rotation changed the keys:\n%s\nthen:\n%s", before, after)
	}
	if out, err := cmd("tenants", "list", "--json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("tenants list --json with no tenants: %q %v, want []", out, err)
	}
}

// TestImportChecksEveryLineFirst: a bad line anywhere in an import file is
// reported with its line number and creates nothing.
func TestImportChecksEveryLineFirst(t *testing.T) {
	pg := pgtest.NewDB(t)
	cmd := cli(pg.AdminURL)
	good := `{"id":"wayne","tier":"silo"}` + "\n" + `{"id":"stark"}` + "\n" + `{"id":"umbrella","plan":"premium"}` + "\n"
	for _, c := range []struct{ name, file, want string }{
		{"a bad tier", good + `{"id":"cyberdyne","tier":"silos"}` + "\n", `:4: The tier must be "pool" or "silo".`},
		{"a bad plan", good + `{"id":"cyberdyne","plan":"gold"}` + "\n", `:4: The plan must be "basic" or "premium".`},
		{"a bad id", good + "\n" + `{"id":"Cyber_Dyne"}` + "\n", ":5: "},
		{"a long name", good + `{"id":"cyberdyne","name":"` + strings.Repeat("x", 201) + `"}` + "\n", ":4: A tenant name is at most 200 bytes."},
		{"an id twice", good + `{"id":"stark"}` + "\n", `:4: tenant id "stark" is also on line 2`},
		{"a line over 1 MiB", good + `{"id":"big","name":"` + strings.Repeat("x", 1<<20) + `"}` + "\n", ":4: a line is longer than 1024 KiB"},
		{"not JSON", good + "{\n", ":4: "},
	} {
		f := filepath.Join(t.TempDir(), "tenants.jsonl")
		if err := os.WriteFile(f, []byte(c.file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := cmd("tenants", "import", f)
		if !isUsage(err) || !strings.Contains(err.Error(), f+c.want) {
			t.Errorf("%s: %v, want a usage error with %q", c.name, err, f+c.want)
		}
	}
	if out, _ := cmd("tenants", "list"); strings.Contains(out, "wayne") || strings.Contains(out, "stark") {
		t.Fatalf("a refused import created tenants:\n%s", out)
	}
}

// TestOffboardingDeletesPolicies: a tenant's policy documents, written by
// its admins, go with it, and the record counts them.
func TestOffboardingDeletesPolicies(t *testing.T) {
	pg := pgtest.NewDB(t)
	ctx := context.Background()
	cmd := cli(pg.AdminURL)
	for _, slug := range []string{"acme", "globex"} {
		if _, err := cmd("tenants", "create", slug, "--plan", "premium"); err != nil {
			t.Fatal(err)
		}
	}
	pf := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(pf, []byte(`{"Version":"2012-10-17","Statement":[{"Sid":"OfficeOnly","Effect":"Deny","Action":"data:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}`), 0o600)
	// A suspended tenant's policies can be changed, as they can be listed.
	if _, err := cmd("tenants", "suspend", "acme"); err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{"acme", "globex"} {
		if out, err := cmd("policy", "put", "--tenant", slug, "--name", "office-only", "--file", pf); err != nil {
			t.Fatalf("policy put on %s: %q %v", slug, out, err)
		}
	}
	out, err := cmd("tenants", "delete", "acme", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		DeletedPolicies int64    `json:"deleted_policies"`
		Remains         []string `json:"remains"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.DeletedPolicies != 1 || !strings.Contains(strings.Join(rec.Remains, "\n"), "audit") {
		t.Fatalf("offboarding record: %v\n%s", err, out)
	}
	adm, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	var left []string
	if err := adm.QueryRow(ctx, `SELECT coalesce(array_agg(t.slug ORDER BY t.slug), '{}') FROM bulkhead_control.policies p
		JOIN bulkhead_control.tenants t ON t.id = p.tenant_id`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if strings.Join(left, ",") != "globex" {
		t.Fatalf("policy documents left: %v, want globex's only", left)
	}
	// The CLI's policy changes are audited under the tenant's slug.
	var slugs []string
	if err := adm.QueryRow(ctx, `SELECT coalesce(array_agg(ev->>'tenant' ORDER BY ev->>'tenant'), '{}') FROM (SELECT event FROM bulkhead_audit.inbox
		UNION ALL SELECT body::jsonb FROM bulkhead_audit.events) e(ev) WHERE ev->>'action' = 'policies:Put'`).Scan(&slugs); err != nil {
		t.Fatal(err)
	}
	if strings.Join(slugs, ",") != "acme,globex" {
		t.Fatalf("policies:Put events name tenants %q, want acme and globex", slugs)
	}
	var stderr bytes.Buffer
	if err := run(ctx, []string{"policy", "put", "--tenant", "acme", "--name", "x", "--file", pf, "--database-url", pg.AdminURL}, io.Discard, &stderr); err == nil {
		t.Fatal("policy put on an offboarded tenant succeeded")
	}
}

// TestSetPlan: set-plan needs an explicit --plan and a known one, changes
// only the tenant named, says what the plan was, and refuses an
// offboarded tenant; a refused change changes nothing.
func TestSetPlan(t *testing.T) {
	pg := pgtest.NewDB(t)
	cmd := cli(pg.AdminURL)
	for _, slug := range []string{"acme", "globex", "gone"} {
		if _, err := cmd("tenants", "create", slug); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"tenants", "set-plan", "acme"},                      // no --plan: the default would pass for a choice
		{"tenants", "set-plan", "--plan", "premium"},         // no tenant
		{"tenants", "set-plan", "acme", "--plan", "gold"},    // no such plan
		{"tenants", "set-plan", "acme", "--plan", "PREMIUM"}, // plans are lowercase
		{"tenants", "set-plan", "acme", "globex", "--plan", "premium"},
	} {
		if out, err := cmd(args...); !isUsage(err) {
			t.Errorf("%v: %q %v, want a usage error", args, out, err)
		}
	}
	show := func(slug string) string {
		t.Helper()
		out, err := cmd("tenants", "show", slug, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Plan string }
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return v.Plan
	}
	if p := show("acme"); p != "basic" {
		t.Fatalf("after refused changes acme is on %q", p)
	}
	out, err := cmd("tenants", "set-plan", "acme", "--plan", "premium")
	if err != nil || !strings.Contains(out, "acme is on the premium plan (was basic)") {
		t.Fatalf("set-plan: %q %v", out, err)
	}
	if a, g := show("acme"), show("globex"); a != "premium" || g != "basic" {
		t.Fatalf("acme on %q, globex on %q; want premium and basic", a, g)
	}
	if out, err := cmd("tenants", "show", "acme"); err != nil || !strings.Contains(out, "acme tier=pool status=active plan=premium uuid=") {
		t.Fatalf("show: %q %v", out, err)
	}
	if out, err := cmd("tenants", "list"); err != nil || !regexp.MustCompile(`(?m)^acme +pool +active +premium +[0-9a-f-]{36} +acme$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^globex +pool +active +basic `).MatchString(out) || !strings.HasPrefix(out, "ID ") || !strings.Contains(out, " PLAN ") {
		t.Fatalf("list: %q %v", out, err)
	}
	if _, err := cmd("tenants", "delete", "gone", "--yes"); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd("tenants", "set-plan", "gone", "--plan", "premium"); fault.CodeOf(err) != "tenant_not_found" {
		t.Fatalf("set-plan on an offboarded tenant: %v", err)
	}
}
