package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/identity/hashproc"
	"github.com/bulkhead-dev/bulkhead/internal/buildinfo"
	"github.com/bulkhead-dev/bulkhead/internal/pgcluster"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

type benchTenant struct {
	t        *tenant.Tenant
	token    string
	idpToken string // the same tenant's admin, signed in through an external provider
	ids      []string
	admin    tenant.Principal // the tenant's admin, whose token token is
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bulkhead-bench", flag.ContinueOnError)
	duration := fs.Duration("duration", 10*time.Second, "how long each side of each scenario runs")
	workers := fs.Uint64("workers", 8, "concurrent clients of the load process")
	maxReq := fs.Uint64("max-requests", 1000000, "the most requests one load run sends, even before --duration is up")
	verifier := fs.String("verifier", "plpgsql", "the database's context verifier: plpgsql (bulkhead's migrations') or native (pgext/, installed with make -C pgext install; see --native-library)")
	nativeLib := fs.String("native-library", postgres.DefaultNativeLibrary, "the native verifier's library, as PostgreSQL loads it (--verifier native)")
	hashing := fs.String("password-hashing", "process", `where the bulkhead server's password checks run, as bulkhead serve's flag: "process" (a child at nice 19, the default) or "inline" (in the server's process, which is this one)`)
	prepared := fs.Bool("prepared", false, "opt the data API's pool in to prepared statements (default_query_exec_mode=cache_statement in its URL; see docs/PERFORMANCE.md)")
	warmup := fs.Duration("warmup", time.Second, "an unmeasured run before each measured one, so that both sides are measured warm (connections open, statements prepared, caches filled); 0 skips it")
	rate := fs.Int("rate", 0, "pace the three scenarios at this many requests per second (an open loop, the same load on both sides) instead of a closed loop of --workers clients")
	tenants := fs.Int("tenants", 10, "tenants to spread the load over")
	rows := fs.Int("rows", 200, "projects per tenant")
	tax := fs.Bool("tax", true, "compare bulkhead with the baseline server on the three scenarios (--tax=false to skip)")
	rounds := fs.Int("rounds", 1, "run each scenario's two sides this many times, in turn, and report the round with the median throughput ratio and the range over all rounds; --noisy repeats its alone-then-flood pairs as many times and reports the median p99 ratio")
	pgb := fs.Bool("pgbench", true, "also compare at the SQL level with pgbench")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process (the servers) while one side of one scenario runs (--profile-scenario)")
	profileSide := fs.String("profile-side", "bulkhead", "the side --cpuprofile covers: bulkhead or baseline")
	profileScenario := fs.String("profile-scenario", "get by id", "the scenario --cpuprofile covers: "+strings.Join(scenarioNames, ", ")+"; or flood and a flood's name from --floods (flood forged), for the servers while the quiet tenant is measured during that flood's first round")
	noisy := fs.Bool("noisy", true, "measure a quiet tenant's p99 alone and while a basic-plan tenant floods the API")
	floodRate := fs.Int("flood-rate", 2000, "requests per second of the paced flood in --noisy (the basic plan allows 50)")
	lead := fs.Duration("flood-lead", 200*time.Millisecond, "how long each flood of --noisy runs before the quiet tenant is measured; longer leads measure the flood after its bursts are spent")
	timeline := fs.Bool("timeline", false, "after each round of --noisy, also print the quiet tenant's p99 second by second, alone and during the flood, to see when in a round its slow requests came")
	quietRate := fs.Int("quiet-rate", 0, "pace the quiet tenant of --noisy at this many requests per second (an open loop; 200 is its premium plan's rate) instead of a closed loop of 2 clients, which saturates the machine on its own")
	floods := fs.String("floods", "", "comma-separated floods for --noisy to run (default all): "+strings.Join(floodKeys, ", "))
	scale := fs.String("scale", "", "comma-separated tenant counts (e.g. 10,1000,100000): onboard pool tenants up to each and measure get-by-id latency")
	silos := fs.Int("silos", 0, "onboard this many silo tenants through bulkhead tenants import, spread the load over them, report connections and memory, and time migrating them all")
	bulkheadBin := fs.String("bulkhead-bin", "", "the bulkhead command --silos onboards through (default: bulkhead next to this executable, as make bench builds it, else on PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration <= 0 || *duration > 5*time.Minute || *workers == 0 || *workers > 256 || *tenants < 1 || *rows < 1 || *floodRate < 50 || *floodRate > 100000 || *maxReq < 1000 || *rate < 0 || *rate > 100000 || *warmup < 0 || *warmup > time.Minute || *rounds < 1 || *rounds > 20 || *lead < 0 || *lead > time.Minute || *quietRate < 0 || *quietRate > 100000 {
		return errors.New("flags out of range: 0 < duration <= 5m, 1 <= workers <= 256, tenants >= 1, rows >= 1, 50 <= flood-rate <= 100000, max-requests >= 1000, 0 <= rate <= 100000, 0 <= warmup <= 1m, 1 <= rounds <= 20, 0 <= flood-lead <= 1m, 0 <= quiet-rate <= 100000")
	}
	if *verifier != "plpgsql" && *verifier != "native" {
		return errors.New("--verifier must be plpgsql or native")
	}
	if *hashing != "process" && *hashing != "inline" {
		return errors.New("--password-hashing must be process or inline")
	}
	only, err := parseFloods(*floods)
	if err != nil {
		return err
	}
	var bin string
	if *silos > 0 {
		if bin, err = bulkheadBinary(*bulkheadBin); err != nil {
			return err
		}
	}
	if *profileSide != "bulkhead" && *profileSide != "baseline" {
		return errors.New("--profile-side must be bulkhead or baseline")
	}
	if flood, ok := strings.CutPrefix(*profileScenario, "flood "); ok {
		if !slices.Contains(floodKeys, flood) {
			return fmt.Errorf("--profile-scenario: no flood %q (there are %s)", flood, strings.Join(floodKeys, ", "))
		}
		if *cpuprofile != "" && (!*noisy || (only != nil && !only[flood])) {
			return fmt.Errorf("--profile-scenario %q: that flood does not run (it needs --noisy, and to be in --floods)", *profileScenario)
		}
	} else if !slices.Contains(scenarioNames, *profileScenario) {
		return fmt.Errorf("--profile-scenario must be one of: %s, or flood and one of --floods' names (flood forged)", strings.Join(scenarioNames, ", "))
	}
	maxRequests = *maxReq
	dir, swept, err := pgcluster.TempDir("bulkhead-bench-")
	for _, d := range swept {
		logf("stopped and removed %s, left by a bench that did not finish", d)
	}
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logf("starting PostgreSQL in %s", dir)
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Settings: map[string]string{"max_connections": "300", "shared_buffers": "'256MB'"}})
	if err != nil {
		return err
	}
	defer cl.Stop()
	conn, err := pgx.Connect(ctx, cl.AdminURL("postgres"))
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE bench`); err != nil {
		return err
	}
	conn.Close(ctx)
	adminURL := cl.AdminURL("bench")
	if _, err := postgres.Setup(ctx, adminURL, nil); err != nil {
		return err
	}
	bulkURL := adminURL
	if *prepared {
		bulkURL += "&default_query_exec_mode=cache_statement"
		if !strings.Contains(adminURL, "?") {
			bulkURL = adminURL + "?default_query_exec_mode=cache_statement"
		}
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: bulkURL})
	if err != nil {
		return err
	}
	defer db.Close()
	if *verifier == "native" {
		logf("installing the native verifier from %s", *nativeLib)
		if _, err := db.Postgres().InstallNativeVerifier(ctx, *nativeLib); err != nil {
			return err
		}
	}
	idp, err := startIdP()
	if err != nil {
		return err
	}
	defer idp.close()
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{External: []identity.Trust{idp.trust()}})
	if err != nil {
		return err
	}
	defer auth.Close()
	logf("seeding %d tenants with %d projects each", *tenants, *rows)
	ts, err := seed(ctx, db, auth, *tenants, *rows)
	if err != nil {
		return err
	}
	for i := range ts {
		if ts[i].idpToken, err = idp.token(ts[i].t); err != nil {
			return err
		}
	}
	hasher := &identity.Hasher{}
	if *hashing == "process" {
		p, err := startHashing()
		if err != nil {
			return err
		}
		defer p.Close(5 * time.Second)
		hasher.Deriver = p
	}
	bulk, err := serveBulkhead(ctx, db, auth, hasher)
	if err != nil {
		return err
	}
	base, err := serveBaseline(ctx, adminURL)
	if err != nil {
		return err
	}
	var results [][2]attackResult
	var spreads []roundSpread
	meter := newCPUMeter(cl.PGData())
	for _, sc := range scenarios(bulk, base, ts) {
		if !*tax {
			break
		}
		var pairs [][2]attackResult
		for round := 1; round <= *rounds; round++ {
			var pair [2]attackResult
			for i, side := range []struct {
				name    string
				targets []vegeta.Target
			}{{"baseline", sc.baseline}, {"bulkhead", sc.bulkhead}} {
				if *warmup > 0 {
					warm := attackSpec{Name: sc.name + "/" + side.name + "/warm-up", Targets: side.targets, Workers: *workers, Duration: *warmup}
					if _, err := runAttack(ctx, warm); err != nil {
						return err
					}
				}
				if *rounds > 1 {
					logf("%s, round %d of %d: %s for %s with %d clients", sc.name, round, *rounds, side.name, *duration, *workers)
				} else {
					logf("%s: %s for %s with %d clients", sc.name, side.name, *duration, *workers)
				}
				stop := func() {}
				if *cpuprofile != "" && side.name == *profileSide && sc.name == *profileScenario && round == 1 {
					if stop, err = startProfile(*cpuprofile); err != nil {
						return err
					}
				}
				before := meter.read()
				spec := attackSpec{Name: sc.name + "/" + side.name, Targets: side.targets, Workers: *workers, Duration: *duration}
				if *rate > 0 {
					// Open loop: enough clients that a slower side does not
					// lower the pace, so both sides get the same load.
					spec.Rate, spec.Workers = *rate, max(*workers, 256)
				}
				r, err := runAttack(ctx, spec)
				r.serverCPU, r.pgCPU, r.cpuOK = perRequest(before, meter.read(), r.Requests)
				stop()
				if err != nil {
					return err
				}
				pair[i] = r
			}
			pairs = append(pairs, pair)
		}
		median, spread := medianRound(pairs)
		results = append(results, median)
		spreads = append(spreads, spread)
	}
	var noisyRes noisyReport
	if *noisy {
		cfg := noisyConfig{d: *duration, lead: *lead, warmup: *warmup, floodRate: *floodRate, quietRate: *quietRate, rounds: *rounds, only: only, meter: meter, timeline: *timeline}
		if flood, ok := strings.CutPrefix(*profileScenario, "flood "); ok {
			cfg.profile, cfg.profileFlood = *cpuprofile, flood
		}
		if noisyRes, err = runNoisy(ctx, db, auth, bulk, ts, cfg); err != nil {
			return err
		}
	}
	var scaleRes []scalePoint
	if *scale != "" {
		if scaleRes, err = runScale(ctx, db, auth, bulk, ts, *scale, *duration); err != nil {
			return err
		}
	}
	var siloRes *siloReport
	if *silos > 0 {
		if siloRes, err = runSilos(ctx, db, auth, bin, adminURL, dir, bulk, *silos, *duration, *workers); err != nil {
			return err
		}
	}
	var sql []pgbenchResult
	var ladder []ladderStep
	if *pgb {
		if sql, ladder, err = runPgbench(ctx, cl, adminURL, db, ts, *duration); err != nil {
			return err
		}
	}
	printReport(os.Stdout, results, sql, *workers, *rate, *prepared, *verifier, *hashing, *duration)
	printSpread(os.Stdout, results, spreads)
	printLadder(os.Stdout, ladder)
	printExtra(os.Stdout, noisyRes, scaleRes, siloRes)
	printTargets(os.Stdout, verdicts(results, sql, noisyRes, scaleRes))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func seed(ctx context.Context, db *bulkhead.DB, auth *bulkhead.Auth, n, rows int) ([]benchTenant, error) {
	h := &identity.Hasher{Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	hash, err := h.Hash(ctx, "bench-password")
	if err != nil {
		return nil, err
	}
	var out []benchTenant
	for i := 0; i < n; i++ {
		t, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(fmt.Sprintf("bench-%d", i)), Tier: tenant.Pool, Plan: "premium"})
		if err != nil {
			return nil, err
		}
		u, err := db.Postgres().CreateUser(ctx, t.ID, fmt.Sprintf("admin@bench-%d.test", i), hash, tenant.Admin)
		if err != nil {
			return nil, err
		}
		tok, _, err := auth.IssueUserToken(ctx, u, t)
		if err != nil {
			return nil, err
		}
		bt := benchTenant{t: t, token: tok}
		pctx := tenant.NewContext(ctx, tenant.Principal{Subject: u.ID, TenantID: t.ID, Role: tenant.Admin})
		err = db.Tx(pctx, func(tx pgx.Tx) error {
			rs, err := tx.Query(ctx, `INSERT INTO app.projects (name, description)
				SELECT 'p' || g, 'project ' || g FROM generate_series(1, $1) g RETURNING id::text`, rows)
			if err != nil {
				return err
			}
			bt.ids, err = pgx.CollectRows(rs, pgx.RowTo[string])
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, bt)
	}
	// Keep the audit inbox from the seeding out of the measurement.
	for {
		got, err := db.Postgres().Sequence(ctx, 5000)
		if err != nil || len(got) == 0 {
			return out, err
		}
	}
}

func listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// parseFloods reads --floods: nil for all of them.
func parseFloods(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	only := map[string]bool{}
	for _, k := range strings.Split(s, ",") {
		if !slices.Contains(floodKeys, k) {
			return nil, fmt.Errorf("--floods: no flood %q (there are %s)", k, strings.Join(floodKeys, ", "))
		}
		only[k] = true
	}
	return only, nil
}

// serveBulkhead runs the full path: the same handler, audit writer,
// sequencer and metrics as bulkhead serve.
func serveBulkhead(ctx context.Context, db *bulkhead.DB, auth *bulkhead.Auth, hasher *identity.Hasher) (string, error) {
	w := audit.NewWriter(db.Postgres(), 4096, 256)
	h, err := httpapi.New(ctx, httpapi.Config{DB: db, Auth: auth, Audit: w, Metrics: httpapi.NewMetrics(), Hasher: hasher,
		Limits:      map[string]httpapi.Limit{"premium": {Rate: 1e9, Burst: 1e9, Concurrent: 1024, StatementTimeout: 10 * time.Second}},
		TenantShare: -1,
		// The flood of logins from many addresses names them in
		// X-Forwarded-For, as a load balancer would.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		return "", err
	}
	go func() {
		for ctx.Err() == nil {
			db.Postgres().Sequence(ctx, 5000)
			time.Sleep(500 * time.Millisecond)
		}
	}()
	return listen(h.Handler())
}

// hashWorkerCommand is this executable's hidden command that serves
// password work, as bulkhead's does.
const hashWorkerCommand = "hash-worker"

// startHashing starts the bench server's password hashing process, as
// bulkhead serve does by default: this executable as hash-worker.
func startHashing() (*hashproc.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &hashproc.Process{Command: func() *exec.Cmd { return exec.Command(self, hashWorkerCommand) }}
	return p, p.Start()
}

// serveBaseline is the comparison: net/http and pgx, the tenant from the
// query string, a WHERE tenant_id = $1, no authentication, no row security
// (it connects as the superuser, which bypasses it). It runs the same
// statement shape as the data API (json_agg in PostgreSQL).
func serveBaseline(ctx context.Context, adminURL string) (string, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return "", err
	}
	cfg.MaxConns = postgres.DefaultAppMaxConns() // the same pool size as bulkhead's
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	rows := func(w http.ResponseWriter, r *http.Request, sql string, args ...any) {
		var body []byte
		if err := pool.QueryRow(r.Context(), `SELECT coalesce(json_agg(x), '[]')::text FROM (`+sql+`) x`, args...).Scan(&body); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
	mux.HandleFunc("GET /projects", func(w http.ResponseWriter, r *http.Request) {
		rows(w, r, `SELECT id, name FROM app.projects WHERE tenant_id = $1 AND name LIKE $2 LIMIT 20`,
			r.URL.Query().Get("tenant"), r.URL.Query().Get("prefix")+"%")
	})
	mux.HandleFunc("GET /projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		rows(w, r, `SELECT * FROM app.projects WHERE tenant_id = $1 AND id = $2`, r.URL.Query().Get("tenant"), r.PathValue("id"))
	})
	mux.HandleFunc("POST /projects", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var id string
		if err := pool.QueryRow(r.Context(), `INSERT INTO app.projects (tenant_id, name) VALUES ($1, $2) RETURNING id`, r.URL.Query().Get("tenant"), in.Name).Scan(&id); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	return listen(mux)
}

// scenarioNames are the scenarios of the tax, in the order they run.
var scenarioNames = []string{"list with a filter", "get by id", "get by id, external IdP", "insert"}

type scenario struct {
	name               string
	baseline, bulkhead []vegeta.Target
}

func scenarios(bulk, base string, ts []benchTenant) []scenario {
	var list, get, ext, ins scenario
	list.name, get.name, ext.name, ins.name = scenarioNames[0], scenarioNames[1], scenarioNames[2], scenarioNames[3]
	for _, t := range ts {
		auth := http.Header{"Authorization": {"Bearer " + t.token}}
		tid := url.QueryEscape(string(t.t.ID))
		for j := 1; j <= 5; j++ {
			list.baseline = append(list.baseline, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/projects?tenant=%s&prefix=p%d", base, tid, j)})
			list.bulkhead = append(list.bulkhead, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/rest/v1/projects?select=id,name&name=like.p%d*&limit=20", bulk, j), Header: auth})
		}
		for _, id := range t.ids[:min(10, len(t.ids))] {
			get.baseline = append(get.baseline, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/projects/%s?tenant=%s", base, id, tid)})
			get.bulkhead = append(get.bulkhead, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/rest/v1/projects?id=eq.%s", bulk, id), Header: auth})
			ext.bulkhead = append(ext.bulkhead, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/rest/v1/projects?id=eq.%s", bulk, id),
				Header: http.Header{"Authorization": {"Bearer " + t.idpToken}}})
		}
		body := []byte(`{"name":"bench insert"}`)
		jh := http.Header{"Content-Type": {"application/json"}}
		ins.baseline = append(ins.baseline, vegeta.Target{Method: "POST", URL: fmt.Sprintf("%s/projects?tenant=%s", base, tid), Body: body, Header: jh})
		bh := auth.Clone()
		bh.Set("Content-Type", "application/json")
		ins.bulkhead = append(ins.bulkhead, vegeta.Target{Method: "POST", URL: bulk + "/rest/v1/projects", Body: body, Header: bh})
	}
	ext.baseline = get.baseline
	return []scenario{list, get, ext, ins}
}

// runAttack runs the load from a separate process: this binary's attack
// mode.
func runAttack(ctx context.Context, spec attackSpec) (attackResult, error) {
	return runAttackAllowing(ctx, spec, 0.999)
}

// maxRequests bounds every load run (--max-requests); run sets it before
// the first.
var maxRequests uint64 = 1000000

// runAttackAllowing is runAttack with a floor on the share of successes.
func runAttackAllowing(ctx context.Context, spec attackSpec, minSuccess float64) (attackResult, error) {
	if spec.MaxRequests == 0 {
		spec.MaxRequests = maxRequests
	}
	self, err := os.Executable()
	if err != nil {
		return attackResult{}, err
	}
	in, _ := json.Marshal(spec)
	cmd := exec.CommandContext(ctx, self, "attack")
	if spec.Niced {
		cmd = exec.CommandContext(ctx, "nice", "-n", "19", self, "attack")
	}
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return attackResult{}, fmt.Errorf("load process: %w", err)
	}
	var r attackResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, err
	}
	if r.Success < minSuccess {
		return r, fmt.Errorf("%s: only %.1f%% of requests succeeded (%v %v)", spec.Name, r.Success*100, r.Status, r.Errors)
	}
	return r, nil
}

type pgbenchResult struct {
	name     string
	clients  int
	plain    float64 // tps
	isolated float64
}

// runPgbench compares, at the SQL level, a one-row lookup with a plain
// filter (no row security) against the same lookup under the signed
// context and forced row security, pipelined as bulkhead sends it.
func runPgbench(ctx context.Context, cl *pgcluster.Cluster, adminURL string, db *bulkhead.DB, ts []benchTenant, d time.Duration) ([]pgbenchResult, []ladderStep, error) {
	bin, err := pgcluster.BinDir()
	if err != nil {
		return nil, nil, err
	}
	long, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: adminURL, ContextTTL: bulkhead.MaxContextTTL})
	if err != nil {
		return nil, nil, err
	}
	defer long.Close()
	t := ts[0]
	sc, err := long.Mint(ctx, tenant.Principal{Subject: "bench", TenantID: t.t.ID, Role: tenant.Admin}, bulkhead.MintOptions{})
	if err != nil {
		return nil, nil, err
	}
	var role, pw string
	if err := db.Postgres().Admin().QueryRow(ctx, `SELECT role, password FROM bulkhead_control.role_credentials`).Scan(&role, &pw); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "bulkhead-pgbench-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	plain := filepath.Join(dir, "plain.sql")
	isolated := filepath.Join(dir, "isolated.sql")
	os.WriteFile(plain, []byte("SELECT name FROM app.projects WHERE tenant_id = :tid AND id = :pid;\n"), 0o644)
	os.WriteFile(isolated, []byte("\\startpipeline\nSELECT set_config('bulkhead.context', :ctx, true);\nSELECT name FROM app.projects WHERE id = :pid;\n\\endpipeline\n"), 0o644)
	pb := &pgbencher{ctx: ctx, bin: filepath.Join(bin, "pgbench"), port: cl.Port, d: d,
		vars: []string{"tid=" + string(t.t.ID), "pid=" + t.ids[0], "ctx=" + sc.Token}}
	pgbench := pb.tps
	// An unmeasured second first, so that the first measured run does not
	// pay for a cold cache.
	warm := *pb
	warm.d = time.Second
	if _, err := warm.tps("postgres", cl.Password, plain, 4); err != nil {
		return nil, nil, err
	}
	var out []pgbenchResult
	for _, clients := range []int{4, 1} {
		logf("pgbench: plain filter, no row security, %d clients, %s", clients, d)
		p, err := pgbench("postgres", cl.Password, plain, clients)
		if err != nil {
			return nil, nil, err
		}
		logf("pgbench: signed context under forced row security, pipelined, %d clients, %s", clients, d)
		i, err := pgbench(role, pw, isolated, clients)
		if err != nil {
			return nil, nil, err
		}
		name := "one-row lookup (4 clients)"
		if clients == 1 {
			name = "one-row lookup (1 client)"
		}
		out = append(out, pgbenchResult{name, clients, p, i})
	}
	ladder, err := runLadder(ctx, pb, db.Postgres().Admin(), cl.Password, role, pw, dir)
	if err != nil {
		return nil, nil, err
	}
	return out, ladder, nil
}

// pgbencher runs pgbench scripts against the bench's cluster, with
// prepared statements, and reads their throughput.
type pgbencher struct {
	ctx  context.Context
	bin  string
	port int
	d    time.Duration
	vars []string // -D name=value
}

func (pb *pgbencher) tps(user, password, script string, clients int) (float64, error) {
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)),
		"-T", strconv.Itoa(int(max(pb.d.Seconds(), 1)))}
	for _, v := range pb.vars {
		args = append(args, "-D", v)
	}
	args = append(args, "-f", script, "-h", "127.0.0.1", "-p", strconv.Itoa(pb.port), "-U", user, "bench")
	cmd := exec.CommandContext(pb.ctx, pb.bin, args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+)`)

func printReport(w *os.File, results [][2]attackResult, sql []pgbenchResult, workers uint64, rate int, prepared bool, verifier, hashing string, d time.Duration) {
	host, _ := os.Hostname()
	load := fmt.Sprintf("%d load clients", workers)
	if rate > 0 {
		load = fmt.Sprintf("paced at %d requests per second", rate)
	}
	statements := "unnamed statements (the default)"
	if prepared {
		statements = "prepared statements (--prepared)"
	}
	where := "in a process of their own (the default)"
	if hashing == "inline" {
		where = "in the server's process (--password-hashing inline)"
	}
	bi := buildinfo.Read()
	fmt.Fprintf(w, "\nbulkhead-bench: bulkhead %s (commit %s, %s); %s, %s per side, %d CPUs (%s/%s), host %s; the data API's pool uses %s; the %s verifier; password checks %s\n\n",
		bi.Version, bi.ShortRevision(), bi.Go, load, d, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, statements, verifier, where)
	if len(results) == 0 && len(sql) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tbaseline rps\tbulkhead rps\tthroughput ratio\tbaseline p50\tbulkhead p50\tbaseline p99\tbulkhead p99\tp99 ratio\t")
	for _, p := range results {
		b, k := p[0], p[1]
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%.2f\t\n", strings.TrimSuffix(b.Name, "/baseline"),
			b.Throughput, k.Throughput, k.Throughput/b.Throughput, round(b.P50), round(k.P50), round(b.P99), round(k.P99),
			float64(k.P99)/float64(b.P99))
	}
	tw.Flush()
	if len(results) > 0 && results[0][0].cpuOK && results[0][1].cpuOK {
		fmt.Fprintf(w, "\nCPU per request (server: the bench process, which runs both servers; PostgreSQL: all its processes)\n")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tbaseline server\tbulkhead server\tbaseline PostgreSQL\tbulkhead PostgreSQL\t")
		for _, p := range results {
			b, k := p[0], p[1]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", strings.TrimSuffix(b.Name, "/baseline"),
				b.serverCPU.Round(time.Microsecond), k.serverCPU.Round(time.Microsecond), b.pgCPU.Round(time.Microsecond), k.pgCPU.Round(time.Microsecond))
		}
		tw.Flush()
	}
	if len(sql) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "SQL level (pgbench)\tplain filter tps\tsigned context + RLS tps\tratio\tadded per lookup\t")
		for _, r := range sql {
			added := "-"
			if r.clients == 1 {
				// One client, one lookup at a time: each takes 1/tps of a
				// second, and the difference is what isolation adds to one.
				added = "+" + time.Duration((1/r.isolated-1/r.plain)*float64(time.Second)).Round(time.Microsecond).String()
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%s\t\n", r.name, r.plain, r.isolated, r.isolated/r.plain, added)
		}
		tw.Flush()
	}
}

func round(d time.Duration) string {
	return d.Round(10 * time.Microsecond).String()
}

// roundSpread is the range of a scenario's ratios over its rounds.
type roundSpread struct {
	rounds             int
	minRatio, maxRatio float64 // throughput, bulkhead / baseline
	minP99, maxP99     float64 // p99, bulkhead / baseline
}

// medianRound picks the round whose throughput ratio is the median (the
// lower middle one for an even count), so that the table shows one
// consistent pair of runs, and the range over all rounds.
func medianRound(pairs [][2]attackResult) ([2]attackResult, roundSpread) {
	ratio := func(p [2]attackResult) float64 { return p[1].Throughput / p[0].Throughput }
	p99 := func(p [2]attackResult) float64 { return float64(p[1].P99) / float64(p[0].P99) }
	sorted := append([][2]attackResult(nil), pairs...)
	sort.Slice(sorted, func(i, j int) bool { return ratio(sorted[i]) < ratio(sorted[j]) })
	sp := roundSpread{rounds: len(pairs), minRatio: ratio(sorted[0]), maxRatio: ratio(sorted[len(sorted)-1]),
		minP99: p99(sorted[0]), maxP99: p99(sorted[0])}
	for _, p := range sorted {
		sp.minP99, sp.maxP99 = min(sp.minP99, p99(p)), max(sp.maxP99, p99(p))
	}
	return sorted[(len(sorted)-1)/2], sp
}

func printSpread(w io.Writer, results [][2]attackResult, spreads []roundSpread) {
	if len(spreads) == 0 || spreads[0].rounds < 2 {
		return
	}
	fmt.Fprintf(w, "\nOver %d rounds (the table shows the round with the median throughput ratio)\n", spreads[0].rounds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tthroughput ratio, lowest\thighest\tp99 ratio, lowest\thighest\t")
	for i, sp := range spreads {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t\n", strings.TrimSuffix(results[i][0].Name, "/baseline"), sp.minRatio, sp.maxRatio, sp.minP99, sp.maxP99)
	}
	tw.Flush()
}

// startProfile starts a CPU profile of this process (the servers) into
// path; stop ends it.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
