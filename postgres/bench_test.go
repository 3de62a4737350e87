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

// BenchmarkAuditTax compares a one-row insert through the isolation path
// with the audit triggers on (one event per statement, in the same
// transaction) against the same insert with them off, alternating in the
// same loop, and reports the ratio.
func BenchmarkAuditTax(b *testing.B) {
	ctx := context.Background()
	e := newEnvTB(b)
	admin, err := pgxpool.New(ctx, e.pg.AdminURL)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	const insert = `INSERT INTO app.projects (name) VALUES ('bench') RETURNING 1`
	var on, off time.Duration
	var n int
	for b.Loop() {
		for _, audited := range []bool{true, false} {
			state := "ENABLE"
			if !audited {
				state = "DISABLE"
			}
			if _, err := admin.Exec(ctx, `ALTER TABLE app.projects `+state+` TRIGGER USER`); err != nil {
				b.Fatal(err)
			}
			tok := e.mintTB(b, "pa")
			t0 := time.Now()
			var one int
			if err := postgres.ScopedStatement(ctx, e.db.App(), tok, insert, nil, func(r pgx.Row) error { return r.Scan(&one) }, nil); err != nil {
				b.Fatal(err)
			}
			if audited {
				on += time.Since(t0)
			} else {
				off += time.Since(t0)
			}
		}
		n++
	}
	admin.Exec(ctx, `ALTER TABLE app.projects ENABLE TRIGGER USER`)
	b.ReportMetric(float64(off.Nanoseconds())/float64(n), "unaudited-ns/op")
	b.ReportMetric(float64(on.Nanoseconds())/float64(n), "audited-ns/op")
	b.ReportMetric(float64(off)/float64(on), "throughput-ratio")
}
