package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// writer posts projects named prefix-N as token until stop is closed,
// and returns the names it was told were created (201) and the other
// answers it got, by status and code. It runs apart from the test's
// goroutine, so it reports rather than fails.
func writer(s *apitest.Server, token, prefix string, stop <-chan struct{}) (created []string, other map[string]int) {
	other = map[string]int{}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return created, other
		default:
		}
		name := fmt.Sprintf("%s-%d", prefix, i)
		body, _ := json.Marshal(map[string]string{"name": name})
		req, _ := http.NewRequest("POST", s.URL+"/rest/v1/projects", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			other["transport: "+err.Error()]++
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var p struct {
			Code string `json:"code"`
		}
		json.Unmarshal(b, &p)
		switch {
		case res.StatusCode == http.StatusCreated:
			created = append(created, name)
		case res.StatusCode == http.StatusTooManyRequests:
			time.Sleep(50 * time.Millisecond)
		default:
			other[fmt.Sprintf("%d %s", res.StatusCode, p.Code)]++
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMoveUnderLoad: acme's users write through the data API without a
// pause while acme moves into a silo and back, and globex's users do the
// same beside it. Every write acme was told succeeded is, at the end,
// exactly once in acme's place, and nothing of acme is left in a silo;
// acme's users were told to wait, or refused a write, never 401 or 5xx. globex was served
// throughout and reads only its own rows. Every column of acme's rows
// (NULLs, unicode, long text, time stamps in other time zones, booleans,
// ids, the tasks' references to their projects) arrives unchanged. acme's
// admin reads its move in the audit trail; globex's admin reads none of it.
func TestMoveUnderLoad(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) { c.MoveSettle = 2500 * time.Millisecond }})
	a := seed(t, s, "acme", "pool")
	b := seed(t, s, "globex", "pool")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	long := strings.Repeat("ß😀\u00e9\u200d'\"\\", 1000)[:9990]
	if _, err := conn.Exec(ctx, `INSERT INTO app.projects (tenant_id, id, name, description, created_at) VALUES
		($1, '00000000-0000-4000-8000-000000000001', 'ünïcødé 😀 ''quoted'' \ back', NULL, '1999-12-31 23:59:59.999999-11:30'),
		($1, '00000000-0000-4000-8000-000000000002', 'long', $2, '2038-01-19 03:14:08+14')`, a.UUID, long); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO app.tasks (tenant_id, id, project_id, title, done, created_at) VALUES
		($1, '00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-000000000001', 'done', true, '2000-02-29 12:00:00.000001+05:45'),
		($1, '00000000-0000-4000-8000-00000000000b', '00000000-0000-4000-8000-000000000002', 'not done', false, 'epoch')`, a.UUID); err != nil {
		t.Fatal(err)
	}
	// Every column of every row of acme, wherever it lives, as text.
	rowsOf := func(uuid string) []string {
		t.Helper()
		var placement string
		if err := conn.QueryRow(ctx, `SELECT placement FROM bulkhead_control.tenants WHERE id = $1`, uuid).Scan(&placement); err != nil {
			t.Fatal(err)
		}
		if placement == "pool" {
			placement = "app"
		}
		rows, err := conn.Query(ctx, `SELECT 'projects ' || row_to_json(p)::text FROM "`+placement+`".projects p WHERE tenant_id = $1
			UNION ALL SELECT 'tasks ' || row_to_json(k)::text FROM "`+placement+`".tasks k WHERE tenant_id = $1`, uuid)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	before := rowsOf(a.UUID)
	if len(before) != 6 {
		t.Fatalf("acme's rows: %v", before)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var aCreated, bCreated []string
	var aOther, bOther map[string]int
	wg.Add(2)
	go func() { defer wg.Done(); aCreated, aOther = writer(s, a.MemberToken, "a", stop) }()
	go func() { defer wg.Done(); bCreated, bOther = writer(s, b.MemberToken, "b", stop) }()
	for _, tier := range []string{"silo", "pool"} {
		if r := s.Do(t, "POST", "/v1/tenants/acme/move", s.AdminToken, map[string]string{"tier": tier}); r.Status != http.StatusOK {
			close(stop)
			wg.Wait()
			t.Fatalf("move acme to %s: %s", tier, r)
		}
		time.Sleep(300 * time.Millisecond) // some writes in the new place
	}
	close(stop)
	wg.Wait()
	t.Logf("acme: %d written, other answers %v; globex: %d written, other answers %v", len(aCreated), aOther, len(bCreated), bOther)

	// A request that found acme active just before the stop runs its
	// statement after it: PostgreSQL refuses the context (403 for a
	// write). Nothing else: no 401, no 5xx.
	for k := range aOther {
		if k != "503 tenant_moving" && k != "403 row_security_violation" {
			t.Errorf("acme's users got %d × %s during the move, want only 201, 503 tenant_moving or 403 row_security_violation", aOther[k], k)
		}
	}
	if len(bOther) != 0 {
		t.Errorf("globex's users were refused during acme's move: %v", bOther)
	}
	if len(aCreated) == 0 || len(bCreated) == 0 {
		t.Fatalf("the writers wrote nothing: acme %d, globex %d", len(aCreated), len(bCreated))
	}
	names := func(uuid string) map[string]int {
		t.Helper()
		rows, err := conn.Query(ctx, `SELECT name FROM app.projects WHERE tenant_id = $1`, uuid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, n := range got {
			m[n]++
		}
		return m
	}
	for who, want := range map[string][]string{a.UUID: aCreated, b.UUID: bCreated} {
		got := names(who)
		for _, n := range want {
			if got[n] != 1 {
				t.Errorf("a write answered 201 (%s) is in the pool %d times, want once", n, got[n])
			}
		}
	}
	var silos int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, "t_"+strings.ReplaceAll(a.UUID, "-", "")).Scan(&silos); err != nil || silos != 0 {
		t.Fatalf("acme's silo is still there (%d, %v)", silos, err)
	}
	var after []string
	for _, r := range rowsOf(a.UUID) {
		if !strings.Contains(r, `"name":"a-`) {
			after = append(after, r)
		}
	}
	if !slices.Equal(after, before) {
		t.Errorf("acme's rows changed by the moves:\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	// globex reads its own rows only, acme its own.
	for _, c := range []*canary{a, b} {
		r := s.Do(t, "GET", "/rest/v1/projects?select=tenant_id&limit=10000", c.MemberToken, nil)
		var rows []map[string]string
		r.JSON(t, &rows)
		for _, row := range rows {
			if row["tenant_id"] != c.UUID {
				t.Fatalf("%s reads a row of %s", c.Slug, row["tenant_id"])
			}
		}
	}

	s.Sequence(t)
	moves := func(token string) (steps []string) {
		t.Helper()
		r := s.Do(t, "GET", "/v1/audit?action=tenants:Move&limit=1000", token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("reading the trail: %s", r)
		}
		var p struct {
			Events []struct {
				TenantID string          `json:"tenant_id"`
				Detail   json.RawMessage `json:"detail"`
			} `json:"events"`
		}
		r.JSON(t, &p)
		for _, e := range p.Events {
			var d struct {
				Step string `json:"step"`
			}
			json.Unmarshal(e.Detail, &d)
			steps = append(steps, e.TenantID+"/"+d.Step)
		}
		slices.Sort(steps)
		return steps
	}
	want := []string{a.UUID + "/copied", a.UUID + "/copied", a.UUID + "/done", a.UUID + "/done", a.UUID + "/stopped", a.UUID + "/stopped"}
	if got := moves(s.AdminToken); !slices.Equal(got, want) {
		t.Errorf("the platform's trail of the moves: %v, want %v", got, want)
	}
	if got := moves(a.AdminToken); !slices.Equal(got, want) {
		t.Errorf("acme's admin reads its moves as %v, want %v", got, want)
	}
	if got := moves(b.AdminToken); len(got) != 0 {
		t.Errorf("globex's admin reads acme's moves: %v", got)
	}
}

// TestMovingTenantsUsersAreToldToWait: a server whose cache still holds a
// tenant as active while it moves checks the user afresh; that user is
// told 503 tenant_moving, not 401 invalid_token (which tells a client to
// drop a token that works again in seconds). A login meanwhile is refused
// as a wrong password is, so nobody without a token learns of the move.
func TestMovingTenantsUsersAreToldToWait(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// acme, cached as active by the admin's request; its member unseen.
	if r := s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatal(r)
	}
	if _, err := conn.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'moving', move_to = 'silo' WHERE slug = 'acme'`); err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", a.MemberToken, nil); r.Status != http.StatusServiceUnavailable || r.Code() != "tenant_moving" {
		t.Errorf("a moving tenant's user, its tenant cached as active: %s, want 503 tenant_moving", r)
	}
	right := s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": "acme", "email": "member@acme.test", "password": "pw-member@acme.test"})
	wrong := s.Do(t, "POST", "/v1/auth/token", "", map[string]string{"tenant": "acme", "email": "member@acme.test", "password": "wrong"})
	if right.Status != wrong.Status || right.Code() != wrong.Code() {
		t.Errorf("logging in to a moving tenant: %s; with a wrong password: %s; want the same answer", right, wrong)
	}
}
