package probe_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/verify/probe"
)

// TestBulkhead probes bulkhead's own server, pool tenant A against silo
// tenant B: nothing leaks, every check could have seen a leak, and the
// canaries are gone afterwards.
func TestBulkhead(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := s.CreateTenant(t, "probe-a", "pool")
	b := s.CreateTenant(t, "probe-b", "silo")
	rep, err := probe.Run(t.Context(), probe.Config{BaseURL: s.URL, API: probe.Bulkhead(), TokenA: a.AdminToken, TokenB: b.AdminToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := leaked(rep); len(got) > 0 {
		t.Errorf("leaks: %q\n%s", got, textOf(rep))
	}
	for _, r := range rep.Results {
		if r.Verdict != probe.Pass {
			t.Errorf("%s %s %s %s: %s: %s", r.Suite, r.Name(), r.Method, r.URL, r.Verdict, r.Reason)
		}
	}
	want := []string{"delete", "filter-id", "filter-tenant", "filter-value", "list", "plant", "read", "reference", "update", "upsert"}
	if diff := cmp.Diff(want, ranAsA(rep)); diff != "" {
		t.Errorf("checks run as A (-want +got):\n%s", diff)
	}
	// Every tampered token was made and tried.
	for _, v := range probe.Variants {
		n := 0
		for _, r := range rep.Results {
			if r.Token == v {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no check ran with the %s token; notes: %q", v, rep.Notes)
		}
	}
	if len(rep.Notes) != 1 { // the note on DELETE /v1/tenants/{id}
		t.Errorf("notes: %q", rep.Notes)
	}
	for _, tok := range []string{a.AdminToken, b.AdminToken} {
		for _, p := range []string{"/rest/v1/projects", "/rest/v1/tasks"} {
			if r := s.Do(t, "GET", p, tok, nil); r.Status != http.StatusOK || string(r.Body) != "[]" {
				t.Errorf("after the probe, GET %s: %s, want 200 []", p, r)
			}
		}
	}
}

// TestBulkheadCanFail opens the pool's row policies on purpose and
// demands that the probe notices, pool tenant A against pool tenant B.
func TestBulkheadCanFail(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := s.CreateTenant(t, "probe-a", "pool")
	b := s.CreateTenant(t, "probe-b", "pool")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`ALTER POLICY tenant_select ON app.projects USING (true)`,
		`ALTER POLICY tenant_select ON app.tasks USING (true)`,
		`ALTER POLICY tenant_update ON app.tasks USING (true) WITH CHECK (true)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := probe.Run(t.Context(), probe.Config{BaseURL: s.URL, API: probe.Bulkhead(), TokenA: a.AdminToken, TokenB: b.AdminToken})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rep.Results {
		if r.Verdict == probe.Leak {
			got[r.Suite+" "+r.Name()] = true
		}
	}
	for _, want := range []string{
		"/rest/v1/projects read", "/rest/v1/projects list", "/rest/v1/projects filter-id",
		"/rest/v1/projects filter-value", "/rest/v1/tasks read", "/rest/v1/tasks update",
	} {
		if !got[want] {
			t.Errorf("with the policies opened, %q did not leak\n%s", want, textOf(rep))
		}
	}
	if !rep.Failed() {
		t.Error("Failed() = false")
	}
	if testing.Verbose() {
		t.Log(textOf(rep))
	}
}
