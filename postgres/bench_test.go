package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/postgres"
)

// BenchmarkIsolationTax compares a one-row lookup through the isolation
// path (BEGIN, the signed context, the query under forced row security
// with the context verified in PostgreSQL, COMMIT, pipelined in one round
// trip) with the same lookup on raw pgx (a plain tenant_id filter, no row
// security, one statement). Both run in the same loop, so the reported
// ratio compares like with like on this machine.
func BenchmarkIsolationTax(b *testing.B) {
	ctx := context.Background()
	e := newEnvTB(b)
	tn := e.tenants["pa"]
	var id string
	raw, err := pgxpool.New(ctx, e.pg.AdminURL)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRow(ctx, `SELECT id FROM app.projects WHERE tenant_id = $1`, string(tn.ID)).Scan(&id); err != nil {
		b.Fatal(err)
	}
	const q = `SELECT name FROM app.projects WHERE tenant_id = $1 AND id = $2`
	const scoped = `SELECT name FROM app.projects WHERE id = $1`
	var rawTime, scopedTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		var name string
		if err := raw.QueryRow(ctx, q, string(tn.ID), id).Scan(&name); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		tok := e.mintTB(b, "pa")
		err := postgres.ScopedStatement(ctx, e.db.App(), tok, scoped, []any{id},
			func(r pgx.Row) error { return r.Scan(&name) }, nil)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		rawTime += t1.Sub(t0)
		scopedTime += t2.Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(rawTime.Nanoseconds())/n, "raw-ns/op")
	b.ReportMetric(float64(scopedTime.Nanoseconds())/n, "scoped-ns/op")
	b.ReportMetric(float64(rawTime)/float64(scopedTime), "throughput-ratio")
}
