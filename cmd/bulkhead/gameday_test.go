package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// gamedayKnownLeaks are the leaks gameday finds in bulkhead itself today,
// each reported to be fixed in bulkhead (see verify/gameday's
// knownFindings). Remove an entry when its fix lands.
var gamedayKnownLeaks = []string{}

func TestGamedayOwnDatabase(t *testing.T) {
	t.Parallel()
	d := pgtest.NewDB(t)
	var stdout, stderr bytes.Buffer
	err := runGameday(t.Context(), []string{"--database-url", d.AdminURL}, &stdout, &stderr)
	if err != nil && !errors.As(err, new(findingsError)) {
		t.Fatalf("gameday: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "\nsummary: ") || !strings.Contains(out, " 0 inconclusive") {
		t.Errorf("gameday output has no summary, or an inconclusive scenario:\n%s", out)
	}
	var leaks int
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "LEAKED") {
			continue
		}
		leaks++
		known := false
		for _, k := range gamedayKnownLeaks {
			known = known || strings.Contains(line, k)
		}
		if !known {
			t.Errorf("gameday found a new leak in bulkhead: %s", line)
		}
	}
	if (leaks > 0) != (err != nil) {
		t.Errorf("gameday returned %v with %d leaks; want findingsError exactly when something leaked", err, leaks)
	}
	if !strings.Contains(stderr.String(), "cleaning up") {
		t.Errorf("stderr does not say it cleaned up:\n%s", stderr.String())
	}
}

func TestGamedayUserDatabaseJSON(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := pgtest.NewDB(t)
	// A table with no row security at all: every read leaks.
	app, pw := "gd_cmd_"+gamedaySuffix(t), "pw-"+gamedaySuffix(t)
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range []string{
		`CREATE ROLE ` + app + ` LOGIN PASSWORD '` + pw + `'`,
		`CREATE SCHEMA ` + app,
		`CREATE TABLE ` + app + `.docs (tenant_id text NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text, PRIMARY KEY (tenant_id, id))`,
		`GRANT USAGE ON SCHEMA ` + app + ` TO ` + app,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ` + app + `.docs TO ` + app,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), d.AdminURL)
		if err == nil {
			c.Exec(context.Background(), `DROP OWNED BY `+app+` CASCADE`)
			c.Exec(context.Background(), `DROP ROLE IF EXISTS `+app)
			c.Close(context.Background())
		}
	})
	var stdout, stderr bytes.Buffer
	err = runGameday(ctx, []string{"--app-database-url", d.URL(app, pw), "--admin-database-url", d.AdminURL,
		"--table", app + ".docs", "--tenant-a", "acme", "--tenant-b", "globex",
		"--context", "SELECT pg_catalog.set_config('app.tenant_id', 'acme', true)", "--canaries", "3", "--format", "json"}, &stdout, &stderr)
	if !errors.As(err, new(findingsError)) {
		t.Fatalf("gameday on a table without row security = %v, want findingsError\nstderr:\n%s", err, stderr.String())
	}
	var rep struct {
		Mode    string
		Counts  map[string]int
		Results []struct{ Scenario, Verdict string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, stdout.String())
	}
	verdict := map[string]string{}
	for _, r := range rep.Results {
		verdict[r.Scenario] = r.Verdict
	}
	if rep.Mode != "database" || rep.Counts["leaked"] == 0 || verdict["R1 read B's rows by filter"] != "leaked" {
		t.Errorf("mode %q, counts %v, R1 %q; want database mode with R1 leaked", rep.Mode, rep.Counts, verdict["R1 read B's rows by filter"])
	}
	// The canaries are gone afterwards.
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+app+`.docs`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows left behind (%v), want 0", n, err)
	}
}

func TestGamedayUsage(t *testing.T) {
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	t.Setenv("BULKHEAD_APP_DATABASE_URL", "")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"no database", nil},
		{"bad format", []string{"--format", "xml", "--database-url", "postgres://x"}},
		{"user flag without a user database", []string{"--database-url", "postgres://x", "--tenant-a", "a"}},
		{"user database missing flags", []string{"--app-database-url", "postgres://x", "--table", "s.t"}},
		{"same tenants", []string{"--app-database-url", "postgres://x", "--table", "s.t", "--tenant-a", "a", "--tenant-b", "a", "--context", "select 1"}},
		{"both databases", []string{"--database-url", "postgres://x", "--app-database-url", "postgres://y", "--table", "s.t"}},
		{"positional", []string{"extra"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runGameday(t.Context(), tt.args, &stdout, &stderr)
			if !errors.As(err, new(usageError)) {
				t.Errorf("runGameday(%q) = %v, want a usage error", tt.args, err)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if err := runGameday(t.Context(), []string{"-h"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("runGameday(-h) = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr.String(), "--app-database-url") {
		t.Errorf("help does not document --app-database-url:\n%s", stderr.String())
	}
}

// gamedaySuffix makes role and schema names unique: roles are cluster-wide.
func gamedaySuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
