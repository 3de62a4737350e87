package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/identity/hashproc"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// TestMain runs the tests, or, when the server under test starts its
// password hashing process (this test binary with hash-worker), that
// process.
func TestMain(m *testing.M) {
	hashproc.MainIf(os.Args, hashWorkerCommand)
	if os.Getenv(hashingHelperEnv) != "" {
		os.Exit(hashingHelper())
	}
	pgtest.Main(m)
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the command in the background until the test ends.
func start(t *testing.T, args ...string) (stdout, stderr *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, stdout, stderr) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("command did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

// cli runs one command against the database at url and returns its
// stdout.
func cli(url string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--database-url", url), &out, io.Discard)
		return out.String(), err
	}
}

// waitFor polls until f is true (bounded, not a timing assertion).
func waitFor(t *testing.T, what string, stderr *syncBuffer, f func() bool) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if f() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s; stderr:\n%s", what, stderr.String())
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), nil, io.Discard, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Commands:") {
		t.Fatalf("no args: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"nope"}, io.Discard, io.Discard); !errors.As(err, new(usageError)) {
		t.Fatalf("unknown command: %v, want a usage error", err)
	}
	if err := run(context.Background(), []string{"tenants", "list"}, io.Discard, io.Discard); err == nil {
		t.Fatal("tenants list without a database succeeded")
	}
}

func TestServe(t *testing.T) {
	pg := pgtest.NewDB(t)
	secret := "alarm-webhook-secret-0123456789"
	t.Setenv("BULKHEAD_ALARM_WEBHOOK_SECRET", secret)
	hooks := make(chan []byte, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Bulkhead-Signature") == audit.Signature([]byte(secret), b) {
			hooks <- b
		}
	}))
	defer hook.Close()
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	// The burst rule comes from an alarm rules file.
	rulesPath := filepath.Join(t.TempDir(), "alarms.json")
	if err := os.WriteFile(rulesPath, []byte(`{"denials": {"limit": 2, "window": "1m"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, stop := start(t, "serve", "--addr", "127.0.0.1:0", "--database-url", pg.AdminURL,
		"--alarm-rules", rulesPath, "--alarm-webhook", hook.URL, "--audit-log", logPath, "--checkpoint-webhook", hook.URL+"/anchor")
	re := regexp.MustCompile(`serving on (http://\S+)`)
	waitFor(t, "the server", stderr, func() bool { return re.MatchString(stdout.String()) })
	base := re.FindStringSubmatch(stdout.String())[1]
	// The log says which build serves, and the schema it migrates to.
	started := regexp.MustCompile(fmt.Sprintf(`msg=serving addr=\S+ version=\S+ revision=\S+ schema_version=%d\n`, postgres.SchemaVersion()))
	waitFor(t, "the build in the log", stderr, func() bool { return started.MatchString(stderr.String()) })
	res, err := http.Get(base + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
	res, err = http.Get(base + "/rest/v1/projects")
	if err != nil || res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unauthenticated data request: %v %v", res, err)
	}
	res.Body.Close()
	// Two more denials from the same address: over the limit of 2, the
	// alarm fires into the webhook, signed.
	for i := 0; i < 2; i++ {
		if res, err := http.Get(base + "/rest/v1/projects"); err == nil {
			res.Body.Close()
		}
	}
	for fired := false; !fired; {
		select {
		case b := <-hooks:
			if strings.Contains(string(b), `"type":"checkpoint"`) {
				continue // an anchor; checked below
			}
			if !strings.Contains(string(b), `"rule":"denial_burst"`) || !strings.Contains(string(b), `"firing":true`) {
				t.Fatalf("webhook got %s", b)
			}
			fired = true
		case <-time.After(30 * time.Second):
			t.Fatalf("no alarm reached the webhook; stderr:\n%s", stderr.String())
		}
	}
	var tok bytes.Buffer
	if err := run(context.Background(), []string{"token", "--admin", "--database-url", pg.AdminURL}, &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/v1/alarms", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok.String()))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"denial_burst:ip:127.0.0.1"`) {
		t.Fatalf("GET /v1/alarms: %d %s", res.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v on shutdown", err)
	}
	// The last checkpoint was also posted to the anchor webhook, signed.
	for anchored := false; !anchored; {
		select {
		case b := <-hooks:
			anchored = strings.Contains(string(b), `"type":"checkpoint"`)
		case <-time.After(10 * time.Second):
			t.Fatal("no checkpoint reached the anchor webhook")
		}
	}
	// The JSON-lines log holds the chained events and a checkpoint, and
	// audit verify checks the chain against it.
	logged, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logged), `"type":"event"`) || !strings.Contains(string(logged), `"type":"checkpoint"`) {
		t.Fatalf("audit log:\n%s", logged)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--checkpoints", logPath, "--database-url", pg.AdminURL}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "ok:") {
		t.Fatalf("audit verify: %q %v", out.String(), err)
	}
	// Cut the tail off: verify names the checkpoint that no longer matches.
	conn, err := pgx.Connect(context.Background(), pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	conn.Exec(context.Background(), `DELETE FROM bulkhead_audit.checkpoints`)
	conn.Exec(context.Background(), `DELETE FROM bulkhead_audit.events WHERE seq = (SELECT max(seq) FROM bulkhead_audit.events)`)
	out.Reset()
	if err := run(context.Background(), []string{"audit", "verify", "--checkpoints", logPath, "--database-url", pg.AdminURL}, &out, io.Discard); !errors.As(err, new(findingsError)) || !strings.Contains(out.String(), "cut off") {
		t.Fatalf("audit verify after the tail was cut: %q %v", out.String(), err)
	}
}

func TestTenantsCommand(t *testing.T) {
	pg := pgtest.NewDB(t)
	ctx := context.Background()
	cmd := cli(pg.AdminURL)
	if out, err := cmd("tenants", "create", "acme"); err != nil || !strings.Contains(out, "created: acme tier=pool") {
		t.Fatalf("create acme: %q %v", out, err)
	}
	if out, err := cmd("tenants", "create", "globex", "--tier", "silo"); err != nil || !strings.Contains(out, "placement=t_") {
		t.Fatalf("create globex: %q %v", out, err)
	}
	if out, err := cmd("tenants", "create", "acme"); err != nil || !strings.Contains(out, "exists: acme") {
		t.Fatalf("retry: %q %v", out, err)
	}
	if _, err := cmd("tenants", "create", "Bad_Slug"); err == nil {
		t.Fatal("bad slug accepted")
	}
	// Each change made from the command line wrote one audit event, under
	// the OS user; the retry and the refused slug wrote none.
	var audited int
	adm, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	if err := adm.QueryRow(ctx, `SELECT count(*) FROM (SELECT event FROM bulkhead_audit.inbox
		UNION ALL SELECT body::jsonb FROM bulkhead_audit.events) e(ev)
		WHERE ev->>'action' = 'tenants:Create' AND ev->>'sub' LIKE 'cli%'`).Scan(&audited); err != nil || audited != 2 {
		t.Fatalf("%d tenants:Create events by the CLI, want 2 (%v)", audited, err)
	}
	polFile := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(polFile, []byte(`{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"data:Delete","Resource":"*"}]}`), 0o600)
	if out, err := cmd("policy", "put", "--tenant", "acme", "--name", "no-deletes", "--file", polFile); err != nil || !strings.Contains(out, "created policy no-deletes") {
		t.Fatalf("policy put: %q %v", out, err)
	}
	if out, err := cmd("policy", "list", "--tenant", "acme"); err != nil || !strings.Contains(out, "no-deletes") {
		t.Fatalf("policy list: %q %v", out, err)
	}
	if out, err := cmd("policy", "list", "--tenant", "globex"); err != nil || strings.Contains(out, "no-deletes") {
		t.Fatalf("globex's policies: %q %v", out, err)
	}
	if out, err := cmd("policy", "delete", "--tenant", "acme", "--name", "no-deletes"); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("policy delete: %q %v", out, err)
	}
	if out, err := cmd("tenants", "list"); err != nil || !strings.Contains(out, "acme") || !strings.Contains(out, "globex") {
		t.Fatalf("list: %q %v", out, err)
	}
	imp := filepath.Join(t.TempDir(), "tenants.jsonl")
	os.WriteFile(imp, []byte(`{"id":"imp-1"}
{"id":"imp-2","tier":"silo","plan":"premium"}
{"id":"acme"}
{"id":"globex"}
`), 0o600)
	// acme is as the file says; globex is a silo, not a pool tenant.
	if out, err := cmd("tenants", "import", imp); err == nil || !strings.Contains(out, "2 created, 1 already there, 1 failed") ||
		!strings.Contains(out, "globex: That tenant id is taken") {
		t.Fatalf("import: %q %v", out, err)
	}
	// The import's two new tenants are audited like create's.
	if err := adm.QueryRow(ctx, `SELECT count(*) FROM (SELECT event FROM bulkhead_audit.inbox
		UNION ALL SELECT body::jsonb FROM bulkhead_audit.events) e(ev)
		WHERE ev->>'action' = 'tenants:Create' AND ev->>'sub' LIKE 'cli%' AND ev->>'tenant' LIKE 'imp-%'`).Scan(&audited); err != nil || audited != 2 {
		t.Fatalf("%d tenants:Create events by the CLI's import, want 2 (%v)", audited, err)
	}
	// The list reads page by page and misses none.
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := allTenants(ctx, db, 1)
	var slugs []string
	for _, tn := range all {
		slugs = append(slugs, string(tn.Slug))
	}
	if err != nil || strings.Join(slugs, " ") != "acme globex imp-1 imp-2" {
		t.Fatalf("tenants a page of one at a time: %q %v", slugs, err)
	}
	if out, err := cmd("tenants", "show", "imp-2", "--json"); err != nil || !strings.Contains(out, `"plan":"premium"`) || !strings.Contains(out, `"tier":"silo"`) {
		t.Fatalf("imported tenant: %q %v", out, err)
	}
	if _, err := cmd("tenants", "delete", "globex"); !errors.As(err, new(usageError)) {
		t.Fatalf("delete without --yes: %v", err)
	}
	if out, err := cmd("tenants", "delete", "globex", "--yes"); err != nil || !strings.Contains(out, `"dropped_schema"`) {
		t.Fatalf("delete: %q %v", out, err)
	}
	if _, err := cmd("tenants", "create", "globex", "--tier", "silo"); err == nil {
		t.Fatal("an offboarded slug was handed out again")
	}
	// Three phases: publish verify-only, switch to it, retire the old.
	out, err := cmd("keys", "publish", "--purpose", "context")
	kid := regexp.MustCompile(`key (\S+);`).FindStringSubmatch(out)
	if err != nil || kid == nil {
		t.Fatalf("keys publish: %q %v", out, err)
	}
	if out, err := cmd("keys", "list"); err != nil || !regexp.MustCompile(`context\s+`+regexp.QuoteMeta(kid[1])+`\s+\S+\s+false`).MatchString(out) {
		t.Fatalf("published key is not verify-only: %q %v", out, err)
	}
	if out, err := cmd("keys", "rotate", "--purpose", "context"); err != nil || !strings.Contains(out, "signing key "+kid[1]+";") {
		t.Fatalf("keys rotate did not switch to the published key: %q %v", out, err)
	}
	if out, err := cmd("keys", "list"); err != nil || strings.Count(out, "context") != 2 {
		t.Fatalf("keys list after rotation: %q %v", out, err)
	}
	if out, err := cmd("keys", "rotate", "--purpose", "context", "--retire-now"); err != nil || !strings.Contains(out, "retired now") {
		t.Fatalf("keys rotate --retire-now: %q %v", out, err)
	}
	if out, err := cmd("keys", "list"); err != nil || strings.Count(out, "context") != 1 {
		t.Fatalf("keys list after --retire-now: %q %v", out, err)
	}
	adminTok, err := cmd("token", "--admin")
	if err != nil || strings.Count(strings.TrimSpace(adminTok), ".") != 2 {
		t.Fatalf("token --admin: %q %v", adminTok, err)
	}
	old := stdin
	t.Cleanup(func() { stdin = old })
	stdin = strings.NewReader(adminTok)
	if out, err := cmd("token", "revoke"); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("token revoke: %q %v", out, err)
	}
	stdin = strings.NewReader(adminTok)
	if _, err := cmd("token", "revoke"); err == nil {
		t.Fatal("a revoked token verified again")
	}
	fn := "orders_" + strings.TrimPrefix(pg.Name, "bulkhead_test_") // login roles are cluster-wide
	if out, err := cmd("functions", "create", fn); err != nil || !strings.Contains(out, `"login_role":"bulkhead_fn_`+fn+`"`) {
		t.Fatalf("functions create: %q %v", out, err)
	}
	// The role's connection limit bounds how many statements the function
	// runs at once: 20 unless --connection-limit says otherwise; a value
	// out of range is a usage error and makes nothing.
	connLimit := func(role string) int {
		n := -2
		if err := adm.QueryRow(ctx, `SELECT coalesce((SELECT rolconnlimit FROM pg_roles WHERE rolname = $1), -2)`, role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := connLimit("bulkhead_fn_" + fn); n != 20 {
		t.Errorf("functions create: connection limit %d, want 20", n)
	}
	created, err := cmd("functions", "create", fn+"_x", "--connection-limit", "3")
	if err != nil {
		t.Fatalf("functions create --connection-limit 3: %q %v", created, err)
	}
	if n := connLimit("bulkhead_fn_" + fn + "_x"); n != 3 {
		t.Errorf("functions create --connection-limit 3: connection limit %d", n)
	}
	for _, bad := range []string{"0", "-1", "10001", "many"} {
		if _, err := cmd("functions", "create", fn+"_y", "--connection-limit", bad); !isUsage(err) {
			t.Errorf("--connection-limit %s: %v, want a usage error", bad, err)
		}
	}
	if n := connLimit("bulkhead_fn_" + fn + "_y"); n != -2 {
		t.Errorf("a refused functions create made its role (connection limit %d)", n)
	}
	// functions list: each function, its limit and the sessions it holds.
	var creds struct{ Password string }
	if err := json.Unmarshal([]byte(created), &creds); err != nil {
		t.Fatalf("functions create output %q: %v", created, err)
	}
	session, err := pgx.Connect(ctx, pg.URL("bulkhead_fn_"+fn+"_x", creds.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(ctx)
	listOut, err := cmd("functions", "list", "--json")
	if err != nil {
		t.Fatalf("functions list --json: %q %v", listOut, err)
	}
	var listed []struct {
		Name            string `json:"name"`
		LoginRole       string `json:"login_role"`
		ConnectionLimit int    `json:"connection_limit"`
		Sessions        int    `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(listOut), &listed); err != nil {
		t.Fatalf("functions list --json %q: %v", listOut, err)
	}
	got := map[string][2]int{}
	for _, f := range listed {
		got[f.Name] = [2]int{f.ConnectionLimit, f.Sessions}
	}
	if len(listed) != 2 || got[fn] != [2]int{20, 0} || got[fn+"_x"] != [2]int{3, 1} {
		t.Errorf("functions list --json: %s, want %s with limit 20 and no session, %s_x with 3 and one", listOut, fn, fn)
	}
	if out, err := cmd("functions", "list"); err != nil || !strings.Contains(out, "CONNECTION LIMIT") || !strings.Contains(out, fn+"_x") {
		t.Errorf("functions list: %q %v", out, err)
	}
	if _, err := cmd("functions", "list", "extra"); !isUsage(err) {
		t.Errorf("functions list extra: %v, want a usage error", err)
	}
	// functions delete: the credential and the role go, and the session
	// the role held is ended; an unknown name exits 1 and changes nothing.
	if _, err := cmd("functions", "delete"); !isUsage(err) {
		t.Errorf("functions delete without a name: %v, want a usage error", err)
	}
	if _, err := cmd("functions", "delete", fn+"_nobody"); err == nil || isUsage(err) {
		t.Errorf("functions delete of an unknown name: %v, want a run-time error", err)
	}
	if out, err := cmd("functions", "delete", fn+"_x"); err != nil || !strings.Contains(out, "deleted: "+fn+"_x") || !strings.Contains(out, "1 sessions ended") {
		t.Errorf("functions delete: %q %v", out, err)
	}
	if err := session.Ping(ctx); err == nil {
		t.Error("the deleted function's session still answers")
	}
	if n := connLimit("bulkhead_fn_" + fn + "_x"); n != -2 {
		t.Errorf("the deleted function's role is still there (connection limit %d)", n)
	}
	if out, err := cmd("functions", "list"); err != nil || strings.Contains(out, fn+"_x") || !strings.Contains(out, fn) {
		t.Errorf("functions list after the delete: %q %v", out, err)
	}
}

func TestDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devdata")
	t.Cleanup(func() { removeDevDir(dir) }) // runs after the commands stop
	stdout, stderr, stop := start(t, "dev", "--data-dir", dir, "--addr", "127.0.0.1:0")
	path := filepath.Join(dir, "dev.json")
	waitFor(t, "dev.json", stderr, func() bool { return strings.Contains(stdout.String(), "bulkhead dev is running") })
	var d devJSON
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"dev.json", "state.json"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want 0600", f, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v, want 0700", fi.Mode(), err)
	}
	if gi, _ := os.ReadFile(filepath.Join(dir, ".gitignore")); string(gi) != "*\n" {
		t.Fatalf(".gitignore = %q", gi)
	}
	if len(d.Tenants) != 2 || d.Tenants[0].ID != "acme" || d.Tenants[1].Tier != "silo" || d.FunctionToken == "" || d.AppDatabaseURL == "" {
		t.Fatalf("dev.json: %+v", d)
	}
	acme := login(t, d.URL, "acme", d.Tenants[0].Users[0])
	body := get(t, d.URL+"/rest/v1/projects?select=name&order=name", acme)
	if body != `[{"name":"Billing v2"}, `+"\n"+` {"name":"Website relaunch"}]` {
		t.Fatalf("acme's projects: %s", body)
	}
	if strings.Contains(get(t, d.URL+"/rest/v1/projects", login(t, d.URL, "globex", d.Tenants[1].Users[0])), "Billing") {
		t.Fatal("globex sees acme's projects")
	}
	// Our own checks run clean against the demo: lint, gameday and probe.
	var out bytes.Buffer
	if err := run(ctx0(), []string{"lint", "--database-url", d.DatabaseURL, "--fail-on", "warn"}, &out, io.Discard); err != nil {
		t.Fatalf("lint on the demo database: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(ctx0(), []string{"gameday", "--database-url", d.DatabaseURL}, &out, io.Discard); err != nil {
		t.Fatalf("gameday on the demo database: %v\n%s", err, out.String())
	}
	tokA, tokB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	os.WriteFile(tokA, []byte(login(t, d.URL, "globex", d.Tenants[1].Users[0])), 0o600)
	os.WriteFile(tokB, []byte(acme), 0o600)
	out.Reset()
	if err := run(ctx0(), []string{"probe", "--bulkhead", "--base-url", d.URL, "--token-a-file", tokA, "--token-b-file", tokB}, &out, io.Discard); err != nil {
		t.Fatalf("probe against bulkhead dev: %v\n%s", err, out.String())
	}
	// The demo function's own login role sees nothing without a context.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.AppDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("function role without context: %d rows, %v", n, err)
	}
	// A forged context is refused by the database, which logs it; dev
	// follows its PostgreSQL log, so the invalid_context alarm fires.
	forged := "v1.nokey." + strings.Repeat("e", 40) + "." + strings.Repeat("A", 43)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec(ctx, `SELECT set_config('bulkhead.context', $1, true)`, forged)
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("forged context: %d rows, %v", n, err)
	}
	tx.Rollback(ctx)
	conn.Close(ctx)
	waitFor(t, "the invalid_context alarm", stderr, func() bool {
		return strings.Contains(get(t, d.URL+"/v1/alarms", d.AdminToken), `"rule":"invalid_context"`)
	})
	if err := stop(); err != nil {
		t.Fatalf("dev returned %v", err)
	}
	if _, err := pgx.Connect(ctx, d.DatabaseURL); err == nil {
		t.Fatal("PostgreSQL still accepts connections after dev stopped")
	}
	// A second run keeps the data and the passwords.
	stdout2, stderr2, stop2 := start(t, "dev", "--data-dir", dir, "--addr", "127.0.0.1:0")
	waitFor(t, "the second run", stderr2, func() bool { return strings.Contains(stdout2.String(), "bulkhead dev is running") })
	b, _ = os.ReadFile(path)
	var d2 devJSON
	json.Unmarshal(b, &d2)
	if got := get(t, d2.URL+"/rest/v1/projects?select=name&order=name", login(t, d2.URL, "acme", d.Tenants[0].Users[0])); got != body {
		t.Fatalf("after restart: %s", got)
	}
	stop2()
	// --fresh refuses a directory dev did not make.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o600)
	if err := run(ctx, []string{"dev", "--data-dir", other, "--fresh"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "refusing --fresh") {
		t.Fatalf("--fresh on a foreign dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "precious")); err != nil {
		t.Fatal("--fresh deleted a directory it did not make")
	}
}

func ctx0() context.Context { return context.Background() }

func login(t *testing.T, base, slug string, u devUser) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"tenant": slug, "email": u.Email, "password": u.Password})
	res, err := http.Post(base+"/v1/auth/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	if tok.AccessToken == "" {
		t.Fatalf("login %s: %d", u.Email, res.StatusCode)
	}
	return tok.AccessToken
}

func get(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestMigrateStatus: `migrate --status` names the silos that are behind
// and their versions, and changes nothing; `migrate` then brings them
// forward, and `--status` says all is current.
func TestMigrateStatus(t *testing.T) {
	pg := pgtest.NewDB(t)
	ctx := context.Background()
	cmd := cli(pg.AdminURL)
	for _, id := range []string{"wayne", "stark"} {
		if _, err := cmd("tenants", "create", id, "--tier", "silo"); err != nil {
			t.Fatal(err)
		}
	}
	adm, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	if _, err := adm.Exec(ctx, `UPDATE bulkhead_control.tenants SET schema_version = 1 WHERE slug = 'wayne'`); err != nil {
		t.Fatal(err)
	}
	out, err := cmd("migrate", "--status")
	cur := strconv.Itoa(postgres.TenantSchemaVersion)
	for _, want := range []string{"database: up to date", "silos: 2, 1 behind: 1 on version " + cur + " (current), 1 on version 1", "  wayne: version 1 of " + cur, "bulkhead migrate brings them up to date"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("migrate --status: %v, want %q in:\n%s", err, want, out)
		}
	}
	if strings.Contains(out, "stark") {
		t.Fatalf("a current silo listed as behind:\n%s", out)
	}
	var v int
	if err := adm.QueryRow(ctx, `SELECT schema_version FROM bulkhead_control.tenants WHERE slug = 'wayne'`).Scan(&v); err != nil || v != 1 {
		t.Fatalf("--status changed wayne's version to %d (%v)", v, err)
	}
	// Documents attached before the bound existed: stark over it, wayne
	// at it. migrate names stark alone.
	if _, err := adm.Exec(ctx, `INSERT INTO bulkhead_control.policies (tenant_id, name, document)
		SELECT t.id, 'p' || g, '{}' FROM bulkhead_control.tenants t, generate_series(1, CASE t.slug WHEN 'stark' THEN $1::int ELSE $2::int END) g`,
		policy.MaxDocuments+2, policy.MaxDocuments); err != nil {
		t.Fatal(err)
	}
	out, err = cmd("migrate")
	if err != nil || !strings.Contains(out, "silos: 1 behind, 1 migrated") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	over := fmt.Sprintf("warning: tenant stark has %d policy documents, over the bound of %d", policy.MaxDocuments+2, policy.MaxDocuments)
	if !strings.Contains(out, over) || strings.Contains(out, "tenant wayne") {
		t.Fatalf("migrate did not name stark alone as over the bound:\n%s", out)
	}
	if out, err := cmd("migrate", "--status"); err != nil || !strings.Contains(out, "silos: 2, 0 behind: 2 on version "+cur+" (current)") || strings.Contains(out, "brings them") {
		t.Fatalf("migrate --status after migrate: %q %v", out, err)
	}
	for _, c := range []string{"0", "65"} {
		if _, err := cmd("migrate", "--concurrency", c); !errors.As(err, new(usageError)) {
			t.Errorf("--concurrency %s: %v, want a usage error", c, err)
		}
	}
}
