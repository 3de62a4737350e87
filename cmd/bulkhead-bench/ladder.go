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
	"time"

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

// ladderRounds is how many times each rung runs; the best run counts, so
// that a moment of interference from the machine's neighbours does not
// reorder the rungs.
const ladderRounds = 3

// runLadder measures, with 4 clients, the one-row lookup four ways, each
// adding one piece of isolation to the one before: the plain filter; the
// context set in the same pipeline, with no row security; forced row
// security on a raw, unverified setting; and bulkhead's signed context,
// verified by PostgreSQL. The rungs run in turn, ladderRounds times, each
// for at most 3 s.
func runLadder(ctx context.Context, pb *pgbencher, admin *pgxpool.Pool, superPassword, gwRole, gwPassword, dir string) ([]ladderStep, error) {
	role, pw, err := ladderSetup(ctx, admin)
	if err != nil {
		return nil, err
	}
	rungs := []struct {
		name, user, password, script string
	}{
		{"plain filter, no row security", "postgres", superPassword,
			"SELECT name FROM app.projects WHERE tenant_id = :tid AND id = :pid;\n"},
		{"+ a context set in the same pipeline (no row security)", "postgres", superPassword,
			"\\startpipeline\nSELECT set_config('bulkhead.context', :ctx, true);\nSELECT name FROM app.projects WHERE tenant_id = :tid AND id = :pid;\n\\endpipeline\n"},
		{"+ forced row security on an unverified setting (forgeable)", role, pw,
			"\\startpipeline\nSELECT set_config('bench.tenant_id', :tid, true);\nSELECT name FROM bench_ladder.projects WHERE id = :pid;\n\\endpipeline\n"},
		{"+ the context signed and verified by PostgreSQL (bulkhead)", gwRole, gwPassword,
			"\\startpipeline\nSELECT set_config('bulkhead.context', :ctx, true);\nSELECT name FROM app.projects WHERE id = :pid;\n\\endpipeline\n"},
	}
	scripts := make([]string, len(rungs))
	for i, g := range rungs {
		scripts[i] = filepath.Join(dir, fmt.Sprintf("rung%d.sql", i))
		if err := os.WriteFile(scripts[i], []byte(g.script), 0o644); err != nil {
			return nil, err
		}
	}
	run := *pb
	run.d = min(pb.d, 3*time.Second)
	steps := make([]ladderStep, len(rungs))
	for r := 1; r <= ladderRounds; r++ {
		logf("pgbench ladder, round %d of %d: four rungs, 4 clients, %s each", r, ladderRounds, run.d)
		for i, g := range rungs {
			tps, err := run.tps(g.user, g.password, scripts[i], 4)
			if err != nil {
				return nil, fmt.Errorf("ladder, %s: %w", g.name, err)
			}
			steps[i].name = g.name
			steps[i].tps = max(steps[i].tps, tps)
		}
	}
	return steps, nil
}

func printLadder(w io.Writer, steps []ladderStep) {
	if len(steps) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSQL level, step by step (pgbench, 4 clients, one-row lookup; each rung adds one piece to the one above; best of %d runs)\n", ladderRounds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rung\ttps\tratio to plain\t")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t\n", s.name, s.tps, s.tps/steps[0].tps)
	}
	tw.Flush()
}
