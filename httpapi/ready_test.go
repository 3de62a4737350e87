package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// TestReadyz: GET /readyz answers 200 without credentials while the
// server reaches its database, 503 not_ready (with Retry-After, and no
// word of the cause) while the database refuses connections, and 200
// again once it takes them.
func TestReadyz(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	if r := s.Do(t, "GET", "/readyz", "", nil); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"status":"ready"}` {
		t.Fatalf("readyz: %s", r)
	}

	// The database stops taking connections, and its sessions end: the
	// server's pools have nothing left to answer with.
	u, err := url.Parse(s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	ctx := context.Background()
	other, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(ctx) }) // after the cleanup below
	db := pgx.Identifier{s.PG.Name}.Sanitize()
	allow := func(on bool) {
		t.Helper()
		v := "false"
		if on {
			v = "true"
		}
		if _, err := other.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS `+v); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	t.Cleanup(func() { allow(true) })
	if _, err := other.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, s.PG.Name); err != nil {
		t.Fatal(err)
	}
	r := waitReady(t, s, 503)
	if r.Code() != "not_ready" || r.Header.Get("Retry-After") == "" || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("readyz with the database refusing connections: %s %v", r, r.Header)
	}
	for _, cause := range []string{s.PG.Name, "connect", "allow", "bulkhead_gw", "postgres", "terminat"} {
		if strings.Contains(strings.ToLower(string(r.Body)), cause) {
			t.Errorf("the 503 tells the client %q: %s", cause, r.Body)
		}
	}
	// /healthz, which touches no database, still says the process lives.
	if r := s.Do(t, "GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz while the database is down: %s", r)
	}

	allow(true)
	waitReady(t, s, 200)
}

// waitReady asks GET /readyz until it answers status: its answer is
// shared for a second, so a change shows within a few.
func waitReady(t *testing.T, s *apitest.Server, status int) *apitest.Response {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.Do(t, "GET", "/readyz", "", nil)
		if r.Status == status {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still answers %s, want %d", r, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
