package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// lintbed builds verify/lint's lintbed (one of each misconfiguration) in a
// fresh test database and returns the database and its app roles.
func lintbed(t *testing.T) (*pgtest.DB, []string) {
	t.Helper()
	d := pgtest.NewDB(t)
	b := make([]byte, 4)
	rand.Read(b)
	p := "lc" + hex.EncodeToString(b)
	sql, err := os.ReadFile("../../verify/lint/testdata/lintbed.sql")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("{{p}}", p, "{{s}}", p+"_bed", "{{db}}", d.Name).Replace(string(sql))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, d.AdminURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		for _, r := range []string{"_app", "_app2", "_svc", "_owner"} {
			c.Exec(ctx, `DROP OWNED BY `+p+r+` CASCADE`)
			c.Exec(ctx, `DROP ROLE IF EXISTS `+p+r)
		}
	})
	if _, err := conn.Exec(ctx, s); err != nil {
		t.Fatalf("build the lintbed: %v", err)
	}
	return d, []string{p + "_app", p + "_app2"}
}

func TestLintSARIF(t *testing.T) {
	d, roles := lintbed(t)
	var stdout, stderr bytes.Buffer
	err := runLint(t.Context(), []string{"--database-url", d.AdminURL, "--format", "sarif", "--fail-on", "warn",
		"--app-roles", strings.Join(roles, ",")}, &stdout, &stderr)
	if !errors.As(err, new(findingsError)) {
		t.Fatalf("runLint = %v, want findingsError; stderr:\n%s", err, stderr.String())
	}
	var log struct {
		Schema  string `json:"$schema"`
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &log); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
	}
	if log.Version != "2.1.0" || !strings.Contains(log.Schema, "sarif-schema-2.1.0") || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
		t.Fatalf("SARIF version %q, $schema %q, %d runs", log.Version, log.Schema, len(log.Runs))
	}
	if !strings.Contains(stderr.String(), "errors,") {
		t.Errorf("no summary on stderr: %q", stderr.String())
	}
}

func TestLintExitCodes(t *testing.T) {
	d := pgtest.NewDB(t)
	// Lint counts every member of bulkhead_app in the cluster: keep other
	// tests' deliberate weakenings of cluster-wide roles out of this one.
	pgtest.LockClusterRoles(t, d.AdminURL, false)
	ctx := t.Context()
	t.Run("OK", func(t *testing.T) {
		// bulkhead's own schema has info findings only.
		var stdout, stderr bytes.Buffer
		if err := runLint(ctx, []string{"--database-url", d.AdminURL, "--fail-on", "warn"}, &stdout, &stderr); err != nil {
			t.Fatalf("runLint on a fresh bulkhead database = %v\n%s", err, stdout.String())
		}
		if !strings.Contains(stdout.String(), "0 errors, 0 warnings") {
			t.Errorf("text output lacks the summary:\n%s", stdout.String())
		}
	})
	t.Run("JSON", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if err := runLint(ctx, []string{"--database-url", d.AdminURL, "--format", "json"}, &stdout, &stderr); err != nil {
			t.Fatalf("runLint = %v\n%s", err, stdout.String())
		}
		var rep struct {
			Bulkhead bool `json:"bulkhead"`
			Findings []struct {
				ID string `json:"id"`
			} `json:"findings"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || !rep.Bulkhead {
			t.Fatalf("json output: %v, bulkhead=%v\n%s", err, rep.Bulkhead, stdout.String())
		}
	})
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"ErrFormat", []string{"--format", "xml"}},
		{"ErrFailOn", []string{"--fail-on", "info"}},
		{"ErrArgument", []string{"extra"}},
		{"ErrEmptyTenantColumn", []string{"--tenant-column", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runLint(ctx, append([]string{"--database-url", d.AdminURL}, tt.args...), &stdout, &stderr)
			if !errors.As(err, new(usageError)) {
				t.Errorf("runLint(%v) = %v, want a usage error", tt.args, err)
			}
		})
	}
	t.Run("ErrUnknownRole", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := runLint(ctx, []string{"--database-url", d.AdminURL, "--app-roles", "no_such_role_x"}, &stdout, &stderr)
		if err == nil || errors.As(err, new(findingsError)) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("runLint(unknown role) = %v", err)
		}
	})
}
