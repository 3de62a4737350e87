package bulkhead_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// BenchmarkTxTax is the isolation tax of the library's path for business
// code: a one-row lookup through DB.Tx in a minter (a context minted for
// the principal, set with the statement timeout in the transaction's
// first statement, forced row security, and the connection reset before
// it serves another principal) against the same lookup on a raw pool with
// WHERE tenant_id = $1, alternating in the same loop, one at a time. It
// reports each side's time and the throughput ratio, for one principal
// throughout ("one-principal": its transactions share the session and
// PostgreSQL's cached plans) and for two tenants' principals in turn
// ("alternating": every transaction begins with the reset).
func BenchmarkTxTax(b *testing.B) {
	ctx := context.Background()
	url := pgtest.NewDB(b).AdminURL
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: url})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	type who struct {
		ctx    context.Context
		tenant tenant.ID
		id     string
	}
	var principals []who
	for _, slug := range []tenant.Slug{"txtax-a", "txtax-b"} {
		tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: slug, Tier: tenant.Pool})
		if err != nil {
			b.Fatal(err)
		}
		w := who{ctx: tenant.NewContext(ctx, tenant.Principal{Subject: "u-" + string(slug), TenantID: tn.ID, Role: tenant.Admin}), tenant: tn.ID}
		if err := db.Tx(w.ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `INSERT INTO app.projects (name) VALUES ('bench') RETURNING id::text`).Scan(&w.id)
		}); err != nil {
			b.Fatal(err)
		}
		principals = append(principals, w)
	}
	raw, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	for _, bc := range []struct {
		name string
		n    int // how many principals take turns
	}{{"one-principal", 1}, {"alternating", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			var rawTime, txTime time.Duration
			i := 0
			for b.Loop() {
				w := principals[i%bc.n]
				i++
				var name string
				t0 := time.Now()
				if err := raw.QueryRow(ctx, `SELECT name FROM app.projects WHERE tenant_id = $1 AND id = $2`, string(w.tenant), w.id).Scan(&name); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := db.Tx(w.ctx, func(tx pgx.Tx) error {
					return tx.QueryRow(ctx, `SELECT name FROM app.projects WHERE id = $1`, w.id).Scan(&name)
				}); err != nil {
					b.Fatal(err)
				}
				rawTime += t1.Sub(t0)
				txTime += time.Since(t1)
			}
			n := float64(b.N)
			b.ReportMetric(float64(rawTime.Nanoseconds())/n, "raw-ns/op")
			b.ReportMetric(float64(txTime.Nanoseconds())/n, "tx-ns/op")
			b.ReportMetric(float64(rawTime)/float64(txTime), "throughput-ratio")
		})
	}
}
