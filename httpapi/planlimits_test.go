package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// TestPlanLimits: a program's own handlers behind bulkhead.Middleware and
// httpapi.PlanLimits are held to each tenant's plan. A tenant past its
// rate gets 429 rate_limited with Retry-After and never reaches the
// handler, while another tenant's requests all go through; a tenant whose
// one transaction slot is taken gets 429 too_many_transactions until it
// is given back, while another tenant is served meanwhile; each tenant's
// DB.Tx runs under its own plan's statement timeout and parallel workers,
// and a statement past the timeout fails. A platform principal passes (DB.Tx refuses it), and a
// business handle or malformed limits are refused up front.
func TestPlanLimits(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ctx := t.Context()
	noisy := s.CreateTenantOnPlan(t, "pl-noisy", "pool", "basic")
	quiet := s.CreateTenantOnPlan(t, "pl-quiet", "pool", "premium")
	busy := s.CreateTenantOnPlan(t, "pl-busy", "silo", "premium")
	var reached sync.Map // tenant token → requests the handler saw
	entered, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	tx := func(w http.ResponseWriter, r *http.Request, sql string) {
		n, _ := reached.LoadOrStore(r.Header.Get("Authorization"), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		var out string
		err := s.DB.Tx(r.Context(), func(tx pgx.Tx) error {
			return tx.QueryRow(r.Context(), sql).Scan(&out)
		})
		if err != nil {
			out = "error:" + fault.CodeOf(err)
		}
		io.WriteString(w, out)
	}
	mux.HandleFunc("GET /timeout", func(w http.ResponseWriter, r *http.Request) { tx(w, r, `SHOW statement_timeout`) })
	mux.HandleFunc("GET /workers", func(w http.ResponseWriter, r *http.Request) { tx(w, r, `SHOW max_parallel_workers_per_gather`) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) { tx(w, r, `SELECT pg_sleep(3)::text`) })
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "held")
	})
	// Two programs with the same handlers and different plans: in the
	// first the basic plan is tight on rate; in the second the premium
	// plan allows one transaction at a time and short statements.
	serve := func(limits map[string]httpapi.Limit) string {
		mw, err := httpapi.PlanLimits(ctx, s.DB, limits)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(bulkhead.Middleware(s.Auth, nil)(mw(mux)))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	rated := serve(map[string]httpapi.Limit{
		"basic":   {Rate: 1, Burst: 3, Concurrent: 4, StatementTimeout: 2 * time.Second},
		"premium": {Rate: 1000, Burst: 1000, Concurrent: 8, StatementTimeout: 15 * time.Second},
	})
	narrow := serve(map[string]httpapi.Limit{
		"basic":   {Rate: 1000, Burst: 1000, Concurrent: 4, StatementTimeout: 2 * time.Second},
		"premium": {Rate: 1000, Burst: 1000, Concurrent: 1, StatementTimeout: 300 * time.Millisecond, ParallelWorkers: 1},
	})
	request := func(url, token string) (*http.Response, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	get := func(url, token string) (*http.Response, string) {
		t.Helper()
		resp, body, err := request(url, token)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	refused := func(resp *http.Response, body, code string) bool {
		return resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" &&
			resp.Header.Get("Content-Type") == "application/problem+json" && strings.Contains(body, `"code":"`+code+`"`)
	}

	// Each tenant's statements run under its own plan's timeout.
	for _, tt := range []struct {
		url, token, want string
	}{{rated, quiet.AdminToken, "15s"}, {rated, noisy.AdminToken, "2s"}, {narrow, busy.AdminToken, "300ms"}} {
		if resp, body := get(tt.url+"/timeout", tt.token); resp.StatusCode != http.StatusOK || body != tt.want {
			t.Errorf("statement_timeout in DB.Tx: %d %q, want %q", resp.StatusCode, body, tt.want)
		}
	}
	// And its plan's parallel workers: none unless the plan says.
	for _, tt := range []struct {
		url, token, want string
	}{{rated, quiet.AdminToken, "0"}, {narrow, busy.AdminToken, "1"}} {
		if resp, body := get(tt.url+"/workers", tt.token); resp.StatusCode != http.StatusOK || body != tt.want {
			t.Errorf("max_parallel_workers_per_gather in DB.Tx: %d %q, want %q", resp.StatusCode, body, tt.want)
		}
	}
	if resp, body := get(narrow+"/slow", busy.AdminToken); resp.StatusCode != http.StatusOK || body != "error:statement_timeout" {
		t.Errorf("a 3 s statement under the busy plan's 300ms: %d %q", resp.StatusCode, body)
	}

	// The noisy tenant past its rate (1 a second, burst 3; one of the
	// burst is spent above) is refused before its handler; the quiet
	// tenant never is.
	limited := 0
	for range 20 {
		resp, body := get(rated+"/timeout", noisy.AdminToken)
		switch {
		case resp.StatusCode == http.StatusOK:
		case refused(resp, body, "rate_limited"):
			limited++
		default:
			t.Fatalf("the noisy tenant: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if resp, body := get(rated+"/timeout", quiet.AdminToken); resp.StatusCode != http.StatusOK || body != "15s" {
			t.Fatalf("the quiet tenant while the other floods: %d %s", resp.StatusCode, body)
		}
	}
	n, _ := reached.Load("Bearer " + noisy.AdminToken)
	if saw := n.(*atomic.Int32).Load(); limited < 10 || int(saw) != 21-limited {
		t.Fatalf("%d of 20 requests over a 1/s, burst 3 plan were refused, and the handler saw %d of the tenant's 21", limited, saw)
	}

	// The busy tenant's one transaction slot.
	done := make(chan string)
	go func() {
		resp, body, err := request(narrow+"/hold", busy.AdminToken)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- resp.Status + " " + body
	}()
	<-entered
	if resp, body := get(narrow+"/timeout", busy.AdminToken); !refused(resp, body, "too_many_transactions") {
		t.Errorf("a second request while the busy tenant's slot is held: %d %s", resp.StatusCode, body)
	}
	if resp, body := get(narrow+"/timeout", quiet.AdminToken); resp.StatusCode != http.StatusOK || body != "300ms" {
		t.Errorf("another tenant while the busy tenant's slot is held: %d %s", resp.StatusCode, body)
	}
	close(release)
	if got := <-done; got != "200 OK held" {
		t.Errorf("the held request: %s", got)
	}
	if resp, body := get(narrow+"/timeout", busy.AdminToken); resp.StatusCode != http.StatusOK || body != "300ms" {
		t.Errorf("the busy tenant once its slot is back: %d %s", resp.StatusCode, body)
	}

	// A platform principal has no tenant and no plan: it passes, and
	// DB.Tx refuses it.
	if resp, body := get(rated+"/timeout", s.AdminToken); resp.StatusCode != http.StatusOK || body != "error:no_tenant" {
		t.Errorf("the platform admin: %d %q", resp.StatusCode, body)
	}

	// Placed outside bulkhead.Middleware, it has no principal to go by:
	// it refuses rather than serve unlimited.
	mw, err := httpapi.PlanLimits(ctx, s.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	outside := httptest.NewServer(mw(bulkhead.Middleware(s.Auth, nil)(mux)))
	t.Cleanup(outside.Close)
	if resp, body := get(outside.URL+"/timeout", noisy.AdminToken); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"code":"no_tenant"`) {
		t.Errorf("outside bulkhead.Middleware: %d %s", resp.StatusCode, body)
	}

	// Up front: malformed limits, and a handle without keys.
	for _, bad := range []httpapi.Limit{{Rate: 0, Burst: 1, Concurrent: 1}, {Rate: 1, Burst: 0, Concurrent: 1}, {Rate: 1, Burst: 1, Concurrent: 0}, {Rate: 1, Burst: 1, Concurrent: 1, StatementTimeout: -time.Second}, {Rate: 1, Burst: 1, Concurrent: 1, ParallelWorkers: -1}} {
		if _, err := httpapi.PlanLimits(ctx, s.DB, map[string]httpapi.Limit{"basic": bad}); fault.CodeOf(err) != "invalid_plan_limits" {
			t.Errorf("limits %+v: %v, want invalid_plan_limits", bad, err)
		}
	}
	// Login roles are the cluster's, not the test database's: a name of
	// its own, dropped at the end, lets the test run again in the cluster.
	fn, err := s.DB.Postgres().CreateFunction(ctx, "planlimits_"+strings.ReplaceAll(busy.UUID[:8], "-", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DB.Postgres().DeleteFunction(context.Background(), fn.Name) })
	business, err := bulkhead.Open(context.Background(), bulkhead.Config{AppDatabaseURL: s.PG.URL(fn.LoginRole, fn.Password)})
	if err != nil {
		t.Fatal(err)
	}
	defer business.Close()
	if _, err := httpapi.PlanLimits(ctx, business, nil); err != bulkhead.ErrNotMinter {
		t.Errorf("a business handle: %v, want ErrNotMinter", err)
	}
}
