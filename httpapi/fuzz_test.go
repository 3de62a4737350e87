package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// busy5xx are the only 5xx answers the API gives on purpose: the server is
// busy, not broken. Anything else at or above 500 is a bug.
var busy5xx = map[string]bool{
	"password_checks_busy": true, "tenant_logins_busy": true, "timeout": true,
	"statement_timeout": true, "too_many_connections": true,
}

// FuzzAPI sends arbitrary requests, to every endpoint and to none, as a
// tenant's admin, its member, a forged token, no token, a platform
// administrator and a function's credential, to a real server and
// PostgreSQL with three tenants, and holds the rules that no input may
// break:
//
//   - no answer is a 500, or any 5xx other than the documented busy ones;
//   - every error is a problem document with a code;
//   - without valid credentials, nothing but the public paths succeeds (a
//     CORS preflight aside);
//   - acme's callers never see the other tenants' rows, names or UUIDs,
//     unless the request itself carried them;
//   - nothing acme's callers send changes another tenant's rows, and a
//     refused write changes nothing of acme's either.
//
// Placeholders in the path, query and body ({B}, {B_UUID}, {B_PROJECT},
// {B_TASK}, {C}, {C_PROJECT}, {C_SCHEMA}, {A_PROJECT}, and {A_TOKEN}, an
// acme user's token for the function to vend a context with) are replaced with the tenants'
// real slugs and ids, so that the fuzzer aims at another tenant's rows by
// every position it finds. The last argument is the request's extra
// headers (Prefer, Range, Accept-Profile, X-Forwarded-For, …). Run it with
//
//	go test ./httpapi -run '^$' -fuzz FuzzAPI -fuzztime 5m -parallel 1
//
// Without -fuzz, go test runs the seeds below.
func FuzzAPI(f *testing.F) {
	s := apitest.Start(f, apitest.Options{Config: func(c *httpapi.Config) {
		// The fuzzer sends thousands of requests a second: lift the
		// limits, so that it reaches the handlers instead of the 429s.
		unlimited := httpapi.Limit{Rate: 1e6, Burst: 1e6, Concurrent: 64}
		c.Limits = map[string]httpapi.Limit{"basic": unlimited, "premium": unlimited}
		c.RefusalPause = 0
		c.AnonymousRefusals = httpapi.Bucket{Rate: 1e6, Burst: 1e6}
		c.AnonymousRefusalsTotal = httpapi.Bucket{Rate: 1e6, Burst: 1e6}
		c.FailedLogins = httpapi.Bucket{Rate: 1e6, Burst: 1e6}
		// A move keeps its tenant stopped this long: one server, which
		// forgets the tenant itself, needs no more.
		c.MoveSettle = 10 * time.Millisecond
	}})
	a := seed(f, s, "acme", "pool")
	b := seed(f, s, "umbrella", "pool") // shares acme's tables
	c := seed(f, s, "globex", "silo")   // a schema of its own
	forged := a.AdminToken[:len(a.AdminToken)-2] + flip(a.AdminToken[len(a.AdminToken)-2:])
	// A function, whose credential vends contexts for the user tokens it is
	// given (login roles are cluster-wide: the name is unique per run).
	fn, err := s.DB.Postgres().CreateFunction(context.Background(), "fuzz_"+strings.ReplaceAll(a.UUID[:8], "-", ""))
	if err != nil {
		f.Fatal(err)
	}
	callers := []struct {
		name, token string
		// A platform administrator may change any tenant: its writes are
		// sent only when they name none of the three tenants, so that
		// they reach the tenants the fuzzer makes and the validation of
		// every body, and leave the three as they are.
		platform bool
	}{
		{"acme admin", a.AdminToken, false}, {"acme member", a.MemberToken, false},
		{"forged", forged, false}, {"anonymous", "", false}, {"platform admin", s.AdminToken, true},
		{"function", fn.Token, false},
	}
	seeded := []string{a.Slug, b.Slug, c.Slug, a.UUID, b.UUID, c.UUID}
	conn, err := pgx.Connect(context.Background(), s.PG.AdminURL)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close(context.Background()) })
	var placement string // globex's schema
	if err := conn.QueryRow(context.Background(), `SELECT placement FROM bulkhead_control.tenants WHERE id = $1`, c.UUID).Scan(&placement); err != nil {
		f.Fatal(err)
	}
	fill := strings.NewReplacer(
		"{B}", b.Slug, "{B_UUID}", b.UUID, "{B_PROJECT}", b.ProjectID, "{B_TASK}", b.TaskID,
		"{C}", c.Slug, "{C_PROJECT}", c.ProjectID, "{A_PROJECT}", a.ProjectID,
		"{A_TOKEN}", a.MemberToken, "{C_SCHEMA}", placement,
	)
	// What acme's callers must never see, unless they sent it.
	secrets := []string{
		b.UUID, b.ProjectID, b.TaskID, b.ProjectName, b.TaskTitle, "secret of umbrella",
		c.UUID, c.ProjectID, c.TaskID, c.ProjectName, c.TaskTitle, "secret of globex", placement,
		"admin@umbrella.test", "member@umbrella.test", "admin@globex.test", "member@globex.test",
	}
	victims := []*canary{b, c}
	before := map[*canary]string{}
	for _, v := range victims {
		before[v] = fingerprint(f, conn, v)
	}
	sent := map[string]bool{} // the secrets acme's callers have sent; calls to the fuzz function do not overlap
	methods := []string{"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"}

	for _, seed := range []struct {
		method, who  uint8
		path, query  string
		body, prefer string
	}{
		{0, 0, "/rest/v1/projects", "id=eq.{B_PROJECT}", "", ""},
		{0, 0, "/rest/v1/tasks", "select=*,projects(*)&project_id=eq.{B_PROJECT}", "", ""},
		{0, 1, "/rest/v1/projects", "or=(id.eq.{B_PROJECT},name.like.*)&order=name.desc&limit=5&offset=1", "", ""},
		{0, 0, "/rest/v1/projects", "tenant_id=eq.{B_UUID}&select=id,name,tenant_id", "", ""},
		{1, 0, "/rest/v1/tasks", "", `{"title":"t","project_id":"{B_PROJECT}"}`, "return=representation"},
		{1, 0, "/rest/v1/projects", "", `[{"id":"{B_PROJECT}","name":"x","tenant_id":"{B_UUID}"}]`, "resolution=merge-duplicates,return=representation"},
		{1, 0, "/rest/v1/projects", "on_conflict=id", `{"id":"{C_PROJECT}","name":"y"}`, "resolution=ignore-duplicates"},
		{2, 0, "/rest/v1/tasks", "id=eq.{B_TASK}", `{"title":"mine now"}`, "return=representation"},
		{2, 0, "/rest/v1/tasks", "project_id=eq.{A_PROJECT}", `{"project_id":"{B_PROJECT}"}`, ""},
		{3, 0, "/rest/v1/projects", "id=in.({B_PROJECT},{C_PROJECT},{A_PROJECT})", "", "return=representation"},
		{0, 0, "/v1/tenants/{B}", "", "", ""},
		{0, 0, "/v1/tenants/{C}/users", "limit=1&after=a", "", ""},
		{0, 0, "/v1/tenants/acme/users", "after=a", "", ""},
		{0, 1, "/v1/tenants", "tier=silo", "", ""},
		{1, 0, "/v1/tenants/{B}/users", "", `{"email":"x@y.test","password":"long-enough","role":"admin"}`, ""},
		{0, 0, "/v1/audit", "after={B_PROJECT}&limit=1000&action=data:Read", "", ""},
		{4, 0, "/v1/policies/deny-all", "tenant={B}", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`, ""},
		{1, 0, "/v1/policies/simulate", "tenant={B}", `{"action":"data:Read","resource":"bulkhead:{B}:data:projects/*"}`, ""},
		{1, 3, "/v1/auth/token", "", `{"tenant":"{B}","email":"admin@{B}.test","password":"x"}`, ""},
		{1, 0, "/v1/auth/context", "", `{"token":"x"}`, ""},
		{1, 5, "/v1/auth/context", "", `{"token":"{A_TOKEN}"}`, ""},
		{1, 5, "/v1/auth/context", "tenant={B}", `{"token":"{A_TOKEN}","tenant":"{B}","schema":"{C}"}`, ""},
		{0, 5, "/rest/v1/projects", "", "", ""},
		{1, 4, "/v1/tenants/batch", "", `[{"id":"new-one"},{"id":"{B}"}]`, ""},
		{0, 2, "/rest/v1/projects", "select=*", "", ""},
		{0, 0, "/rest/v1/bulkhead_control.keys", "", "", ""},
		{0, 0, "/rest/v1/projects", "select=id::text,name->>0&name=ilike.%25%00", "", "count=exact"},
		{0, 0, "/rest/v1/projects", "", "", "Accept-Profile: {C_SCHEMA}\nRange: 0-1000\nAccept: application/vnd.pgrst.object+json"},
		{1, 1, "/rest/v1/tasks", "", `{"title":"t"}`, "Content-Profile: {C_SCHEMA}\nreturn=representation\nX-Forwarded-For: 10.0.0.1, {B_UUID}"},
		{2, 0, "/rest/v1/projects", "id=eq.{A_PROJECT}", `{"name":"n"}`, "Content-Type: application/x-www-form-urlencoded"},
		{0, 3, "/rest/v1/projects", "", "", "apikey: {A_TOKEN}"},
		{0, 0, "/.well-known/jwks.json", "", "", ""},
		{0, 1, "/rest/v1/tasks", "created_at=gt.not-a-time&done=is.true", "", ""},
		{6, 3, "/rest/v1/projects", "", "", ""},
		{1, 4, "/v1/tenants", "", `{"id":"fuzzco","name":"Fuzz Co","tier":"silo","plan":"basic"}`, ""},
		{1, 4, "/v1/tenants/batch", "", `[{"id":"fuzz-a"},{"id":"fuzz-b","tier":"silo"},{"id":"Bad"}]`, ""},
		{2, 4, "/v1/tenants/fuzzco", "", `{"status":"suspended"}`, ""},
		{2, 4, "/v1/tenants/fuzzco", "", `{"plan":"premium"}`, ""},
		{2, 4, "/v1/tenants/fuzzco", "", `{"plan":"gold","status":"suspended"}`, ""},
		{2, 0, "/v1/tenants/{B}", "", `{"plan":"premium"}`, ""},
		{2, 0, "/v1/tenants/acme", "", `{"plan":"basic","status":"active"}`, ""},
		{1, 0, "/v1/tenants/{B}/move", "", `{"tier":"silo"}`, ""},
		{1, 0, "/v1/tenants/acme/move", "", `{"tier":"silo"}`, ""},
		{1, 4, "/v1/tenants/fuzzco/move", "", `{"tier":"silo"}`, ""},
		{1, 4, "/v1/tenants/fuzz-b/move", "", `{"tier":"pool"}`, ""},
		{1, 4, "/v1/tenants/fuzzco/users", "", `{"email":"u@fuzz.test","password":"long-enough","role":"member"}`, ""},
		{4, 4, "/v1/policies/p", "tenant=fuzzco", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"data:*","Resource":"*"}]}`, ""},
		{3, 4, "/v1/tenants/fuzzco", "", "", ""},
	} {
		f.Add(seed.method, seed.who, seed.path, seed.query, []byte(seed.body), seed.prefer)
	}

	f.Fuzz(func(t *testing.T, method, who uint8, path, query string, body []byte, prefer string) {
		m := methods[int(method)%len(methods)]
		caller := callers[int(who)%len(callers)]
		path, query = fill.Replace(path), fill.Replace(query)
		body = []byte(fill.Replace(string(body)))
		if caller.platform && m != "GET" && m != "HEAD" && m != "OPTIONS" {
			all := strings.ToLower(path + "?" + query + string(body))
			for _, name := range seeded {
				if strings.Contains(all, strings.ToLower(name)) {
					m = "GET"
				}
			}
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		if strings.ContainsFunc(path+query, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return // not a request line: net/http answers before any handler
		}
		target := s.URL + path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(m, target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if caller.token != "" {
			req.Header.Set("Authorization", "Bearer "+caller.token)
		}
		if len(body) > 0 {
			req.Header.Set("Content-Type", "application/json")
		}
		// The last argument is headers, one per line as "Name: value"; a
		// line without a colon is the Prefer header. The caller's
		// credentials are its own: Authorization is not taken from here.
		for _, line := range strings.Split(fill.Replace(prefer), "\n") {
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				name, value = "Prefer", line
			}
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			if name == "" || value == "" || strings.EqualFold(name, "Authorization") {
				continue
			}
			req.Header.Add(name, value)
		}
		// acme's own policies may deny it everything; what it put is
		// taken away, so that the next input reaches the handlers.
		if _, err := conn.Exec(context.Background(), `DELETE FROM bulkhead_control.policies WHERE tenant_id = $1`, a.UUID); err != nil {
			t.Fatal(err)
		}
		acmeBefore := fingerprint(t, conn, a)
		// An id acme sent once may be in its own rows from then on (a
		// pool table's key includes the tenant: acme may make a row with
		// globex's id), so it may come back in any later answer. Rows,
		// names and descriptions are never sent: those stay secret.
		for _, secret := range secrets {
			if !caller.platform && strings.Contains(path+"?"+query+string(body)+fill.Replace(prefer), secret) {
				sent[secret] = true
			}
		}
		res, err := noRedirects.Do(req)
		if err != nil {
			return // refused by the client (a header it will not send)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r := &apitest.Response{Status: res.StatusCode, Header: res.Header, Body: got}
		what := m + " " + target + " as " + caller.name

		if r.Status >= 500 && !(r.Status == http.StatusServiceUnavailable && busy5xx[r.Code()]) {
			t.Fatalf("%s: %s", what, r)
		}
		if r.Status >= 400 && m != "HEAD" {
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") || r.Code() == "" {
				t.Fatalf("%s: %d with %q and no problem code: %s", what, r.Status, ct, r.Body)
			}
		}
		if caller.platform {
			return
		}
		if (caller.name == "forged" || caller.name == "anonymous") && r.Status < 300 && m != "OPTIONS" && !public[req.URL.Path] {
			t.Fatalf("%s: %s; want no success without valid credentials", what, r)
		}
		answer := string(r.Body) + strings.Join(flatten(r.Header), "\n")
		for _, secret := range secrets {
			if strings.Contains(answer, secret) && !sent[secret] {
				t.Fatalf("%s: the answer holds another tenant's %q: %s", what, secret, r)
			}
		}
		for _, v := range victims {
			if now := fingerprint(t, conn, v); now != before[v] {
				t.Fatalf("%s: %s changed:\nbefore %s\nafter  %s", what, v.Slug, before[v], now)
			}
		}
		if r.Status >= 400 {
			if now := fingerprint(t, conn, a); now != acmeBefore {
				t.Fatalf("%s: refused with %s, yet acme changed:\nbefore %s\nafter  %s", what, r, acmeBefore, now)
			}
		}
	})
}

// noRedirects answers with a redirect as it is, so that each answer is
// checked as the path it was sent to.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// public are the paths that answer without credentials.
var public = map[string]bool{"/healthz": true, "/readyz": true, "/.well-known/jwks.json": true, "/v1/auth/token": true}

// flip changes the characters of s, keeping them in the base64url
// alphabet, so that a token's signature no longer verifies.
func flip(s string) string {
	out := []byte(s)
	for i, ch := range out {
		if ch == 'A' {
			out[i] = 'B'
		} else {
			out[i] = 'A'
		}
	}
	return string(out)
}

// fingerprint is everything of tenant v a request could change: its rows
// in its tables (the pool's or its own schema's), its users, its
// policies, its status and its plan, read as the superuser so that no
// policy hides any of it.
func fingerprint(tb testing.TB, conn *pgx.Conn, v *canary) string {
	tb.Helper()
	var fp string
	err := conn.QueryRow(context.Background(), `
		WITH t AS (SELECT id, CASE WHEN placement = 'pool' THEN 'app' ELSE placement END AS schema
		             FROM bulkhead_control.tenants WHERE id = $1)
		SELECT concat_ws(' ',
			(SELECT md5(coalesce(string_agg(p::text, ',' ORDER BY p.id), '')) FROM app.projects p WHERE p.tenant_id = $1),
			(SELECT md5(coalesce(string_agg(k::text, ',' ORDER BY k.id), '')) FROM app.tasks k WHERE k.tenant_id = $1),
			(SELECT md5(coalesce(string_agg(u.id::text || u.email || u.role || u.password_hash, ',' ORDER BY u.id), ''))
			   FROM bulkhead_control.users u WHERE u.tenant_id = $1),
			(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM bulkhead_control.policies x WHERE x.tenant_id = $1),
			(SELECT status || '/' || plan FROM bulkhead_control.tenants WHERE id = $1),
			(SELECT schema FROM t))`, v.UUID).Scan(&fp)
	if err != nil {
		tb.Fatalf("fingerprint of %s: %v", v.Slug, err)
	}
	if strings.HasSuffix(fp, " app") {
		return fp
	}
	// A silo's rows are in its own schema.
	var silo string
	schema := fp[strings.LastIndexByte(fp, ' ')+1:]
	err = conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT concat_ws(' ',
		(SELECT md5(coalesce(string_agg(p::text, ',' ORDER BY p.id), '')) FROM %[1]s.projects p),
		(SELECT md5(coalesce(string_agg(k::text, ',' ORDER BY k.id), '')) FROM %[1]s.tasks k))`, pgx.Identifier{schema}.Sanitize())).Scan(&silo)
	if err != nil {
		tb.Fatalf("fingerprint of %s's schema: %v", v.Slug, err)
	}
	return fp + " " + silo
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ", "))
	}
	return out
}
