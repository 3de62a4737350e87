package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ladderStep is one rung of the SQL-level ladder: the same one-row lookup
// with one more piece of isolation than the rung before.
type ladderStep struct {
	name string
	tps  float64
}

// ladderSetup makes, in the bench's private database, a copy of the
// projects table under forced row security on a raw, unverified setting
// (the way the seed article and many platforms do it, and forgeable by any
// connection), and a login role that reads it. It returns the role's name
// and password.
func ladderSetup(ctx context.Context, admin *pgxpool.Pool) (role, password string, err error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	role, password = "bench_raw_setting", hex.EncodeToString(b)
	for _, q := range []string{
		`DROP SCHEMA IF EXISTS bench_ladder CASCADE`,
		`DROP ROLE IF EXISTS bench_raw_setting`,
		`CREATE SCHEMA bench_ladder`,
		`CREATE TABLE bench_ladder.projects AS SELECT * FROM app.projects`,
		`ALTER TABLE bench_ladder.projects ADD PRIMARY KEY (tenant_id, id)`,
		`ALTER TABLE bench_ladder.projects ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE bench_ladder.projects FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant ON bench_ladder.projects USING (tenant_id = (SELECT pg_catalog.current_setting('bench.tenant_id', true)::uuid))`,
		`CREATE ROLE bench_raw_setting LOGIN PASSWORD '` + password + `'`,
		`GRANT USAGE ON SCHEMA bench_ladder TO bench_raw_setting`,
		`GRANT SELECT ON bench_ladder.projects TO bench_raw_setting`,
		`ANALYZE bench_ladder.projects`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return "", "", fmt.Errorf("ladder setup: %s: %w", q, err)
		}
	}
	return role, password, nil
}

// runLadder measures, with 4 clients, the rungs between the plain lookup
// and bulkhead's (both measured by the caller, passed in): the context set
// in the same pipeline with no row security, then forced row security on
// the raw setting.
func runLadder(ctx context.Context, pb *pgbencher, admin *pgxpool.Pool, superPassword, dir string, plain, signed float64) ([]ladderStep, error) {
	role, pw, err := ladderSetup(ctx, admin)
	if err != nil {
		return nil, err
	}
	setcfg := filepath.Join(dir, "setcfg.sql")
	raw := filepath.Join(dir, "raw.sql")
	if err := os.WriteFile(setcfg, []byte("\\startpipeline\nSELECT set_config('bulkhead.context', :ctx, true);\nSELECT name FROM app.projects WHERE tenant_id = :tid AND id = :pid;\n\\endpipeline\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(raw, []byte("\\startpipeline\nSELECT set_config('bench.tenant_id', :tid, true);\nSELECT name FROM bench_ladder.projects WHERE id = :pid;\n\\endpipeline\n"), 0o644); err != nil {
		return nil, err
	}
	logf("pgbench ladder: context set in the same pipeline, no row security, 4 clients, %s", pb.d)
	s, err := pb.tps("postgres", superPassword, setcfg, 4)
	if err != nil {
		return nil, err
	}
	logf("pgbench ladder: forced row security on an unverified setting, 4 clients, %s", pb.d)
	r, err := pb.tps(role, pw, raw, 4)
	if err != nil {
		return nil, err
	}
	return []ladderStep{
		{"plain filter, no row security", plain},
		{"+ a context set in the same pipeline (no row security)", s},
		{"+ forced row security on an unverified setting (forgeable)", r},
		{"+ the context signed and verified by PostgreSQL (bulkhead)", signed},
	}, nil
}

func printLadder(w io.Writer, steps []ladderStep) {
	if len(steps) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSQL level, step by step (pgbench, 4 clients, one-row lookup; each rung adds one piece to the one above)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rung\ttps\tratio to plain\t")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t\n", s.name, s.tps, s.tps/steps[0].tps)
	}
	tw.Flush()
}
