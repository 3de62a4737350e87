package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// TestTenantsMove: bulkhead tenants move prints each step on stderr and
// the report as JSON on stdout; a tenant already on the tier is left
// alone; a missing or unknown --to, or a --settle shorter than any
// server's tenant cache, is a usage error.
func TestTenantsMove(t *testing.T) {
	pg := pgtest.NewDB(t)
	cmd := cli(pg.AdminURL)
	for _, slug := range []string{"acme", "globex"} {
		tier := map[string]string{"acme": "pool", "globex": "silo"}[slug]
		if _, err := cmd("tenants", "create", slug, "--tier", tier); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"tenants", "move", "acme"},
		{"tenants", "move", "acme", "--to", "cluster"},
		{"tenants", "move", "acme", "--to", "silo", "--settle", "1s"},
		{"tenants", "move", "--to", "silo"},
		{"tenants", "move", "acme", "--to", "SILO"},
		{"tenants", "move", "acme", "--to", ""},
		{"tenants", "move", "acme", "--to", "silo", "extra"},
		{"tenants", "move", "acme", "--to", "silo", "--settle", "soon"},
		{"tenants", "move", "acme", "--to", "silo", "--settle", "-5s"},
		{"tenants", "move", "acme", "--to", "silo", "--settle", "6m"},
		{"tenants", "move", "acme", "--tier", "silo"},
	} {
		if _, err := cmd(args...); !errors.As(err, new(usageError)) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	// A tenant id that cannot be one, or is no tenant: refused, exit 1,
	// nothing changed.
	for _, id := range []string{"Acme", "nosuch", "acme\x00", "../acme"} {
		if _, err := cmd("tenants", "move", id, "--to", "silo"); err == nil || errors.As(err, new(usageError)) {
			t.Errorf("moving %q: %v, want a refusal", id, err)
		}
	}
	if out, err := cmd("tenants", "show", "acme"); err != nil || !strings.Contains(out, "tier=pool status=active") {
		t.Fatalf("acme after the refusals: %q %v", out, err)
	}
	move := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append(args, "--database-url", pg.AdminURL), &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	out, progress := move("tenants", "move", "acme", "--to", "silo", "--settle", "4s")
	for _, want := range []string{"moving acme to silo: stopping the tenant", "copying the tenant's rows", "letting the servers' caches settle", "moved acme to silo (t_"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
	var rep struct {
		Moved     bool   `json:"moved"`
		Placement string `json:"placement"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Moved || !strings.HasPrefix(rep.Placement, "t_") {
		t.Fatalf("report: %q %v", out, err)
	}
	if out, err := cmd("tenants", "show", "acme"); err != nil || !strings.Contains(out, "tier=silo status=active") {
		t.Fatalf("acme after the move: %q %v", out, err)
	}
	out, progress = move("tenants", "move", "globex", "--to", "silo")
	if !strings.Contains(progress, "globex is already on silo") || !strings.Contains(out, `"moved": false`) {
		t.Fatalf("moving a silo tenant to a silo: %q %q", out, progress)
	}
}
