package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

type auditPage struct {
	Events []struct {
		Seq       int64  `json:"seq"`
		RequestID string `json:"request_id"`
		TenantID  string `json:"tenant_id"`
		Action    string `json:"action"`
		Decision  string `json:"decision"`
		Code      string `json:"code"`
		Rows      int64  `json:"rows"`
	} `json:"events"`
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	b := seed(t, s, "globex", "silo")
	basic := seedOnPlan(t, s, "initech", "pool", "basic")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A denial is durable before its answer arrives, with the policy
	// statement that decided it.
	r := s.Do(t, "GET", "/rest/v1/projects?tenant_id=eq."+b.UUID, a.MemberToken, nil)
	if r.Status != http.StatusForbidden || r.Code() != "policy_denied" {
		t.Fatalf("naming another tenant: %s", r)
	}
	rid := r.Header.Get("X-Request-Id")
	var stmt string
	if err := conn.QueryRow(ctx, `SELECT event->>'statement' FROM bulkhead_audit.inbox WHERE event->>'request_id' = $1 AND event->>'decision' = 'deny'`, rid).Scan(&stmt); err != nil || stmt != "DenyOtherTenantsKeys" {
		t.Fatalf("denial %s: statement %q, %v; want its event, naming DenyOtherTenantsKeys, before the answer", rid, stmt, err)
	}
	if r := s.Do(t, "GET", "/v1/audit", basic.AdminToken, nil); r.Status != http.StatusForbidden || r.Code() != "policy_denied" {
		t.Fatalf("a basic-plan admin reading the trail: %s", r)
	}
	// A data change through the API is audited by the trigger, with the
	// request's id.
	w := s.Do(t, "POST", "/rest/v1/projects", a.AdminToken, map[string]string{"name": "audited"})
	wid := w.Header.Get("X-Request-Id")
	probe := s.Do(t, "GET", "/v1/tenants/globex", a.AdminToken, nil) // 404 for acme
	s.Sequence(t)

	read := func(token, query string) (*apitest.Response, auditPage) {
		r := s.Do(t, "GET", "/v1/audit"+query, token, nil)
		var p auditPage
		if r.Status == http.StatusOK {
			r.JSON(t, &p)
		}
		return r, p
	}
	_, all := read(s.AdminToken, "?limit=1000")
	seen := map[string]string{}
	for _, e := range all.Events {
		seen[e.RequestID] += e.Action + "/" + e.Decision + ";"
	}
	if !strings.Contains(seen[rid], "data:Select/deny") || !strings.Contains(seen[wid], "data:Insert/allow") ||
		!strings.Contains(seen[probe.Header.Get("X-Request-Id")], "tenants:Get/deny") {
		t.Fatalf("platform view lacks events: %v", seen)
	}
	// acme's admin sees acme's events only.
	_, own := read(a.AdminToken, "")
	if len(own.Events) == 0 {
		t.Fatal("acme's admin sees no events")
	}
	for _, e := range own.Events {
		if e.TenantID != a.UUID {
			t.Fatalf("acme's admin sees an event of tenant %q: %+v", e.TenantID, e)
		}
	}
	for name, q := range map[string]string{"other tenant": "?tenant=globex", "missing tenant": "?tenant=initech"} {
		if r, _ := read(a.AdminToken, q); r.Status != http.StatusNotFound {
			t.Fatalf("acme's admin asking for %s: %s", name, r)
		}
	}
	if r, _ := read(a.MemberToken, ""); r.Status != http.StatusForbidden {
		t.Fatalf("member reading the trail: %s", r)
	}
	_, g := read(b.AdminToken, "?action=data:Insert")
	for _, e := range g.Events {
		if e.TenantID != b.UUID || e.Action != "data:Insert" {
			t.Fatalf("globex's filtered view: %+v", e)
		}
	}
	if r, _ := read(s.AdminToken, "?since=yesterday"); r.Status != http.StatusBadRequest {
		t.Fatalf("bad since: %s", r)
	}
	// The chain verifies.
	rep, err := s.DB.Postgres().VerifyAudit(ctx, nil, nil)
	if err != nil || rep.Break != nil || rep.Events < 5 {
		t.Fatalf("VerifyAudit = %+v %v", rep, err)
	}
}

// TestCrossTenantProbe asks, as acme, for globex's row by id: the answer
// is the same as for an id that exists nowhere, and only platform admins
// learn from the trail that it was a probe.
func TestCrossTenantProbe(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	b := seed(t, s, "globex", "silo")
	hit := s.Do(t, "GET", "/rest/v1/projects?id=eq."+b.ProjectID, a.AdminToken, nil)
	miss := s.Do(t, "GET", "/rest/v1/projects?id=eq."+randomUUID, a.AdminToken, nil)
	if hit.Status != miss.Status || string(hit.Body) != string(miss.Body) {
		t.Fatalf("another tenant's id: %s; a missing id: %s", hit, miss)
	}
	// The check runs after the response; wait for its event (bounded).
	var probes auditPage
	for i := 0; i < 100; i++ {
		s.Sequence(t)
		r := s.Do(t, "GET", "/v1/audit?decision=probe", s.AdminToken, nil)
		r.JSON(t, &probes)
		if len(probes.Events) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(probes.Events) != 1 || probes.Events[0].RequestID != hit.Header.Get("X-Request-Id") || probes.Events[0].TenantID != a.UUID {
		t.Fatalf("platform view of probes: %+v", probes.Events)
	}
	for _, tok := range []string{a.AdminToken, b.AdminToken} {
		var p auditPage
		s.Do(t, "GET", "/v1/audit?limit=1000", tok, nil).JSON(t, &p)
		for _, e := range p.Events {
			if e.Decision == "probe" {
				t.Fatalf("a tenant admin sees the probe finding: %+v", e)
			}
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil)
	s.Do(t, "GET", "/rest/v1/projects", "forged", nil)
	res, err := http.Get(s.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`bulkhead_requests_total{route="GET /rest/v1/{table}",status="2xx",tenant="acme",tier="tenant"}`,
		`bulkhead_denials_total{status="401",tenant="none",tier="none"} 1`,
		`bulkhead_request_duration_seconds_bucket{route="GET /rest/v1/{table}"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s\n%s", want, b)
		}
	}
}

// TestAuditReadBounded: a tenant's admin reading the trail with a filter
// gets pages that examine at most a window of its events: a match beyond
// it comes on a later page, from the next_after the empty page gave. It
// pages by its own events' ids and never sees the chain's sequence
// numbers. A platform administrator's read is not bounded, and has them.
func TestAuditReadBounded(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	g := seed(t, s, "globex", "pool")
	var evs []audit.Event
	for i := range 6000 {
		ev := audit.Event{EventID: uuid.NewString(), At: time.Now(), TenantID: a.UUID, Action: "data:Select", Decision: audit.Allow, Visibility: audit.VisibleTenant}
		switch {
		case i == 5500:
			ev.Action = "data:Truncate"
		case i%100 == 7:
			ev.TenantID = g.UUID // globex's activity, interleaved
		}
		evs = append(evs, ev)
	}
	if err := s.DB.Postgres().AppendEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	s.Sequence(t)
	type page struct {
		Events    []map[string]any `json:"events"`
		NextAfter any              `json:"next_after"`
	}
	read := func(token, query string) page {
		t.Helper()
		r := s.Do(t, "GET", "/v1/audit?action=data:Truncate&limit=10"+query, token, nil)
		var p page
		if r.Status != http.StatusOK {
			t.Fatalf("reading the trail: %s", r)
		}
		r.JSON(t, &p)
		return p
	}
	cursor := func(p page) string {
		t.Helper()
		c, ok := p.NextAfter.(string)
		if !ok {
			t.Fatalf("a tenant's next_after %v (%T); want an event id", p.NextAfter, p.NextAfter)
		}
		return c
	}
	first := read(a.AdminToken, "")
	if len(first.Events) != 0 || cursor(first) == "" {
		t.Fatalf("the first window: %d events, next_after %v; want none, and where it stopped", len(first.Events), first.NextAfter)
	}
	second := read(a.AdminToken, "&after="+cursor(first))
	if len(second.Events) != 1 || second.Events[0]["event_id"] != evs[5500].EventID {
		t.Fatalf("the next window: %+v; want the match", second.Events)
	}
	// A tenant never sees the chain's sequence numbers: they count every
	// tenant's events, and would tell acme how much globex does.
	if _, ok := second.Events[0]["seq"]; ok {
		t.Fatalf("a tenant's event carries its seq: %v", second.Events[0])
	}
	if end := read(a.AdminToken, "&after="+cursor(second)); len(end.Events) != 0 || cursor(end) != cursor(second) {
		t.Fatalf("past the end: %+v; want no events and next_after %s", end, cursor(second))
	}
	// Paging from globex's event, from no event, or from a sequence number
	// is refused alike.
	for what, after := range map[string]string{"globex's event": evs[7].EventID, "no event": uuid.NewString(), "a sequence number": "12"} {
		r := s.Do(t, "GET", "/v1/audit?after="+after, a.AdminToken, nil)
		if r.Status != http.StatusBadRequest || r.Code() != "invalid_parameter" {
			t.Fatalf("acme paging from %s: %s; want 400 invalid_parameter", what, r)
		}
	}
	all := read(s.AdminToken, "&after=0")
	if len(all.Events) != 1 || all.Events[0]["seq"] == nil {
		t.Fatalf("the platform administrator's read: %+v; want the match at once, with its seq", all.Events)
	}
	if _, ok := all.NextAfter.(float64); !ok {
		t.Fatalf("the platform administrator's next_after %v (%T); want a sequence number", all.NextAfter, all.NextAfter)
	}
}

// TestAuditReadHoldsASlot: reading the trail takes one of the tenant's
// transaction slots, as a data request does, so a tenant cannot run more
// of them at once than its plan allows; other tenants are not affected.
func TestAuditReadHoldsASlot(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Config: func(c *httpapi.Config) {
		c.RequestTimeout = time.Minute
		c.RefusalPause = -1
		c.Limits = map[string]httpapi.Limit{"premium": {Rate: 1000, Burst: 1000, Concurrent: 1, StatementTimeout: 30 * time.Second}}
	}})
	a := seed(t, s, "acme", "pool")
	g := seed(t, s, "globex", "pool")
	conn, unlock := lockProjects(t, s)
	// acme's one slot: a data request waiting on the lock.
	done := make(chan *apitest.Response, 1)
	go func() { done <- s.Do(t, "GET", "/rest/v1/projects", a.AdminToken, nil) }()
	awaitLockWait(t, conn)
	if r := s.Do(t, "GET", "/v1/audit", a.AdminToken, nil); r.Status != http.StatusTooManyRequests || r.Code() != "too_many_transactions" {
		t.Fatalf("acme's audit read while its slot is held: %s; want 429 too_many_transactions", r)
	}
	if r := s.Do(t, "GET", "/v1/audit", g.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("globex's audit read meanwhile: %s", r)
	}
	unlock()
	if r := <-done; r.Status != http.StatusOK {
		t.Fatalf("the data request after the lock: %s", r)
	}
	if r := s.Do(t, "GET", "/v1/audit", a.AdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("acme's audit read once its slot is free: %s", r)
	}
}

// TestAuditHoldsNUL: a request whose path or parameters carry a NUL (%00)
// is answered as any other bad request, and audited with U+FFFD in its
// place. Before, PostgreSQL's jsonb refused the event, the request got
// 503 audit_unavailable, and so did every other request, of any tenant,
// whose event shared its commit.
func TestAuditHoldsNUL(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	for _, path := range []string{"/%00", "/rest/v1/pro%00jects", "/rest/v1/projects?id=eq.%00", "/v1/tenants/ac%00me"} {
		r := s.Do(t, "GET", path, a.AdminToken, nil)
		if r.Status >= 500 || r.Status < 400 || r.Code() == "" {
			t.Errorf("GET %s: %s; want a 4xx problem", path, r)
		}
	}
	s.Sequence(t)
	r := s.Do(t, "GET", "/v1/audit?limit=1000", s.AdminToken, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `pro\ufffdjects`) && !strings.Contains(string(r.Body), "pro\uFFFDjects") {
		t.Fatalf("the trail lacks the request for pro%%00jects: %s", r)
	}
	rep, err := s.DB.Postgres().VerifyAudit(context.Background(), nil, nil)
	if err != nil || rep.Break != nil {
		t.Fatalf("VerifyAudit = %+v %v", rep, err)
	}
}

// TestAuditClipsLongPaths: a denial's event holds at most 512 bytes of the
// request's path, so that a tenant's long paths do not fill the trail.
func TestAuditClipsLongPaths(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	long := strings.Repeat("x", 20000)
	for _, path := range []string{"/rest/v1/" + long, "/v1/tenants/" + long, "/" + long} {
		if r := s.Do(t, "GET", path, a.AdminToken, nil, "User-Agent", long); r.Status != http.StatusNotFound {
			t.Fatalf("GET %.40s…: %s; want 404", path, r)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n, longest int
	if err := conn.QueryRow(ctx, `SELECT count(*), max(octet_length(event::text)) FROM bulkhead_audit.inbox
		WHERE event->>'resource' LIKE '%xxxxxxxxxx%'`).Scan(&n, &longest); err != nil || n != 3 || longest > 2000 {
		t.Fatalf("%d events for the long paths, the longest %d bytes (%v); want 3 of at most 2000", n, longest, err)
	}
}

// hashing is a password hashing process for the metrics: its pid and
// starts, as set.
type hashing struct {
	pid    int
	starts uint64
}

func (h *hashing) Pid() int       { return h.pid }
func (h *hashing) Starts() uint64 { return h.starts }

// TestHashingMetrics: the metrics say whether the hashing process runs,
// and how many times it was started.
func TestHashingMetrics(t *testing.T) {
	m := httpapi.NewMetrics()
	h := &hashing{pid: 4242, starts: 3}
	m.WatchHashing(h)
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	for _, c := range []struct {
		pid  int
		want []string
	}{
		{4242, []string{"bulkhead_password_hashing_up 1", "bulkhead_password_hashing_starts_total 3"}},
		{0, []string{"bulkhead_password_hashing_up 0", "bulkhead_password_hashing_starts_total 3"}},
	} {
		h.pid = c.pid
		b := scrape()
		// The build's own gauge is there too, with the schema it migrates to.
		if want := fmt.Sprintf(`schema_version="%d"`, postgres.SchemaVersion()); !strings.Contains(b, "bulkhead_build_info{") || !strings.Contains(b, want) {
			t.Errorf("metrics lack bulkhead_build_info with %s", want)
		}
		for _, want := range c.want {
			if !strings.Contains(b, want+"\n") {
				t.Errorf("pid %d: metrics lack %q", c.pid, want)
			}
		}
	}
}
