package bulkhead_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// openWithConns opens a minter on a database of its own whose pools, the
// business pool DB.Tx uses among them, hold at most n connections.
func openWithConns(t *testing.T, n int) *bulkhead.DB {
	t.Helper()
	databaseURL := pgtest.NewDB(t).AdminURL
	sep := "?"
	if strings.Contains(databaseURL, "?") {
		sep = "&"
	}
	db, err := bulkhead.Open(context.Background(), bulkhead.Config{DatabaseURL: databaseURL + sep + "pool_max_conns=" + strconv.Itoa(n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestTxInterleavedTenants runs DB.Tx for three tenants (two in the pool,
// one in a silo) from several goroutines over a business pool of two
// connections, so that each connection serves one tenant after another,
// with every shape of transaction business code may make: a first
// statement sent with BEGIN and the context (QueryRow, Query without
// arguments, a named prepared statement), one sent after them (Exec
// without arguments), a write that fails and rolls back, a setting left
// on the session, and nothing at all. Each transaction must read its own
// tenant's row alone and nothing another tenant's transaction left behind.
func TestTxInterleavedTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openWithConns(t, 2)
	type tn struct {
		slug  string
		ctx   context.Context
		table string
	}
	var tenants []tn
	for _, c := range []struct {
		slug string
		tier tenant.Tier
	}{{"mix-a", tenant.Pool}, {"mix-b", tenant.Pool}, {"mix-c", tenant.Silo}} {
		created, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(c.slug), Tier: c.tier})
		if err != nil {
			t.Fatal(err)
		}
		tctx := tenant.NewContext(ctx, tenant.Principal{Subject: "u-" + c.slug, TenantID: created.ID, Role: tenant.Admin})
		table, err := db.Table(tctx, "projects")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Tx(tctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` (name) VALUES ($1)`, "canary-"+c.slug)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, tn{c.slug, tctx, table})
	}
	errFn := errors.New("fn failed")
	// Each shape returns what the transaction read: its tenant's names.
	shapes := []struct {
		name string
		fn   func(tx pgx.Tx, tt tn) (string, error)
	}{
		{"QueryRow", func(tx pgx.Tx, tt tn) (string, error) {
			var names string
			err := tx.QueryRow(ctx, `SELECT string_agg(name, ',' ORDER BY name) || coalesce(current_setting('planted.by', true), '') FROM `+tt.table+` WHERE name LIKE $1`, "%").Scan(&names)
			return names, err
		}},
		{"Query without arguments", func(tx pgx.Tx, tt tn) (string, error) {
			rows, err := tx.Query(ctx, `SELECT name FROM `+tt.table+` ORDER BY name`)
			if err != nil {
				return "", err
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			return strings.Join(names, ","), err
		}},
		{"Exec without arguments first", func(tx pgx.Tx, tt tn) (string, error) {
			if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '8MB'`); err != nil {
				return "", err
			}
			var names string
			err := tx.QueryRow(ctx, `SELECT string_agg(name, ',' ORDER BY name) FROM `+tt.table).Scan(&names)
			return names, err
		}},
		{"prepared", func(tx pgx.Tx, tt tn) (string, error) {
			if _, err := tx.Prepare(ctx, "mix", `SELECT string_agg(name, ',' ORDER BY name) FROM `+tt.table+` WHERE name LIKE $1`); err != nil {
				return "", err
			}
			var names string
			err := tx.QueryRow(ctx, "mix", "%").Scan(&names)
			return names, err
		}},
		{"a write that fails", func(tx pgx.Tx, tt tn) (string, error) {
			if _, err := tx.Exec(ctx, `INSERT INTO `+tt.table+` (name) VALUES ($1)`, "leak-"+tt.slug); err != nil {
				return "", err
			}
			return "", errFn
		}},
		{"a setting left on the session", func(tx pgx.Tx, tt tn) (string, error) {
			var names string
			err := tx.QueryRow(ctx, `SELECT string_agg(name, ',' ORDER BY name) FROM `+tt.table+`, set_config('planted.by', $1, false)`, tt.slug).Scan(&names)
			return names, err // committed: the setting outlives the transaction
		}},
		{"nothing", func(tx pgx.Tx, tt tn) (string, error) { return "", errFn }},
	}
	const workers, rounds = 6, 42
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				tt := tenants[(w+i)%len(tenants)]
				s := shapes[(w*7+i)%len(shapes)]
				var got string
				err := db.Tx(tt.ctx, func(tx pgx.Tx) error {
					var err error
					got, err = s.fn(tx, tt)
					return err
				})
				switch {
				case errors.Is(err, errFn):
				case err != nil:
					t.Errorf("%s, %s: %v", tt.slug, s.name, err)
				case got != "canary-"+tt.slug && got != "canary-"+tt.slug+tt.slug:
					// Its own setting, which its own earlier transaction
					// left, it may read: one principal's transactions
					// share a session.
					t.Errorf("%s, %s: read %q, want its own canary alone", tt.slug, s.name, got)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, tt := range tenants {
		var n int
		if err := db.Tx(tt.ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM `+tt.table).Scan(&n)
		}); err != nil || n != 1 {
			t.Errorf("%s has %d rows (%v): a failed transaction wrote", tt.slug, n, err)
		}
	}
}

// TestTxSessionPerPrincipal: DB.Tx resets business code's connection
// before it serves another principal of the same tenant (another subject,
// or the same subject in another role), and not between one principal's
// transactions, which share a session.
func TestTxSessionPerPrincipal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openWithConns(t, 1)
	created, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "per-principal", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	as := func(sub string, role tenant.Role) context.Context {
		return tenant.NewContext(ctx, tenant.Principal{Subject: sub, TenantID: created.ID, Role: role})
	}
	// swap reads the setting the session holds and leaves its own.
	swap := func(pctx context.Context, leave string) string {
		t.Helper()
		var held string
		if err := db.Tx(pctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT coalesce(current_setting('planted.by', true), ''), set_config('planted.by', $1, false)`, leave).Scan(&held, new(string))
		}); err != nil {
			t.Fatal(err)
		}
		return held
	}
	for _, step := range []struct {
		name string
		ctx  context.Context
		want string // what the session holds when it starts
	}{
		{"u1 as member", as("u1", tenant.Member), ""},
		{"u1 as member again", as("u1", tenant.Member), "u1 as member"},
		{"u2 as member", as("u2", tenant.Member), ""},
		{"u1 as member after u2", as("u1", tenant.Member), ""},
		{"u1 as admin", as("u1", tenant.Admin), ""},
		{"u1 as admin again", as("u1", tenant.Admin), "u1 as admin"},
	} {
		if got := swap(step.ctx, step.name); got != step.want {
			t.Errorf("%s: the session holds %q, want %q", step.name, got, step.want)
		}
	}
}
