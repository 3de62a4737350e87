package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// PlanLimits holds a program's own handlers to each tenant's plan: here
// a plan of two requests (and a 2 s statement timeout, which the
// handler's DB.Tx runs under), after which the tenant is told to slow
// down before the handler runs.
func ExamplePlanLimits() {
	ctx := context.Background()
	d, err := pgtest.NewDBForExamples()
	if err != nil {
		log.Fatal(err)
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: d.AdminURL})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	t, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "example-plan", Tier: tenant.Pool, Plan: "basic"})
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
	limit, err := httpapi.PlanLimits(ctx, db, map[string]httpapi.Limit{
		"basic":   {Rate: 0.001, Burst: 2, Concurrent: 2, StatementTimeout: 2 * time.Second},
		"premium": httpapi.DefaultLimits["premium"],
	})
	if err != nil {
		log.Fatal(err)
	}
	h := bulkhead.Middleware(auth, nil)(limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var timeout string
		err := db.Tx(r.Context(), func(tx pgx.Tx) error {
			return tx.QueryRow(r.Context(), `SHOW statement_timeout`).Scan(&timeout)
		})
		if err != nil {
			http.Error(w, "failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "served under statement_timeout %s", timeout)
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests {
			var p httpapi.Problem
			json.Unmarshal(body, &p)
			fmt.Printf("%d %s, retry later: %t\n", res.StatusCode, p.Code, res.Header.Get("Retry-After") != "")
			continue
		}
		fmt.Printf("%d %s\n", res.StatusCode, body)
	}
	// Output:
	// 200 served under statement_timeout 2s
	// 200 served under statement_timeout 2s
	// 429 rate_limited, retry later: true
}
