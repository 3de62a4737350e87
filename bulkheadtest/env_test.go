package bulkheadtest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/bulkheadtest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestTenant(t *testing.T) {
	t.Parallel()
	env := bulkheadtest.Start(t)
	for _, tt := range []struct {
		name       string
		tier       tenant.Tier
		opts       []bulkheadtest.TenantOption
		plan       bulkheadtest.Plan
		deleteCode int // what the admin gets for DELETE on the data API
	}{
		{"premium-pool", bulkheadtest.Pool, nil, bulkheadtest.Premium, http.StatusNoContent},
		{"basic-silo", bulkheadtest.Silo, []bulkheadtest.TenantOption{bulkheadtest.Basic}, bulkheadtest.Basic, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := env.Tenant(t, tt.name, tt.tier, tt.opts...)
			if tn.Slug != tenant.Slug(tt.name) || tn.Tier != tt.tier || tn.Plan != tt.plan || tn.AdminToken == "" || tn.MemberToken == "" {
				t.Fatalf("Tenant(%q, %q) = %+v", tt.name, tt.tier, tn)
			}
			if _, err := tenant.ParseID(string(tn.ID)); err != nil {
				t.Errorf("ID %q: %v", tn.ID, err)
			}
			id := tn.Insert(t, "projects", map[string]any{"name": "p1"})
			rows := tn.Rows(t, "projects")
			if len(rows) != 1 || rows[0]["id"] != id || rows[0]["name"] != "p1" || rows[0]["tenant_id"] != string(tn.ID) {
				t.Fatalf("Rows after Insert = %v, want the one row %s", rows, id)
			}
			req, _ := http.NewRequest("DELETE", env.URL()+"/rest/v1/projects?id=eq."+id, nil)
			req.Header.Set("Authorization", "Bearer "+tn.AdminToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.deleteCode {
				t.Errorf("DELETE as a %s admin: %d, want %d", tt.plan, res.StatusCode, tt.deleteCode)
			}
		})
	}
}

func TestContextAndFunctionDB(t *testing.T) {
	t.Parallel()
	env := bulkheadtest.Start(t)
	acme := env.Tenant(t, "acme", bulkheadtest.Pool)
	globex := env.Tenant(t, "globex", bulkheadtest.Silo)
	acme.Insert(t, "projects", map[string]any{"name": "acme-1"})
	globex.Insert(t, "projects", map[string]any{"name": "globex-1"})
	db := env.FunctionDB(t)
	if env.FunctionDB(t) != db {
		t.Error("FunctionDB returned another DB on the second call")
	}
	if !strings.HasPrefix(db.AppRole(), "bulkhead_fn_") {
		t.Errorf("FunctionDB's login role is %q, want a function's", db.AppRole())
	}
	for _, tt := range []struct {
		tn   *bulkheadtest.Tenant
		want []string
	}{{acme, []string{"acme-1"}}, {globex, []string{"globex-1"}}} {
		t.Run(string(tt.tn.Slug), func(t *testing.T) {
			ctx := tt.tn.Context(t)
			projects, err := bulkhead.Table(ctx, "projects")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			err = db.Tx(ctx, func(tx pgx.Tx) error {
				rows, _ := tx.Query(ctx, `SELECT name FROM `+projects+` ORDER BY name`)
				got, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if err != nil {
				t.Fatalf("Tx: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("projects seen by %s's function (-want +got):\n%s", tt.tn.Slug, diff)
			}
			// The context is bound to the function's login role: under the
			// gateway's it does not verify, and no row is reached.
			var n int
			err = env.Minter().Tx(ctx, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+projects).Scan(&n)
			})
			if err == nil && n != 0 {
				t.Errorf("the minter's login role used %s's function context and counted %d rows", tt.tn.Slug, n)
			}
		})
	}
	if _, err := db.Mint(t.Context(), tenant.Principal{TenantID: acme.ID, Role: tenant.Admin}, bulkhead.MintOptions{}); !errors.Is(err, bulkhead.ErrNotMinter) {
		t.Errorf("FunctionDB().Mint: %v, want ErrNotMinter", err)
	}
}

func TestIsolatedRefusesEmptyVictim(t *testing.T) {
	t.Parallel()
	failures := runTest(func(tb testing.TB) {
		env := bulkheadtest.Start(tb)
		a := env.Tenant(tb, "empty", bulkheadtest.Pool)
		b := env.Tenant(tb, "attacker", bulkheadtest.Pool)
		env.AssertIsolated(tb, b, a)
		t.Error("AssertIsolated returned for a victim without rows")
	})
	if len(failures) != 1 || !strings.Contains(failures[0], "has no rows") {
		t.Errorf("failures = %q, want one saying the victim has no rows", failures)
	}
}

// TestFunctionRoleDropped checks that an Env leaves no login role behind:
// roles belong to the cluster, which runs may share.
func TestFunctionRoleDropped(t *testing.T) {
	t.Parallel()
	var role string
	t.Run("env", func(t *testing.T) {
		role = bulkheadtest.Start(t).FunctionDB(t).AppRole()
	})
	conn, err := pgx.Connect(t.Context(), bulkheadtest.Start(t).AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_roles WHERE rolname = $1`, role).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if role == "" || n != 0 {
		t.Errorf("login role %q: %d left after its Env stopped, want 0", role, n)
	}
}
