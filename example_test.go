package bulkhead_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// databaseURL is the control plane's URL of a fresh, migrated database.
var databaseURL string

func TestMain(m *testing.M) {
	pgtest.Main(m, func() error {
		d, err := pgtest.NewDBForExamples()
		if err == nil {
			databaseURL = d.AdminURL
		}
		return err
	})
}

// Open a minter, onboard a tenant, and work inside its scope: the
// transaction can only ever see and write acme's rows.
func Example() {
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	acme, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "example-acme", Tier: tenant.Pool})
	if err != nil {
		log.Fatal(err)
	}
	// In a server, Middleware puts the principal in the request context.
	ctx = tenant.NewContext(ctx, tenant.Principal{Subject: "u1", TenantID: acme.ID, Role: tenant.Admin})
	projects, err := db.Table(ctx, "projects")
	if err != nil {
		log.Fatal(err)
	}
	err = db.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+projects+` (name) VALUES ('Launch')`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+projects).Scan(&n); err != nil {
			return err
		}
		fmt.Println("acme sees", n, "project")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: acme sees 1 project
}

// Middleware verifies the bearer token; DB.Tx then works as the tenant
// the token names, and nothing in the handler can choose another.
func ExampleMiddleware() {
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	t, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "example-mw", Tier: tenant.Silo})
	if err != nil {
		log.Fatal(err)
	}
	hash, _ := (&identity.Hasher{}).Hash(ctx, "correct horse")
	u, err := db.Postgres().CreateUser(ctx, t.ID, "ada@example.test", hash, tenant.Member)
	if err != nil {
		log.Fatal(err)
	}
	token, _, err := auth.IssueUserToken(ctx, u, t)
	if err != nil {
		log.Fatal(err)
	}
	h := bulkhead.Middleware(auth, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		projects, err := db.Table(r.Context(), "projects")
		if err != nil {
			http.Error(w, "no tenant", http.StatusUnauthorized)
			return
		}
		var n int
		err = db.Tx(r.Context(), func(tx pgx.Tx) error {
			return tx.QueryRow(r.Context(), `SELECT count(*) FROM `+projects).Scan(&n)
		})
		if err != nil {
			http.Error(w, "failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d projects in a silo", n)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tok := range []string{token, "forged." + token} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%d %s\n", res.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// 200 0 projects in a silo
	// 401 unauthorized
}

// Business code holds no keys: it opens bulkhead with its own login role
// and runs only a context vended to it.
func ExampleWithSigned() {
	ctx := context.Background()
	minter, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL})
	if err != nil {
		log.Fatal(err)
	}
	defer minter.Close()
	t, _, err := minter.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "example-fn", Tier: tenant.Pool})
	if err != nil {
		log.Fatal(err)
	}
	fn, err := minter.Postgres().CreateFunction(ctx, "example_"+string(t.ID)[:8])
	if err != nil {
		log.Fatal(err)
	}
	// The control plane vends a context bound to the function's login role
	// (POST /v1/auth/context does this over HTTP).
	vended, err := minter.Mint(ctx, tenant.Principal{TenantID: t.ID, Role: tenant.Member}, bulkhead.MintOptions{Audience: fn.LoginRole})
	if err != nil {
		log.Fatal(err)
	}

	// In the function:
	db, err := bulkhead.Open(ctx, bulkhead.Config{AppDatabaseURL: pgURL(fn.LoginRole, fn.Password)})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	fctx, err := bulkhead.WithSigned(ctx, vended.Token, vended.Placement)
	if err != nil {
		log.Fatal(err)
	}
	err = db.Tx(fctx, func(tx pgx.Tx) error {
		projects, _ := bulkhead.Table(fctx, "projects")
		_, err := tx.Exec(fctx, `INSERT INTO `+projects+` (name) VALUES ('From a function')`)
		return err
	})
	fmt.Println("insert:", err)
	_, err = db.Mint(ctx, tenant.Principal{TenantID: t.ID}, bulkhead.MintOptions{})
	fmt.Println("mint:", err != nil)
	// Output:
	// insert: <nil>
	// mint: true
}

func pgURL(user, password string) string {
	d := &pgtest.DB{AdminURL: databaseURL}
	return d.URL(user, password)
}
