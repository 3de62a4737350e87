package bulkheadtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// canaryTenant makes a tenant with a project and a task under it.
func canaryTenant(t *testing.T, env *Env, slug string, tier tenant.Tier) *Tenant {
	t.Helper()
	tn := env.Tenant(t, slug, tier)
	p := tn.Insert(t, "projects", map[string]any{"name": "canary-project-" + slug, "description": "secret of " + slug})
	tn.Insert(t, "tasks", map[string]any{"title": "canary-task-" + slug, "project_id": p})
	return tn
}

// superuser runs statements on env's database as the superuser.
func superuser(t *testing.T, env *Env, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// intercept puts a proxy in front of env's server that lets rewrite
// change each request first: a server with an isolation bug, as far as
// the suite can tell.
func intercept(t *testing.T, env *Env, rewrite func(r *http.Request)) {
	t.Helper()
	target, err := url.Parse(env.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = target.Host
		rewrite(pr.Out)
	}}
	proxy := httptest.NewServer(p)
	t.Cleanup(proxy.Close)
	env.srv.URL = proxy.URL
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// claims decodes a JWT's payload without verifying it.
func claims(token string) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c map[string]any
	json.Unmarshal(b, &c)
	return c
}

// TestIsolatedCanFail breaks isolation on purpose, one way per check, and
// demands that Isolated reports it: a negative test that cannot fail
// proves nothing.
func TestIsolatedCanFail(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		want     []Check
		sabotage func(t *testing.T, env *Env, attacker, victim *Tenant)
	}{
		{"select policy open", []Check{CheckRead, CheckSingle, CheckSQL}, func(t *testing.T, env *Env, _, _ *Tenant) {
			superuser(t, env, `ALTER POLICY tenant_select ON app.projects USING (true)`)
		}},
		{"update policy open", []Check{CheckWrite}, func(t *testing.T, env *Env, _, _ *Tenant) {
			superuser(t, env, `ALTER POLICY tenant_select ON app.tasks USING (true)`,
				`ALTER POLICY tenant_update ON app.tasks USING (true) WITH CHECK (true)`)
		}},
		{"delete policy open", []Check{CheckWrite}, func(t *testing.T, env *Env, _, _ *Tenant) {
			superuser(t, env, `ALTER POLICY tenant_select ON app.projects USING (true)`,
				`ALTER POLICY tenant_delete ON app.projects USING (true)`)
		}},
		{"insert policy open", []Check{CheckSQL}, func(t *testing.T, env *Env, _, _ *Tenant) {
			superuser(t, env, `ALTER POLICY tenant_insert ON app.projects WITH CHECK (true)`)
		}},
		{"foreign key without tenant_id", []Check{CheckReference, CheckSQL}, func(t *testing.T, env *Env, _, _ *Tenant) {
			superuser(t, env, `ALTER TABLE app.tasks DROP CONSTRAINT tasks_tenant_id_project_id_fkey`)
		}},
		{"function role can take a bypassing role", []Check{CheckSQL}, func(t *testing.T, env *Env, _, _ *Tenant) {
			fn, _, _ := env.function(t)
			// Memberships are cluster-wide: other packages' clean lints
			// must not see this one, so it is taken and undone under the lock.
			pgtest.LockClusterRoles(t, env.AdminURL(), true)
			role := pgx.Identifier{fn.LoginRole}.Sanitize()
			superuser(t, env, `GRANT bulkhead_maint TO `+role)
			t.Cleanup(func() { superuser(t, env, `REVOKE bulkhead_maint FROM `+role) })
		}},
		{"server trusts unverified claims", []Check{CheckToken}, func(t *testing.T, env *Env, attacker, victim *Tenant) {
			admin := env.AdminToken(t)
			intercept(t, env, func(r *http.Request) {
				switch c := claims(bearer(r)); {
				case c == nil:
				case c["platform"] == true:
					r.Header.Set("Authorization", "Bearer "+admin)
				case c["tenant_id"] == string(victim.ID):
					r.Header.Set("Authorization", "Bearer "+victim.AdminToken)
				}
			})
		}},
		{"control plane without authorization", []Check{CheckControlPlane}, func(t *testing.T, env *Env, attacker, victim *Tenant) {
			admin := env.AdminToken(t)
			intercept(t, env, func(r *http.Request) {
				if r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/tenants/"+string(victim.Slug)) {
					r.Header.Set("Authorization", "Bearer "+admin)
				}
			})
		}},
		{"server honours tenant_id in bodies", []Check{CheckInsert}, func(t *testing.T, env *Env, attacker, victim *Tenant) {
			intercept(t, env, func(r *http.Request) {
				if r.Body == nil || !strings.HasPrefix(r.URL.Path, "/rest/v1/") {
					return
				}
				b, _ := io.ReadAll(r.Body)
				var row map[string]any
				if json.Unmarshal(b, &row) == nil {
					if s, ok := row["tenant_id"].(string); ok && strings.EqualFold(strings.Trim(strings.ReplaceAll(s, "-", ""), "{}"), strings.ReplaceAll(string(victim.ID), "-", "")) {
						delete(row, "tenant_id")
						b, _ = json.Marshal(row)
						r.Header.Set("Authorization", "Bearer "+victim.AdminToken)
					}
				}
				r.Body = io.NopCloser(bytes.NewReader(b))
				r.ContentLength = int64(len(b))
				r.Header.Set("Content-Length", strconv.Itoa(len(b)))
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := Start(t)
			attacker := canaryTenant(t, env, "attacker", Pool)
			victim := canaryTenant(t, env, "victim", Pool)
			if leaks := env.Isolated(t, attacker, victim); len(leaks) != 0 {
				t.Fatalf("before breaking anything, Isolated found leaks: %v", leaks)
			}
			tt.sabotage(t, env, attacker, victim)
			leaks := env.Isolated(t, attacker, victim)
			for _, c := range tt.want {
				if !slices.ContainsFunc(leaks, func(l Leak) bool { return l.Check == c }) {
					t.Errorf("with %s, Isolated found no %q leak; it found %d: %v", tt.name, c, len(leaks), leaks)
				}
			}
		})
	}
}

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestAssertIsolatedReports checks that AssertIsolated fails its test
// once per leak, with a message naming both tenants.
func TestAssertIsolatedReports(t *testing.T) {
	t.Parallel()
	env := Start(t)
	attacker := canaryTenant(t, env, "attacker", Pool)
	victim := canaryTenant(t, env, "victim", Silo)
	superuser(t, env, `ALTER POLICY tenant_select ON `+victim.ID.SchemaName()+`.projects USING (true)`)
	rec := &recorder{TB: t}
	leaks := env.AssertIsolated(rec, attacker, victim)
	if len(leaks) == 0 || len(rec.errors) != len(leaks) {
		t.Fatalf("AssertIsolated returned %d leaks and reported %d errors, want as many, and some", len(leaks), len(rec.errors))
	}
	for _, e := range rec.errors {
		if !strings.HasPrefix(e, "bulkheadtest: tenant attacker reached tenant victim: ") {
			t.Errorf("error %q does not name the tenants", e)
		}
	}
	t.Logf("for example: %s", rec.errors[0])
}

// TestIsolatedVictimTextInErrorBodies runs Isolated on unmodified
// bulkhead against a victim whose values are words of bulkhead's own
// refusals (uptime checks whose last status is an HTTP reason phrase):
// finding them in a 401, 403 or 404 is no leak.
func TestIsolatedVictimTextInErrorBodies(t *testing.T) {
	t.Parallel()
	env := Start(t)
	attacker := canaryTenant(t, env, "attacker", Pool)
	victim := env.Tenant(t, "victim", Pool)
	for _, status := range []string{"Unauthorized", "Not Found", "Forbidden", "denied", "does not exist", "No row matches."} {
		victim.Insert(t, "projects", map[string]any{"name": "health check " + status, "description": status})
	}
	leaks := env.Isolated(t, attacker, victim)
	for i, l := range leaks {
		if i < 4 {
			t.Errorf("false positive on unmodified bulkhead: %.260s", l)
		}
	}
	if len(leaks) > 0 {
		t.Errorf("%d leaks reported on unmodified bulkhead", len(leaks))
	}
}

// TestIsolatedUniqueKeyOracle puts a unique index on projects(name)
// across all tenants: the attacker learns whether another tenant has a
// project of a given name (409 against 201), and Isolated must say so.
// Unique keys within each tenant tell nothing, and must pass.
func TestIsolatedUniqueKeyOracle(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		index []string
		want  bool
	}{
		{"across tenants", []string{`CREATE UNIQUE INDEX projects_name_global ON app.projects (name)`}, true},
		{"within each tenant", []string{`CREATE UNIQUE INDEX projects_name_tenant ON app.projects (tenant_id, name)`,
			`CREATE UNIQUE INDEX tasks_title_tenant ON app.tasks (tenant_id, title)`}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := Start(t)
			attacker := canaryTenant(t, env, "attacker", Pool)
			victim := canaryTenant(t, env, "victim", Pool)
			superuser(t, env, tt.index...)
			leaks := env.Isolated(t, attacker, victim)
			found := slices.ContainsFunc(leaks, func(l Leak) bool { return l.Check == CheckUnique })
			switch {
			case tt.want && !found:
				t.Errorf("a unique index on projects.name across tenants tells the attacker which names the victim uses, and Isolated found no %q leak: %v", CheckUnique, leaks)
			case !tt.want && len(leaks) > 0:
				t.Errorf("unique keys within each tenant tell nothing, and Isolated found %d leaks: %v", len(leaks), leaks)
			}
		})
	}
}
